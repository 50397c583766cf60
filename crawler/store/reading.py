"""The questions the web app's pages ask of the crawler's tables, each one query (or two) that
answers a page's part: counts for the overview, a watchlist's stories, a story's copies and
versions, an article and its matches. Read-only: the app runs them on a read-only connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alerts.database import SQLITE, Database, dialect
from crawler.store.articles import ARCHIVE_COLUMNS
from crawler.store.database import one_of, one_row

ARTICLE_COLUMNS = (
    "a.id, a.url, a.canonical_url, a.source, a.title, a.language, a.published_at,"
    " a.fetched_at, a.story_id, a.version, a.updated_at, a.pruned_at"
)


def watchlist_counts(db: Database, recent: str, since: str) -> dict[str, tuple[int, int]]:
    """Stories each watchlist matched since `recent` and since the earlier `since` (stored
    times), in one pass over the matches."""
    rows = db.execute(
        "SELECT m.watchlist,"
        " count(DISTINCT CASE WHEN m.matched_at >= ? THEN a.story_id END),"
        " count(DISTINCT a.story_id) FROM matches m"
        " JOIN articles a ON a.id = m.article_id WHERE m.matched_at >= ?"
        " GROUP BY m.watchlist",
        [recent, since],
    ).fetchall()
    return {watchlist: (day, week) for watchlist, day, week in rows}


def hits_per_day(db: Database, since: str) -> dict[str, int]:
    """Stories matched per day (`YYYY-MM-DD`) since `since`, any watchlist."""
    return dict(
        db.execute(
            "SELECT substr(m.matched_at, 1, 10) AS day, count(DISTINCT a.story_id) FROM matches m"
            " JOIN articles a ON a.id = m.article_id WHERE m.matched_at >= ? GROUP BY day",
            [since],
        ).fetchall()
    )


def watchlist_stories(
    db: Database, watchlist: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The watchlist's stories, newest match first, each shown by its first matched article
    (the one that alerted) with that match's hits and snippet, and the story's copies."""
    stories = [
        row[0]
        for row in db.execute(
            "SELECT a.story_id FROM matches m JOIN articles a ON a.id = m.article_id"
            " WHERE m.watchlist = ? GROUP BY a.story_id"
            " ORDER BY max(m.matched_at) DESC, max(m.article_id) DESC LIMIT ? OFFSET ?",
            [watchlist, limit, offset],
        )
    ]
    listed, param = one_of(db, "a.story_id", stories)
    rows = db.query(
        f"SELECT {ARTICLE_COLUMNS}, m.hits, m.snippet, m.matched_at,"
        " (SELECT count(*) FROM articles c WHERE c.story_id = a.story_id) AS copies"
        " FROM matches m JOIN articles a ON a.id = m.article_id"
        f" WHERE m.watchlist = ? AND {listed} ORDER BY m.article_id",
        [watchlist, param],
    )
    first: dict[str, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(row["story_id"], row)
    return [first[story] for story in stories if story in first]


def story_articles(db: Database, story_id: str) -> list[dict[str, Any]]:
    """Every copy of a story, in the order they were stored."""
    return list(
        db.query(
            f"SELECT {ARTICLE_COLUMNS} FROM articles a WHERE a.story_id = ? ORDER BY a.id",
            [story_id],
        )
    )


def story_versions(db: Database, story_id: str) -> list[dict[str, Any]]:
    """The texts updates replaced, per copy, oldest first."""
    return list(
        db.query(
            "SELECT v.article_id, v.version, v.title, v.fetched_at, v.replaced_at, a.source"
            " FROM article_versions v JOIN articles a ON a.id = v.article_id"
            " WHERE a.story_id = ? ORDER BY v.article_id, v.version",
            [story_id],
        )
    )


def article(db: Database, article_id: int) -> dict[str, Any] | None:
    """An article with its text, or None."""
    return one_row(
        db, f"SELECT {ARTICLE_COLUMNS}, a.text FROM articles a WHERE a.id = ?", [article_id]
    )


def article_matches(db: Database, article_id: int) -> list[dict[str, Any]]:
    """The watchlists the article matched, with their hits (JSON) and snippets."""
    return list(
        db.query(
            "SELECT watchlist, hits, snippet, matched_at FROM matches WHERE article_id = ?"
            " ORDER BY watchlist",
            [article_id],
        )
    )


def story_updates(db: Database, story_ids: list[str]) -> dict[str, str]:
    """When each story last changed: its newest copy stored or updated (stored time)."""
    listed, param = one_of(db, "story_id", story_ids)
    return dict(
        db.execute(
            "SELECT story_id, max(coalesce(updated_at, fetched_at)) FROM articles"
            f" WHERE {listed} GROUP BY story_id",
            [param],
        ).fetchall()
    )


def search_candidates(db: Database, fts_query: str | None, limit: int) -> Iterator[dict[str, Any]]:
    """The newest `limit` articles whose normalised text has the FTS5 query's terms (every
    article when None), newest first, as a backtest reads them (`read_articles`), lazily: the
    caller confirms each with the matcher and may stop at its deadline. PostgreSQL has no
    full-text index of the normalised text: there every article is a candidate."""
    if fts_query is None or dialect(db) != SQLITE:
        ids = "SELECT id FROM articles ORDER BY id DESC LIMIT ?"
        params: list[Any] = [limit]
    else:
        ids = (
            "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? ORDER BY rowid DESC LIMIT ?"
        )
        params = [fts_query, limit]
    cursor = db.execute(
        f"SELECT {ARCHIVE_COLUMNS} FROM articles WHERE id IN ({ids}) ORDER BY id DESC", params
    )
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def source_counters(db: Database) -> dict[str, dict[str, Any]]:
    """Per source as stored: last success, consecutive failures and articles kept."""
    found: dict[str, dict[str, Any]] = {
        name: {"last_success_at": success, "failures": failures or 0, "articles": 0}
        for name, success, failures in db.execute(
            "SELECT name, last_success_at, consecutive_failures FROM sources"
        )
    }
    for name, count in db.execute("SELECT source, count(*) FROM articles GROUP BY source"):
        found.setdefault(name, {"last_success_at": None, "failures": 0})["articles"] = count
    return found
