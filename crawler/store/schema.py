"""The crawler's tables and their migrations, oldest first: a file made by any earlier newswatch
is brought forward one step at a time, each step in one transaction. The outbox tables are the
alerts library's, with migrations of their own (`alerts.schema`); the store runs both."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from alerts import schema as alerts_schema
from crawler.instants import parse_instant
from crawler.urls import canonical_url


def _v1(db: sqlite_utils.Database) -> None:
    db["sources"].create(
        {
            "name": str,
            "url": str,
            "kind": str,
            "etag": str,
            "last_modified": str,
            "last_polled_at": str,
            "last_success_at": str,
            "last_error": str,
            "consecutive_failures": int,
        },
        pk="name",
        defaults={"consecutive_failures": 0},
    )
    db["articles"].create(
        {
            "id": int,
            "url": str,
            "canonical_url": str,
            "source": str,
            "title": str,
            "text": str,
            "language": str,
            "published_at": str,
            "fetched_at": str,
            "content_hash": str,
            "extraction": str,
            "story_id": str,
            "html": str,
        },
        pk="id",
        not_null={"url", "canonical_url", "source", "fetched_at", "content_hash", "story_id"},
    )
    db["articles"].create_index(["canonical_url"], unique=True)
    db["articles"].create_index(["content_hash"])
    db["articles"].create_index(["fetched_at"])
    db["seen_urls"].create(
        {"canonical_url": str, "article_id": int},
        pk="canonical_url",
        foreign_keys=[("article_id", "articles", "id")],
    )
    db.execute("CREATE VIRTUAL TABLE articles_fts USING fts5(title, text, tokenize='unicode61')")
    db["matches"].create(
        {"article_id": int, "watchlist": str, "hits": str, "snippet": str, "matched_at": str},
        pk=("article_id", "watchlist"),
        foreign_keys=[("article_id", "articles", "id")],
    )


def _outbox_delivery_state(db: sqlite_utils.Database) -> None:
    """Version 2 extended the outbox (delivery state, digests, health notices), which the alerts
    library now creates and migrates itself (`alerts.schema`): the step stays so that every
    later version keeps its number."""


def _listing_hash(db: sqlite_utils.Database) -> None:
    """Servers without ETag or Last-Modified still let an idle poll stop early: the hash of the
    listing body last read in full means "unchanged, nothing to parse or fetch"."""
    db["sources"].add_column("listing_hash", str)


def _stories_and_versions(db: sqlite_utils.Database) -> None:
    """Near-duplicate signatures (read back into the LSH index at start) and superseded versions
    of updated articles. (This step also gave the outbox its `notice` column: the alerts library
    does that itself now.)"""
    db["articles"].add_column("version", int, not_null_default=1)
    db["articles"].add_column("updated_at", str)
    db["articles"].add_column("source_updated_at", str)
    db["articles"].create_index(["story_id"])
    db["article_signatures"].create(
        {"article_id": int, "signature": bytes},
        pk="article_id",
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["article_versions"].create(
        {
            "article_id": int,
            "version": int,
            "title": str,
            "text": str,
            "content_hash": str,
            "fetched_at": str,
            "replaced_at": str,
        },
        pk=("article_id", "version"),
        foreign_keys=[("article_id", "articles", "id")],
    )


def _current_canonical_forms(db: sqlite_utils.Database) -> None:
    """URLs stored under an older canonical form (trailing slash kept, fewer tracking keys
    dropped) stay known: each gets its current form as an alias, so a listing that links it
    again does not fetch and store it a second time."""
    rows = db.execute(
        "SELECT canonical_url, article_id FROM seen_urls"
        " UNION SELECT canonical_url, id FROM articles"
    ).fetchall()
    db["seen_urls"].insert_all(
        [
            {"canonical_url": current, "article_id": article_id}
            for stored, article_id in rows
            if (current := canonical_url(stored)) != stored
        ],
        ignore=True,
    )


def _articles_by_source(db: sqlite_utils.Database) -> None:
    """A source's newest article (silence checks after every poll) and its recent articles
    (publication rate) without walking the articles of every other source."""
    db["articles"].create_index(["source", "fetched_at"])


def _retention(db: sqlite_utils.Database) -> None:
    """Retention keeps a pruned article as a tombstone (`pruned_at` set; text, HTML, versions,
    signature and FTS row gone; URLs, story, content hash and alerts kept, so it is never
    fetched or alerted again). Partial indexes find each day's prunable rows without walking
    the rows pruned before; `maintenance` records when each periodic task last ran."""
    db["articles"].add_column("pruned_at", str)
    db.execute("CREATE INDEX idx_articles_unpruned ON articles(fetched_at) WHERE pruned_at IS NULL")
    db.execute("CREATE INDEX idx_articles_html ON articles(fetched_at) WHERE html IS NOT NULL")
    db["article_versions"].create_index(["replaced_at"])
    db["maintenance"].create({"task": str, "last_run_at": str}, pk="task")


def _listing_instants_and_fetch_failures(db: sqlite_utils.Database) -> None:
    """Listing dates were stored as each listing wrote them (`+03:00`, `Z`, bare dates): they
    become UTC instants in one form, compared as such. `last_fetched_at` is when the page was
    last asked for, whatever it held (a refetch with the same text changes nothing else).
    `fetch_failures` remembers, per canonical URL, why its last fetch failed and when it may be
    tried again, so a page that failed is not fetched at every poll (`listed_updated_at`: the
    listing's "last changed" the failed fetch was for)."""
    db["articles"].add_column("last_fetched_at", str)
    db.execute("UPDATE articles SET last_fetched_at = coalesce(updated_at, fetched_at)")
    db.conn.create_function("parse_instant", 1, parse_instant, deterministic=True)
    db.execute(
        "UPDATE articles SET source_updated_at = parse_instant(source_updated_at)"
        " WHERE source_updated_at IS NOT NULL"
    )
    db["fetch_failures"].create(
        {
            "canonical_url": str,
            "url": str,
            "reason": str,
            "permanent": int,
            "attempts": int,
            "failed_at": str,
            "listed_updated_at": str,
            "retry_at": str,
        },
        pk="canonical_url",
        not_null={"url", "reason", "permanent", "attempts", "failed_at"},
    )


def _outbox_owned_by_alerts(db: sqlite_utils.Database) -> None:
    """The alerts library creates and migrates its own tables from this version on. A file made
    before holds them at the shape the steps above once left (version 1 made the outbox, 2 its
    delivery state, 4 its `notice` column): record which alerts version that is, so
    `alerts.schema.migrate` neither recreates nor skips a step. A new file has no outbox yet:
    the library makes it."""
    if not db["alerts"].exists():
        return
    columns = db["alerts"].columns_dict
    alerts_schema.adopt(db, 3 if "notice" in columns else 2 if "kind" in columns else 1)


def _heartbeats(db: sqlite_utils.Database) -> None:
    """Each daemon's last sign of life, for readers in other processes (`newswatch serve`)."""
    db["heartbeats"].create(
        {"host": str, "pid": int, "started_at": str, "beat_at": str},
        pk=("host", "pid"),
        not_null={"started_at", "beat_at"},
    )
    db["heartbeats"].create_index(["beat_at"])


def _matches_by_watchlist(db: sqlite_utils.Database) -> None:
    """A watchlist's page starts from its matches: without this index SQLite walked every
    article's story to find them (bench/web.py)."""
    db["matches"].create_index(["watchlist", "matched_at"], if_not_exists=True)


def _events(db: sqlite_utils.Database) -> None:
    """Events above stories (`crawler.events`): each new story's event and the profile it is
    compared by (dropped once older than any window), an inverted index on each story's most
    distinctive terms, and how many stories have each term (its rarity). Stories stored before
    are events of their own."""
    db["story_events"].create(
        {
            "story_id": str,
            "event_id": str,
            "language": str,
            "at": str,
            "score": float,
            "profile": str,
        },
        pk="story_id",
        not_null={"event_id", "language", "at"},
    )
    db["story_events"].create_index(["event_id"])
    db.execute(
        "CREATE INDEX idx_story_events_profiled ON story_events(at) WHERE profile IS NOT NULL"
    )
    db["event_index"].create(
        {"term": str, "language": str, "at": str, "story_id": str},
        not_null={"term", "language", "at", "story_id"},
    )
    db["event_index"].create_index(["term", "language", "at"])
    db["event_index"].create_index(["story_id"])
    db["event_terms"].create({"term": str, "stories": int}, pk="term", not_null={"stories"})


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1,
    _outbox_delivery_state,
    _listing_hash,
    _stories_and_versions,
    _articles_by_source,
    _current_canonical_forms,
    _retention,
    _listing_instants_and_fetch_failures,
    _outbox_owned_by_alerts,
    _heartbeats,
    _matches_by_watchlist,
    _events,
]


SCHEMA_VERSION = len(MIGRATIONS)
