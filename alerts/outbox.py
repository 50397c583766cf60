"""The outbox: one row per (watchlist, story, channel), written before any send is tried.

The row, not memory, is the truth: a crash at any point leaves each alert pending, sending
(retried at the next start, same id) or sent (never repeated). The `alerts` table is created by
the application's schema; this module only reads and moves rows through their states.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from alerts.message import Alert

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


def timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_id(watchlist: str, story_id: str, channel: str) -> str:
    """Stable across retries and restarts, so receivers can drop repeats by id."""
    digest = hashlib.sha256(f"{watchlist}\x1f{story_id}\x1f{channel}".encode()).hexdigest()
    return f"nw-{digest[:24]}"


def enqueue(db: sqlite_utils.Database, alert: Alert, channel: str, article_id: int) -> bool:
    """Add the alert unless this (watchlist, story, channel) already has one; True if added."""
    before = db.execute("SELECT total_changes()").fetchone()[0]
    db.execute(
        "INSERT OR IGNORE INTO alerts (id, watchlist, channel, story_id, article_id, status,"
        " attempts, next_attempt_at, created_at, payload) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
        [
            alert.id,
            alert.watchlist,
            channel,
            alert.story["id"],
            article_id,
            PENDING,
            timestamp(),
            timestamp(),
            json.dumps(alert.payload(), ensure_ascii=False),
        ],
    )
    return db.execute("SELECT total_changes()").fetchone()[0] > before


def recover_in_flight(db: sqlite_utils.Database) -> int:
    """Alerts left `sending` by a crash go back to pending: at most that one send repeats."""
    cursor = db.execute("UPDATE alerts SET status = ? WHERE status = ?", [PENDING, SENDING])
    return cursor.rowcount


def due(db: sqlite_utils.Database, now: datetime | None = None) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM alerts WHERE status = ? AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at",
            [PENDING, timestamp(now)],
        )
    )


def pending_count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM alerts WHERE status = ?", [PENDING]).fetchone()[0]


def alert_of(row: dict[str, Any]) -> Alert:
    return Alert(**json.loads(row["payload"]))


def mark_sending(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    db.execute(
        "UPDATE alerts SET status = ?, attempts = attempts + 1 WHERE id = ?", [SENDING, row["id"]]
    )


def mark_sent(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    db.execute(
        "UPDATE alerts SET status = ?, sent_at = ?, last_error = NULL WHERE id = ?",
        [SENT, timestamp(), row["id"]],
    )


def mark_retry(db: sqlite_utils.Database, row: dict[str, Any], error: str, delay: float) -> None:
    next_at = timestamp(datetime.now(UTC) + timedelta(seconds=delay))
    db.execute(
        "UPDATE alerts SET status = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
        [PENDING, error, next_at, row["id"]],
    )


def mark_failed(db: sqlite_utils.Database, row: dict[str, Any], error: str) -> None:
    db.execute(
        "UPDATE alerts SET status = ?, last_error = ? WHERE id = ?", [FAILED, error, row["id"]]
    )
