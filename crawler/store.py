"""The one SQLite file: every fact the daemon must not lose is a row here before the next step acts.

Tables have plain names so people can open the file in Datasette or sqlite3: `sources`,
`articles` (+ `articles_fts` over normalised text), `matches`, `alerts` (the outbox).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from alerts.normalize import normalise
from alerts.outbox import timestamp
from crawler.instants import parse_instant
from crawler.urls import canonical_url


def utcnow() -> str:
    return timestamp()


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


def _outbox_delivery_state(db: sqlite_utils.Database) -> None:
    """Outbox rows that are not one watchlist hit (digests, overflow summaries, health notices,
    test messages) have no watchlist or story; `bundle_id` names the digest or summary an alert
    was folded into. `digests` keeps each digest channel's last run, so one missed while the
    daemon was down is sent at the next start; `health_alerts` the problems already announced."""
    db["alerts"].add_column("kind", str, not_null_default="alert")
    db["alerts"].add_column("bundle_id", str)
    db["alerts"].transform(not_null={"watchlist": False, "story_id": False})
    db["alerts"].create_index(["channel", "status", "sent_at"])
    db["digests"].create({"channel": str, "last_run_at": str}, pk="channel")
    db["health_alerts"].create(
        {"subject": str, "problem": str, "since": str, "notified_at": str}, pk="subject"
    )


def _listing_hash(db: sqlite_utils.Database) -> None:
    """Servers without ETag or Last-Modified still let an idle poll stop early: the hash of the
    listing body last read in full means "unchanged, nothing to parse or fetch"."""
    db["sources"].add_column("listing_hash", str)


def _stories_and_versions(db: sqlite_utils.Database) -> None:
    """Near-duplicate signatures (read back into the LSH index at start), superseded versions of
    updated articles, and story update notices: `notice` 0 is a watchlist's alert on a story,
    1, 2, … its update notices, so the outbox's unique key gains `notice`."""
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
    db["alerts"].add_column("notice", int, not_null_default=0)
    db.execute("DROP INDEX IF EXISTS idx_alerts_watchlist_story_id_channel")
    db["alerts"].create_index(["watchlist", "story_id", "channel", "notice"], unique=True)


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


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1,
    _outbox_delivery_state,
    _listing_hash,
    _stories_and_versions,
    _articles_by_source,
    _current_canonical_forms,
    _retention,
    _listing_instants_and_fetch_failures,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The database file cannot be used as it is; the message says why and what to do, and
    only calls a file "not a newswatch database" when SQLite says so."""


# SQLite's primary result codes (the low byte of an extended code)
_PERM, _BUSY, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 8, 10, 11, 13, 14, 26


def store_error(path: Path | str, exc: sqlite3.Error) -> StoreError:
    """What an operator must know about a failed open or write: whether the file is healthy
    (read-only medium, full disk, locked) or really unusable (corrupt, not a database)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_READONLY, _PERM):
        return StoreError(
            f"{path}: cannot write here ({exc}); the file is left as it is: make it and its"
            " folder writable (read-only commands such as `newswatch stories` work without)"
        )
    if code == _CANTOPEN:
        return StoreError(
            f"{path}: cannot open or create the database file ({exc}): check that its folder"
            " exists and is readable (and writable, for the daemon)"
        )
    if code == _FULL:
        return StoreError(
            f"{path}: the disk is full ({exc}); nothing was changed: free some space and retry"
        )
    if code == _BUSY:
        return StoreError(f"{path}: the database is locked by another process ({exc}); retry")
    if code == _IOERR:
        return StoreError(f"{path}: input/output error ({exc}): check the disk or medium")
    if code in (_NOTADB, _CORRUPT):
        return StoreError(f"{path}: not a newswatch database, or a damaged one ({exc})")
    return StoreError(f"{path}: database error ({exc})")


def _check_version(path: Path | str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this newswatch ({SCHEMA_VERSION});"
            " upgrade newswatch"
        )


class AlreadyRunning(StoreError):
    """Another daemon holds the database: two would poll twice and send alerts twice."""


@contextmanager
def daemon_lock(database: Path) -> Iterator[None]:
    """The lock a daemon holds on its database (`<database>.lock`, with its pid): a second
    daemon is refused, and so is work that must not run beside one (a full compaction)."""
    path = Path(f"{database}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"another newswatch daemon is already using {database} (lock {path});"
                " stop it first or point this one at another database"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating or migrating forward) the database file; WAL so readers never block."""
    try:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise store_error(path, exc) from None
    db = sqlite_utils.Database(conn)
    try:
        _prepare(db, path)
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(path, exc) from None
    return db


def _prepare(db: sqlite_utils.Database, path: Path | str) -> None:
    """A new file gets incremental auto-vacuum, which must be chosen before its first table,
    so that retention can give freed pages back to the file system."""
    if not db.execute("PRAGMA page_count").fetchone()[0]:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("PRAGMA journal_mode=WAL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    _check_version(path, version)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    for number in range(version, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version={number + 1}")


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes, for commands that only read: they work on a read-only
    file, folder or medium, beside a running daemon. Without write access to the folder a
    WAL file can only be read as immutable (nothing can be writing it then)."""
    if not path.is_file():
        raise StoreError(f"{path}: no database yet (`newswatch run` creates it)")
    uri = path.resolve().as_uri()
    try:
        try:
            conn = _checked(sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False))
        except sqlite3.OperationalError:
            if os.access(path.resolve().parent, os.W_OK):
                raise
            conn = _checked(
                sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            )
    except sqlite3.Error as exc:
        raise store_error(path, exc) from None
    return conn


def _checked(conn: sqlite3.Connection) -> sqlite3.Connection:
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def open_for_reading(path: Path) -> sqlite_utils.Database:
    """The database for a command that only reads; a file of an older schema is migrated
    first (that needs write access, and says so when it has none)."""
    conn = connect_read_only(path)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < SCHEMA_VERSION:
        conn.close()
        return open_db(path)
    try:
        _check_version(path, version)
    except StoreError:
        conn.close()
        raise
    return sqlite_utils.Database(conn)


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


def source_health(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    """A source's recent record for health notices: failures in a row, last success, newest
    article."""
    row = _one(
        db,
        "SELECT consecutive_failures, last_error, last_success_at,"
        " (SELECT max(fetched_at) FROM articles WHERE source = ?) AS last_article_at"
        " FROM sources WHERE name = ?",
        [name, name],
    )
    return row or {
        "consecutive_failures": 0,
        "last_error": None,
        "last_success_at": None,
        "last_article_at": None,
    }


def record_poll(
    db: sqlite_utils.Database,
    name: str,
    url: str,
    kind: str | None,
    *,
    error: str | None = None,
    validators: SourceState | None = None,
) -> None:
    """Keep per-source fetch state; the ETag is only advanced by a poll that completed. The kind
    is the listing's as detected, kept when a failed poll could not tell it."""
    now = utcnow()
    row: dict[str, Any] = {"name": name, "url": url, "last_polled_at": now}
    if kind:
        row["kind"] = kind
    failures = _one(db, "SELECT consecutive_failures FROM sources WHERE name = ?", [name])
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


def source_row(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    """A source's fetch and health state as stored (None before its first poll)."""
    return _one(db, "SELECT * FROM sources WHERE name = ?", [name])


def articles_since(db: sqlite_utils.Database, source: str, since: str) -> int:
    return db.execute(
        "SELECT count(*) FROM articles WHERE source = ? AND fetched_at >= ?", [source, since]
    ).fetchone()[0]


def article_dates(
    db: sqlite_utils.Database, source: str, since: str
) -> list[tuple[str | None, str]]:
    """(published_at, fetched_at) of a source's articles fetched since `since`, newest first:
    what its publication rate is estimated from."""
    rows = db.execute(
        "SELECT published_at, fetched_at FROM articles WHERE source = ? AND fetched_at >= ?"
        " ORDER BY fetched_at DESC",
        [source, since],
    ).fetchall()
    return [(published, fetched) for published, fetched in rows]


def remember_urls(db: sqlite_utils.Database, article_id: int, canonicals: set[str]) -> None:
    db["seen_urls"].insert_all(
        [{"canonical_url": c, "article_id": article_id} for c in canonicals], ignore=True
    )


def known_article(db: sqlite_utils.Database, canonical: str) -> dict[str, Any] | None:
    """The stored article a canonical URL led to, with what an update is compared against."""
    return _one(
        db,
        "SELECT a.id, a.story_id, a.content_hash, a.extraction, a.source_updated_at, a.pruned_at"
        " FROM seen_urls s JOIN articles a ON a.id = s.article_id WHERE s.canonical_url = ?",
        [canonical],
    )


def known_articles(db: sqlite_utils.Database, canonicals: list[str]) -> dict[str, dict[str, Any]]:
    """For a whole listing in one query: the stored article each canonical URL led to, with
    the latest "last changed" any listing gave for it, when its page was last fetched and
    whether retention pruned it."""
    rows = db.query(
        "SELECT s.canonical_url, a.id, a.source_updated_at, a.last_fetched_at, a.pruned_at"
        " FROM seen_urls s JOIN articles a ON a.id = s.article_id"
        " WHERE s.canonical_url IN (SELECT value FROM json_each(?))",
        [json.dumps(canonicals)],
    )
    return {row.pop("canonical_url"): row for row in rows}


def fetch_failures(db: sqlite_utils.Database, canonicals: list[str]) -> dict[str, dict[str, Any]]:
    """The remembered failed fetch of each canonical URL of a listing that has one, in one query."""
    rows = db.query(
        "SELECT * FROM fetch_failures WHERE canonical_url IN (SELECT value FROM json_each(?))",
        [json.dumps(canonicals)],
    )
    return {row["canonical_url"]: row for row in rows}


def record_fetch_failure(
    db: sqlite_utils.Database,
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
    previous = _one(db, "SELECT attempts FROM fetch_failures WHERE canonical_url = ?", [canonical])
    attempts = (previous["attempts"] if previous else 0) + 1
    row = {
        "canonical_url": canonical,
        "url": url,
        "reason": reason,
        "permanent": int(permanent),
        "attempts": attempts,
        "failed_at": utcnow(),
        "listed_updated_at": listed_updated_at,
        "retry_at": None if permanent else retry_at(attempts),
    }
    db["fetch_failures"].upsert(row, pk="canonical_url")
    return row


def forget_fetch_failure(db: sqlite_utils.Database, url: str) -> None:
    """The page was fetched: its failures no longer hold it back."""
    db.execute("DELETE FROM fetch_failures WHERE canonical_url = ?", [canonical_url(url)])


def note_listing_update(db: sqlite_utils.Database, article_id: int, updated: str | None) -> None:
    """The page was fetched again for a listing's newer "last changed" and its text had not
    changed: remember that date and the fetch, so neither triggers another fetch."""
    db.execute(
        "UPDATE articles SET source_updated_at = coalesce(?, source_updated_at),"
        " last_fetched_at = ? WHERE id = ?",
        [updated, utcnow(), article_id],
    )


def replace_text(db: sqlite_utils.Database, article_id: int, changes: dict[str, Any]) -> int:
    """Store a new version of an article in place (its id, URLs, story and alerts stay), keeping
    the text it replaces in `article_versions`; returns the new version number."""
    current = db["articles"].get(article_id)
    db["article_versions"].insert(
        {
            "article_id": article_id,
            "version": current["version"],
            "title": current["title"],
            "text": current["text"],
            "content_hash": current["content_hash"],
            "fetched_at": current["updated_at"] or current["fetched_at"],
            "replaced_at": utcnow(),
        }
    )
    version = current["version"] + 1
    db["articles"].update(
        article_id, {**changes, "version": version, "updated_at": utcnow(), "pruned_at": None}
    )
    db.execute("DELETE FROM articles_fts WHERE rowid = ?", [article_id])
    _index_text(db, article_id, changes.get("title"), changes["text"])
    return version


def story_size(db: sqlite_utils.Database, story_id: str) -> int:
    return _one(db, "SELECT count(*) AS n FROM articles WHERE story_id = ?", [story_id])["n"]


def insert_article(db: sqlite_utils.Database, article: dict[str, Any]) -> int:
    """Insert the article and its normalised FTS row; the caller holds `db.atomic()`."""
    article_id = int(db["articles"].insert(article, alter=False).last_pk)
    _index_text(db, article_id, article.get("title"), article["text"])
    return article_id


def _index_text(db: sqlite_utils.Database, article_id: int, title: str | None, text: str) -> None:
    """The FTS row of an article's current text (a pruned article revived by an update has
    none left to update)."""
    db["articles_fts"].insert(
        {"rowid": article_id, "title": normalise(title or ""), "text": normalise(text)}
    )


def _one(db: sqlite_utils.Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return rows[0] if rows else None
