"""Which listed URLs a poll fetches: new ones, stored ones a listing says changed since, and
failed ones whose retry is due.

A real site throttles or bans a crawler that fetches each article ten times, so a stored page
is fetched again only for a listing's own "last changed" date later than both the latest such
date any listing gave for it and its last fetch; and a page that failed is remembered with its
reason: a permanent failure is not retried, a transient one a bounded number of times with
growing delays, unless a listing later says the page changed after the failure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scrapy.exceptions import DownloadCancelledError, IgnoreRequest

from crawler.instants import format_instant, later

# delays before the 2nd, 3rd and 4th attempt of a page that failed transiently; after the 4th
# failed attempt it is not fetched again until a listing says it changed
RETRY_DELAYS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# worth asking again: the server was busy, overloaded or slow; every other 4xx means "no"
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def retry_at(attempts: int, now: datetime | None = None) -> str | None:
    """When the next attempt after `attempts` failed ones is due; None once they are used up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return format_instant((now or datetime.now(UTC)) + RETRY_DELAYS[attempts - 1])


def is_permanent(error: BaseException) -> bool:
    """Too large, refused (robots.txt, a redirect out of the web or past the limit), an HTTP
    status that will not change (404, 410, 403…): asking again would get the same answer.
    Timeouts, connection errors, 5xx and 429 may pass: those are retried."""
    response = getattr(error, "response", None)
    if response is not None:
        return response.status < 500 and response.status not in TRANSIENT_STATUSES
    return isinstance(error, DownloadCancelledError | IgnoreRequest)


def why_fetch(
    updated: str | None,
    known: dict[str, Any] | None,
    failure: dict[str, Any] | None,
    now: str,
) -> str | None:
    """Why a listed entry should be fetched, in words for the log ("" for a URL never seen),
    or None. `updated` is the entry's "last changed" instant, `known` the stored article's
    dates (`known_articles`), `failure` its remembered failed fetch (`fetch_failures`). An
    article retention pruned is never fetched again: its text is gone, but it stays known."""
    if known is not None and known["pruned_at"] is not None:
        return None
    if failure is not None:
        return _after_failure(updated, failure, now)
    if known is None:
        return ""
    seen, fetched = known["source_updated_at"], known["last_fetched_at"]
    if later(updated, seen, fetched):
        return f"listed as changed at {updated}, after {seen or 'no date'} (last fetched {fetched})"
    return None


def _after_failure(updated: str | None, failure: dict[str, Any], now: str) -> str | None:
    attempts, reason = failure["attempts"], failure["reason"]
    if later(updated, failure["failed_at"], failure["listed_updated_at"]):
        return f"listed as changed at {updated}, after its last fetch failed ({reason})"
    if failure["permanent"] or failure["retry_at"] is None or failure["retry_at"] > now:
        return None
    return f"retry {attempts + 1} of {MAX_ATTEMPTS} after {reason}"
