"""Backtest: run watchlists over the articles already stored, as the daemon would have matched
them, so an analyst can try a new or changed watchlist before it alerts anyone.

The database is opened read-only: a backtest never sends, never writes, and can run beside a
daemon that is polling into the same file (WAL lets readers in). In the cluster mode it reads
the workers' PostgreSQL database, which readers never block either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from alerts.database import Database
from alerts.document import PARAGRAPH_SEPARATOR, Document
from alerts.matcher import WatchlistMatch
from alerts.times import timestamp
from alerts.watchlists import Watchlists
from crawler import store


class ArchiveError(Exception):
    """The database cannot be read (missing, not a newswatch database)."""


@dataclass(frozen=True)
class StoredArticle:
    """An article as stored, with the Document the daemon matched when it stored it."""

    id: int
    url: str
    canonical_url: str
    source: str
    title: str
    language: str | None
    published_at: str | None
    fetched_at: str
    story_id: str
    document: Document

    def summary(self) -> dict[str, object]:
        """What identifies the article in a report (its text is left out: it can be long)."""
        return {
            "id": self.id,
            "url": self.url,
            "canonical_url": self.canonical_url,
            "title": self.title,
            "source": self.source,
            "language": self.language,
            "published_at": self.published_at,
            "fetched_at": self.fetched_at,
            "story_id": self.story_id,
        }


def open_read_only(database: Path | str) -> Database:
    """The archive to read: the SQLite file as it is (never migrated, never written), or the
    cluster's database, whose schema the workers keep."""
    if isinstance(database, str):
        return store.open_for_reading(database)
    try:
        db = sqlite_utils.Database(store.connect_read_only(database))
    except store.StoreError as exc:
        raise ArchiveError(str(exc)) from None
    try:
        store.check_archive(db)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ArchiveError(f"{database}: not a newswatch database ({exc})") from None
    return db


def cutoff(seconds: float | None, now: datetime | None = None) -> str | None:
    """The oldest `fetched_at` a backtest over the last `seconds` reads, in the stored format."""
    if seconds is None:
        return None
    return timestamp((now or datetime.now(UTC)) - timedelta(seconds=seconds))


def stored_articles(db: Database, since: str | None) -> Iterator[StoredArticle]:
    """Articles fetched at or after `since` (all when None), oldest first, read lazily."""
    for row in store.read_articles(db, since):
        yield stored_article(row)


def stored_article(fields: dict[str, Any]) -> StoredArticle:
    """Rebuild the Document from the stored text: paragraphs were joined with the separator."""
    text = fields.pop("text") or ""
    paragraphs = tuple(text.split(PARAGRAPH_SEPARATOR)) if text else ()
    document = Document(fields["title"] or "", paragraphs, fields["language"])
    return StoredArticle(**fields, document=document)


def backtest(
    db: Database, watchlists: Watchlists, since: str | None
) -> Iterator[tuple[StoredArticle, list[WatchlistMatch]]]:
    """Each stored article with the watchlists it matches, through the daemon's own
    `Watchlists.match` with the article's source and language, so filters apply."""
    for article in stored_articles(db, since):
        yield article, watchlists.match(article.document, article.source)
