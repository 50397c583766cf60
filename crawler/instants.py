"""Dates sites write (listings, page metadata) as UTC instants in one stored form, so they are
compared as moments in time.

The same moment reaches us as an RSS `pubDate` (RFC 822), an Atom `updated` with a `+03:00`
offset, a sitemap `lastmod` ending in `Z` or a bare date: compared as text, they never agree.
Every listing date is turned into `YYYY-MM-DDTHH:MM:SSZ` in UTC (`alerts.times.FORMAT`, the
form every stored time has, so stored instants also compare correctly as text), and a date that
is not a real moment (MySQL's `0000-00-00`, garbage, a year before 1970) into None.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from alerts.times import FORMAT

_EARLIEST_YEAR = 1970
# a W3C date is at most "2026-11-28T10:00:00.123456789+03:00"; longer text is not a date
_MAX_LENGTH = 64


def format_instant(moment: datetime) -> str | None:
    """The stored form, or None for a moment outside the years a news listing can mean."""
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        return None
    if moment.year < _EARLIEST_YEAR:
        return None
    return moment.strftime(FORMAT)


def from_struct(parsed: time.struct_time | None) -> str | None:
    """feedparser's `*_parsed` values: UTC struct_times, with year -1 for a zero date."""
    if not parsed:
        return None
    try:
        moment = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return format_instant(moment)


def parse_instant(text: str | None) -> str | None:
    """ISO 8601 / W3C datetime (sitemaps, our own rows), else RFC 822 (RSS); a date without a
    time is midnight UTC and a time without a zone is UTC."""
    if not text or len(text) > _MAX_LENGTH:
        return None
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = _rfc822(text)
    return format_instant(moment) if moment is not None else None


def _rfc822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def later(candidate: str | None, *others: str | None) -> bool:
    """True when `candidate` is a moment later than every other known one (None is unknown)."""
    return candidate is not None and all(other is None or candidate > other for other in others)
