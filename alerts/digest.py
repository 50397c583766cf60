"""Digests: a channel with `digest: <cron>` holds its alerts and sends one message per period.

A period runs from one digest to the next. The end of each period is a row in `digests`, so a
digest that fell due while the daemon was down is made at the next start, holding everything
queued since the last one; each alert lands in exactly one digest (see `outbox.bundle`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alerts import outbox, store
from alerts.database import Database
from alerts.times import parse_time, timestamp

NextFire = Callable[[datetime], datetime | None]


def last_run(db: Database, channel: str) -> datetime | None:
    return parse_time(store.digest_started(db, channel))


def _set_last_run(db: Database, channel: str, moment: datetime) -> None:
    store.start_digest(db, channel, timestamp(moment))


def missed(db: Database, channel: str, next_after: NextFire, now: datetime) -> bool:
    """Whether a digest fell due since the last one. A channel seen for the first time starts
    its first period now, rather than sending a digest of nothing."""
    last = last_run(db, channel)
    if last is None:
        _set_last_run(db, channel, now)
        return False
    upcoming = next_after(last)
    return upcoming is not None and upcoming <= now


def make_digest(db: Database, channel: str, now: datetime | None = None) -> dict[str, Any] | None:
    """Close the period at `now`: fold the alerts it holds into one digest row (none if it held
    no alert) and start the next period, in one transaction, under the channel's lock: with
    several hosts closing the same period, the first makes the digest, the others find the
    period closed (at or after their `now`) and leave it."""
    now = now or datetime.now(UTC)
    with db.atomic():
        outbox.lock_channel(db, channel)
        start = last_run(db, channel)
        if start is not None and start >= now:
            return None
        rows = outbox.waiting(db, channel, now)
        row = None
        if rows:
            since = timestamp(start) if start else None
            row = outbox.bundle(db, "digest", channel, rows, since, timestamp(now))
        _set_last_run(db, channel, now)
    return row
