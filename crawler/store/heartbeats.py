"""The daemons' heartbeats: one row per running daemon (host, pid), rewritten every beat, so a
reader in another process (`newswatch serve`'s `/healthz`, monitoring) can tell a daemon that
stopped or hangs from one that is working. Several daemons on one database each keep a row."""

from __future__ import annotations

from typing import Any

from alerts.database import Database
from crawler.store.database import one_row


def record_heartbeat(db: Database, host: str, pid: int, started_at: str, beat_at: str) -> None:
    db["heartbeats"].upsert(
        {"host": host, "pid": pid, "started_at": started_at, "beat_at": beat_at},
        pk=("host", "pid"),
    )


def forget_heartbeats(db: Database, before: str) -> None:
    """Rows of daemons long gone: a pid is reused after a while, and rows must not pile up."""
    db.execute("DELETE FROM heartbeats WHERE beat_at < ?", [before])


def latest_heartbeat(db: Database) -> dict[str, Any] | None:
    """The newest beat of any daemon: whether something is polling the sources."""
    return one_row(
        db,
        "SELECT host, pid, started_at, beat_at FROM heartbeats ORDER BY beat_at DESC LIMIT 1",
        [],
    )
