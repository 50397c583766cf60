"""The library's bookkeeping rows beside the outbox: `digests` (when each digest channel's
current period began) and `health_alerts` (the problem last announced per subject). Every SQL
statement on them is here, as those on the outbox are in `outbox`, so another database needs
only these modules rewritten. Times are stored as `alerts.times` writes them.
"""

from __future__ import annotations

from typing import Any

from alerts.database import Database


def digest_started(db: Database, channel: str) -> str | None:
    """When the channel's current digest period began; None for a channel never seen."""
    row = db.execute("SELECT last_run_at FROM digests WHERE channel = ?", [channel]).fetchone()
    return row[0] if row else None


def start_digest(db: Database, channel: str, at: str) -> None:
    db.execute(
        "INSERT INTO digests (channel, last_run_at) VALUES (?, ?)"
        " ON CONFLICT (channel) DO UPDATE SET last_run_at = excluded.last_run_at",
        [channel, at],
    )


def health_state(db: Database, subject: str) -> dict[str, Any] | None:
    """The subject's announced problem (None: healthy) and since when; None if never seen."""
    rows = list(db.query("SELECT * FROM health_alerts WHERE subject = ?", [subject]))
    return rows[0] if rows else None


def save_health_state(db: Database, state: dict[str, Any]) -> None:
    db.execute(
        "INSERT INTO health_alerts (subject, problem, since, notified_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (subject) DO UPDATE SET problem = excluded.problem,"
        " since = excluded.since, notified_at = excluded.notified_at",
        [state["subject"], state["problem"], state["since"], state["notified_at"]],
    )
