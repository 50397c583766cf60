"""Per-source rows: conditional-request validators, poll outcomes, health and publication rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.database import Database
from alerts.health import SourceHealth
from alerts.times import timestamp
from crawler.store.database import one_row


@dataclass(frozen=True)
class SourceState:
    etag: str | None = None
    last_modified: str | None = None
    listing_hash: str | None = None


def source_state(row: dict[str, Any] | None) -> SourceState:
    """The validators of a `source_row`, for the next conditional request."""
    if row is None:
        return SourceState()
    return SourceState(row["etag"], row["last_modified"], row["listing_hash"])


def source_health(db: Database, name: str, url: str) -> SourceHealth:
    """A source's recent record for health notices: failures in a row, last success, newest
    article."""
    row = one_row(
        db,
        "SELECT consecutive_failures, last_error, last_success_at,"
        " (SELECT max(fetched_at) FROM articles WHERE source = ?) AS last_article_at"
        " FROM sources WHERE name = ?",
        [name, name],
    )
    if row is None:
        return SourceHealth(name, url, 0, None, None, None)
    return SourceHealth(name=name, url=url, **row)


def record_poll(
    db: Database,
    name: str,
    url: str,
    kind: str | None,
    *,
    error: str | None = None,
    validators: SourceState | None = None,
) -> None:
    """Keep per-source fetch state; the ETag is only advanced by a poll that completed. The kind
    is the listing's as detected, kept when a failed poll could not tell it."""
    now = timestamp()
    row: dict[str, Any] = {"name": name, "url": url, "last_polled_at": now}
    if kind:
        row["kind"] = kind
    failures = one_row(db, "SELECT consecutive_failures FROM sources WHERE name = ?", [name])
    previous = failures["consecutive_failures"] if failures else 0
    if error is None:
        row.update(last_success_at=now, last_error=None, consecutive_failures=0)
        if validators is not None:
            row.update(
                etag=validators.etag,
                last_modified=validators.last_modified,
                listing_hash=validators.listing_hash,
            )
    else:
        row.update(last_error=error, consecutive_failures=(previous or 0) + 1)
    db["sources"].upsert(row, pk="name", alter=False)


def source_row(db: Database, name: str) -> dict[str, Any] | None:
    """A source's fetch and health state as stored (None before its first poll)."""
    return one_row(db, "SELECT * FROM sources WHERE name = ?", [name])


def articles_since(db: Database, source: str, since: str) -> int:
    return db.execute(
        "SELECT count(*) FROM articles WHERE source = ? AND fetched_at >= ?", [source, since]
    ).fetchone()[0]


def article_dates(db: Database, source: str, since: str) -> list[tuple[str | None, str]]:
    """(published_at, fetched_at) of a source's articles fetched since `since`, newest first:
    what its publication rate is estimated from."""
    rows = db.execute(
        "SELECT published_at, fetched_at FROM articles WHERE source = ? AND fetched_at >= ?"
        " ORDER BY fetched_at DESC",
        [source, since],
    ).fetchall()
    return [(published, fetched) for published, fetched in rows]
