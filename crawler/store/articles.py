"""Stored articles, the URLs that lead to them, their versions, their full-text rows, their
watchlist matches, and the pages whose fetch failed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from alerts.database import SQLITE, Database, dialect
from alerts.normalize import normalise
from alerts.times import timestamp
from crawler.store.database import one_of, one_row
from crawler.urls import canonical_url


def remember_urls(db: Database, article_id: int, canonicals: set[str]) -> None:
    db["seen_urls"].insert_all(
        [{"canonical_url": c, "article_id": article_id} for c in canonicals], ignore=True
    )


def known_article(db: Database, canonical: str) -> dict[str, Any] | None:
    """The stored article a canonical URL led to, with what an update is compared against."""
    return one_row(
        db,
        "SELECT a.id, a.story_id, a.content_hash, a.extraction, a.source_updated_at, a.pruned_at"
        " FROM seen_urls s JOIN articles a ON a.id = s.article_id WHERE s.canonical_url = ?",
        [canonical],
    )


def first_known(db: Database, aliases: frozenset[str]) -> dict[str, Any] | None:
    """The stored article any of a record's URLs (feed link, final URL, rel=canonical) led to."""
    for alias in sorted(aliases):
        known = known_article(db, alias)
        if known is not None:
            return known
    return None


def known_articles(db: Database, canonicals: list[str]) -> dict[str, dict[str, Any]]:
    """For a whole listing in one query: the stored article each canonical URL led to, with
    the latest "last changed" any listing gave for it, when its page was last fetched and
    whether retention pruned it."""
    listed, param = one_of(db, "s.canonical_url", canonicals)
    rows = db.query(
        "SELECT s.canonical_url, a.id, a.source_updated_at, a.last_fetched_at, a.pruned_at"
        f" FROM seen_urls s JOIN articles a ON a.id = s.article_id WHERE {listed}",
        [param],
    )
    return {row.pop("canonical_url"): row for row in rows}


def fetch_failures(db: Database, canonicals: list[str]) -> dict[str, dict[str, Any]]:
    """The remembered failed fetch of each canonical URL of a listing that has one, in one query."""
    listed, param = one_of(db, "canonical_url", canonicals)
    rows = db.query(f"SELECT * FROM fetch_failures WHERE {listed}", [param])
    return {row["canonical_url"]: row for row in rows}


def record_fetch_failure(
    db: Database,
    url: str,
    reason: str,
    *,
    permanent: bool,
    listed_updated_at: str | None,
    retry_at: Callable[[int], str | None],
) -> dict[str, Any]:
    """Count one more failed fetch of `url`, made for a listing that gave `listed_updated_at`
    as its "last changed"; `retry_at(attempts)` says when the next attempt is due (None:
    never). Returns the row as stored."""
    canonical = canonical_url(url)
    previous = one_row(
        db, "SELECT attempts FROM fetch_failures WHERE canonical_url = ?", [canonical]
    )
    attempts = (previous["attempts"] if previous else 0) + 1
    row = {
        "canonical_url": canonical,
        "url": url,
        "reason": reason,
        "permanent": int(permanent),
        "attempts": attempts,
        "failed_at": timestamp(),
        "listed_updated_at": listed_updated_at,
        "retry_at": None if permanent else retry_at(attempts),
    }
    db["fetch_failures"].upsert(row, pk="canonical_url")
    return row


def forget_fetch_failure(db: Database, url: str) -> None:
    """The page was fetched: its failures no longer hold it back."""
    db.execute("DELETE FROM fetch_failures WHERE canonical_url = ?", [canonical_url(url)])


def note_listing_update(db: Database, article_id: int, updated: str | None) -> None:
    """The page was fetched again for a listing's newer "last changed" and its text had not
    changed: remember that date and the fetch, so neither triggers another fetch."""
    db.execute(
        "UPDATE articles SET source_updated_at = coalesce(?, source_updated_at),"
        " last_fetched_at = ? WHERE id = ?",
        [updated, timestamp(), article_id],
    )


def replace_text(db: Database, article_id: int, changes: dict[str, Any]) -> int:
    """Store a new version of an article in place (its id, URLs, story and alerts stay), keeping
    the text it replaces in `article_versions`; the old text's watchlist matches go (the new
    text is matched afresh). Returns the new version number."""
    current = db["articles"].get(article_id)
    db["article_versions"].insert(
        {
            "article_id": article_id,
            "version": current["version"],
            "title": current["title"],
            "text": current["text"],
            "content_hash": current["content_hash"],
            "fetched_at": current["updated_at"] or current["fetched_at"],
            "replaced_at": timestamp(),
        }
    )
    version = current["version"] + 1
    db["articles"].update(
        article_id, {**changes, "version": version, "updated_at": timestamp(), "pruned_at": None}
    )
    if dialect(db) == SQLITE:
        db.execute("DELETE FROM articles_fts WHERE rowid = ?", [article_id])
    _index_text(db, article_id, changes.get("title"), changes["text"])
    db.execute("DELETE FROM matches WHERE article_id = ?", [article_id])
    return version


def insert_article(db: Database, article: dict[str, Any]) -> int:
    """Insert the article and its normalised FTS row; the caller holds `db.atomic()`."""
    article_id = int(db["articles"].insert(article, alter=False).last_pk)
    _index_text(db, article_id, article.get("title"), article["text"])
    return article_id


def article_row(db: Database, article_id: int) -> dict[str, Any]:
    """The stored article, every column: what an alert on it says."""
    return db["articles"].get(article_id)


def record_match(
    db: Database,
    article_id: int,
    watchlist: str,
    hits: list[dict[str, Any]],
    snippet: str,
) -> None:
    """A watchlist's hits in an article's current text (kept whether or not an alert goes out:
    the story may have been alerted already)."""
    db["matches"].upsert(
        {
            "article_id": article_id,
            "watchlist": watchlist,
            "hits": json.dumps(hits, ensure_ascii=False),
            "snippet": snippet,
            "matched_at": timestamp(),
        },
        pk=("article_id", "watchlist"),
    )


ARCHIVE_COLUMNS = (
    "id, url, canonical_url, source, title, text, language, published_at, fetched_at, story_id"
)


def check_archive(db: Database) -> None:
    """Raises the engine's error unless the database holds the articles table."""
    db.execute("SELECT 1 FROM articles LIMIT 1").fetchall()


# Articles read per query by a backtest: a page of texts in memory, never the whole archive.
READ_PAGE = 200


def read_articles(db: Database, since: str | None) -> Iterator[dict[str, Any]]:
    """Articles fetched at or after `since` (all when None), oldest first, read lazily a page
    at a time (PostgreSQL's client cursor would hold every text at once): what a backtest
    matches."""
    after: tuple[str, int] = (since or "", 0)
    while True:
        rows = list(
            db.query(
                f"SELECT {ARCHIVE_COLUMNS} FROM articles WHERE (fetched_at, id) > (?, ?)"
                " ORDER BY fetched_at, id LIMIT ?",
                [*after, READ_PAGE],
            )
        )
        yield from rows
        if len(rows) < READ_PAGE:
            return
        after = (rows[-1]["fetched_at"], rows[-1]["id"])


def _index_text(db: Database, article_id: int, title: str | None, text: str) -> None:
    """The FTS row of an article's current text (a pruned article revived by an update has
    none left to update). Only the SQLite file has a full-text index: the web app's search,
    its one reader, runs on the file."""
    if dialect(db) != SQLITE:
        return
    db["articles_fts"].insert(
        {"rowid": article_id, "title": normalise(title or ""), "text": normalise(text)}
    )
