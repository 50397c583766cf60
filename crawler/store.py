"""The one SQLite file: every fact the daemon must not lose is a row here before the next step acts.

Tables have plain names so people can open the file in Datasette or sqlite3: `sources`,
`articles` (+ `articles_fts` over normalised text), `matches`, `alerts` (the outbox).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from alerts.normalize import normalise


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    db["alerts"].create(
        {
            "id": str,
            "watchlist": str,
            "channel": str,
            "story_id": str,
            "article_id": int,
            "status": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
            "payload": str,
        },
        pk="id",
        not_null={"watchlist", "channel", "story_id", "status", "created_at", "payload"},
        defaults={"attempts": 0},
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["alerts"].create_index(["watchlist", "story_id", "channel"], unique=True)
    db["alerts"].create_index(["status", "next_attempt_at"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The database file cannot be used as it is (newer schema, not a database)."""


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating or migrating forward) the database file; WAL so readers never block."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a newswatch database ({exc})") from None
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this newswatch ({SCHEMA_VERSION});"
            " upgrade newswatch"
        )
    for number in range(version, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version={number + 1}")
    return db


def content_hash(title: str, text: str) -> str:
    """Hash of the normalised text: copies differing only in diacritics, case or spacing agree."""
    normalised = " ".join(normalise(f"{title}\n{text}").split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SourceState:
    etag: str | None = None
    last_modified: str | None = None


def source_state(db: sqlite_utils.Database, name: str) -> SourceState:
    row = _one(db, "SELECT etag, last_modified FROM sources WHERE name = ?", [name])
    return SourceState(**row) if row else SourceState()


def record_poll(
    db: sqlite_utils.Database,
    name: str,
    url: str,
    kind: str | None,
    *,
    error: str | None = None,
    validators: SourceState | None = None,
) -> None:
    """Keep per-source fetch state; the ETag is only advanced by a poll that completed."""
    now = utcnow()
    row: dict[str, Any] = {"name": name, "url": url, "kind": kind, "last_polled_at": now}
    failures = _one(db, "SELECT consecutive_failures FROM sources WHERE name = ?", [name])
    previous = failures["consecutive_failures"] if failures else 0
    if error is None:
        row.update(last_success_at=now, last_error=None, consecutive_failures=0)
        if validators is not None:
            row.update(etag=validators.etag, last_modified=validators.last_modified)
    else:
        row.update(last_error=error, consecutive_failures=(previous or 0) + 1)
    db["sources"].upsert(row, pk="name", alter=False)


def known_url(db: sqlite_utils.Database, canonical: str) -> bool:
    """Every canonical URL that led to a stored article (feed link, final URL, rel=canonical)."""
    return _one(db, "SELECT 1 AS x FROM seen_urls WHERE canonical_url = ?", [canonical]) is not None


def remember_urls(db: sqlite_utils.Database, article_id: int, canonicals: set[str]) -> None:
    db["seen_urls"].insert_all(
        [{"canonical_url": c, "article_id": article_id} for c in canonicals], ignore=True
    )


def story_for_hash(db: sqlite_utils.Database, digest: str) -> str | None:
    row = _one(db, "SELECT story_id FROM articles WHERE content_hash = ? LIMIT 1", [digest])
    return row["story_id"] if row else None


def story_size(db: sqlite_utils.Database, story_id: str) -> int:
    return _one(db, "SELECT count(*) AS n FROM articles WHERE story_id = ?", [story_id])["n"]


def insert_article(db: sqlite_utils.Database, article: dict[str, Any]) -> int:
    """Insert the article and its normalised FTS row; the caller holds `db.atomic()`."""
    article_id = db["articles"].insert(article, alter=False).last_pk
    db["articles_fts"].insert(
        {
            "rowid": article_id,
            "title": normalise(article.get("title") or ""),
            "text": normalise(article["text"]),
        }
    )
    return int(article_id)


def _one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return rows[0] if rows else None
