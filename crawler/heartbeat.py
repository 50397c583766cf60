"""The daemon's sign of life, as other processes read it: written at start and every
`INTERVAL` seconds, fresh while no more than `MISSED` beats are missing. A daemon whose loop is
stuck (a blocking call, a deadlock) stops beating even though its process is still there."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from alerts.times import parse_time, timestamp
from crawler import store

INTERVAL = 30.0
MISSED = 3
FORGOTTEN_AFTER = timedelta(days=7)


class Heartbeat:
    """One daemon's row: its host and pid name it, its start time says since when it runs."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = timestamp()
        store.forget_heartbeats(db, timestamp(datetime.now(UTC) - FORGOTTEN_AFTER))

    def beat(self) -> None:
        store.record_heartbeat(self.db, self.host, self.pid, self.started_at, timestamp())


def age(row: dict[str, Any] | None, now: datetime | None = None) -> float | None:
    """Seconds since the newest beat (`store.latest_heartbeat`); None when no daemon ever beat."""
    beat_at = parse_time(row["beat_at"]) if row else None
    if beat_at is None:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - beat_at).total_seconds())


def is_fresh(seconds: float | None) -> bool:
    return seconds is not None and seconds <= MISSED * INTERVAL
