"""Times as newswatch stores and shows them: one stored form, `YYYY-MM-DDTHH:MM:SSZ` in UTC,
so stored times compare correctly as text and every table reads the same.

The outbox, the crawler's tables and the messages all go through these helpers, so the format
is written once; dates that sites send are the crawler's concern (`crawler.instants`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def timestamp(moment: datetime | None = None) -> str:
    """The stored form of `moment` (now when None); naive moments are taken as UTC."""
    moment = moment or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime(FORMAT)


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 with or without time or zone (stored rows, payloads); naive values are UTC.
    None for anything else, including a moment that has no UTC form (`0001-01-01T00:00+01:00`):
    a payload carries whatever its host wrote, and rendering it must not fail."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def format_time(moment: datetime) -> str:
    """A moment for people, to the minute."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def human_time(value: Any) -> str:
    """A stored time for people; the raw value when it does not parse."""
    moment = parse_time(value)
    return format_time(moment) if moment else str(value or "")


def format_duration(seconds: float) -> str:
    """ "1d", "90m" when a unit divides the duration exactly, else "2.35h"."""
    for unit, size in _DURATION_UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    for unit, size in _DURATION_UNITS:
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"
