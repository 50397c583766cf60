"""Opening the database file: creating or migrating it, read-only access for commands beside a
running daemon, the daemon's lock, and errors that tell an operator what to do."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from alerts import schema as alerts_schema
from alerts.database import POSTGRESQL, Database, dialect, is_postgres_url
from crawler.store.postgres import open_postgres
from crawler.store.schema import MIGRATIONS, SCHEMA_VERSION


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


def _up_to_date(path: Path | str, db: sqlite_utils.Database) -> bool:
    """Whether the file needs no migration; a file made by a newer newswatch, in the crawler's
    tables or the outbox's, is refused before anything changes."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this newswatch ({SCHEMA_VERSION});"
            " upgrade newswatch"
        )
    try:
        alerts_schema.check(db)
    except alerts_schema.SchemaError as error:
        raise StoreError(f"{path}: {error}") from None
    outbox_version = alerts_schema.stored_version(db)
    return version == SCHEMA_VERSION and outbox_version == alerts_schema.SCHEMA_VERSION


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


def open_db(path: Path | str, *, wait: float = 0.0) -> Database:
    """Open (creating or migrating forward) the database file; WAL so readers never block. A
    `postgresql://` URL opens the cluster's shared database instead, waiting up to `wait`
    seconds for PostgreSQL to answer."""
    if isinstance(path, str) and is_postgres_url(path):
        return open_postgres(path, wait)
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
    so that retention can give freed pages back to the file system. The crawler's migrations
    run first, then the alerts library's on its own tables."""
    if not db.execute("PRAGMA page_count").fetchone()[0]:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("PRAGMA journal_mode=WAL")
    _up_to_date(path, db)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number in range(version, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version={number + 1}")
    alerts_schema.migrate(db)


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


def open_for_reading(path: Path | str) -> Database:
    """The database for a command that only reads; a file of an older schema (the crawler's
    or the outbox's) is migrated first (that needs write access, and says so when it has none).
    A PostgreSQL database is opened as the workers open it: its schema is theirs to move."""
    if isinstance(path, str):
        return open_db(path)
    db = sqlite_utils.Database(connect_read_only(path))
    try:
        current = _up_to_date(path, db)
    except StoreError:
        db.close()
        raise
    if not current:
        db.close()
        return open_db(path)
    return db


def one_row(db: Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return rows[0] if rows else None


def one_of(db: Database, column: str, values: list[Any]) -> tuple[str, Any]:
    """`column` is one of `values`, as a condition and its one parameter: a list of any length
    binds as one JSON text SQLite reads back with `json_each`, or as one PostgreSQL array."""
    if dialect(db) == POSTGRESQL:
        return f"{column} = ANY(?)", list(values)
    return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(values)


def joined(db: Database, expression: str) -> str:
    """The aggregate joining a group's values of `expression` (which may start with DISTINCT)
    with commas, in no particular order."""
    if dialect(db) == POSTGRESQL:
        return f"string_agg({expression}, ',')"
    return f"group_concat({expression})"


def execute_many(db: Database, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """One statement over many rows; sqlite-utils leaves that to its connection."""
    if dialect(db) == POSTGRESQL:
        db.executemany(sql, rows)
    else:
        db.conn.executemany(sql, rows)


# SQLite's default limit on bound parameters is 999 on older builds: lists go in chunks
_CHUNK = 500


def chunks(values: list[Any]) -> Iterator[tuple[list[Any], str]]:
    """`values` in slices small enough to bind, each with its `?` marks."""
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        yield chunk, ",".join("?" * len(chunk))
