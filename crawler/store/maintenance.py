"""The database file as a whole, for operators: what it holds and costs on disk (`db stats`), a
consistent copy beside the running daemon (`db backup`), and the article list the demo prints.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from alerts.database import Database
from crawler.store.database import StoreError, connect_read_only, joined, store_error
from crawler.store.retention import last_run


@dataclass(frozen=True)
class TableSize:
    """One table with its indexes and FTS shadow tables counted in."""

    name: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class DatabaseStats:
    """What the file holds and costs on disk; `db stats --json` prints it as it is."""

    path: str
    file_bytes: int
    wal_bytes: int
    page_size: int
    pages: int
    free_pages: int
    auto_vacuum: str
    bytes_measured: bool  # False: bytes estimated from column lengths (no dbstat in this SQLite)
    tables: list[TableSize]
    articles: int
    pruned_articles: int
    oldest_article: str | None
    newest_article: str | None
    oldest_text: str | None
    retention_last_run: str | None


def _btrees(conn: sqlite3.Connection) -> list[tuple[str, str, bool]]:
    """Each table, index and FTS shadow table: (its name, the table it belongs to, whether it
    holds rows of its own to estimate)."""
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    virtual = {name for kind, name, _, sql in rows if kind == "table" and "VIRTUAL" in (sql or "")}
    found = []
    for kind, name, table, _ in rows:
        shadow = next((v for v in virtual if name.startswith(f"{v}_")), None)
        found.append((name, shadow or table, kind == "table" and name not in virtual))
    return found


def _measured_bytes(conn: sqlite3.Connection) -> dict[str, int] | None:
    try:
        return dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    except sqlite3.OperationalError:
        return None


def _estimated_bytes(conn: sqlite3.Connection, name: str) -> int:
    """Sum of the stored lengths of every column: leaves out page overhead and indexes."""
    columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
    total = " + ".join(f'coalesce(length(CAST("{c}" AS BLOB)), 0)' for c in columns) or "0"
    return conn.execute(f'SELECT coalesce(sum({total}), 0) FROM "{name}"').fetchone()[0]


def _tables(conn: sqlite3.Connection) -> tuple[list[TableSize], bool]:
    """Rows and bytes per table, its indexes and FTS shadow tables counted in; bytes from
    SQLite's `dbstat` when it is compiled in, else estimated."""
    btrees = _btrees(conn)
    measured = _measured_bytes(conn)
    sizes: dict[str, int] = {owner: 0 for _, owner, _ in btrees if not owner.startswith("sqlite_")}
    for name, owner, has_rows in btrees:
        if owner not in sizes:
            continue
        if measured is not None:
            sizes[owner] += measured.get(name, 0)
        elif has_rows:
            sizes[owner] += _estimated_bytes(conn, name)
    found = [
        TableSize(t, conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0], sizes[t])
        for t in sorted(sizes)
    ]
    return found, measured is not None


def _scalar(conn: sqlite3.Connection, sql: str) -> Any:
    return conn.execute(sql).fetchone()[0]


def database_stats(conn: sqlite3.Connection, path: Path, retention_task: str) -> DatabaseStats:
    """What `newswatch db stats` shows; `retention_task` names retention's row in `maintenance`."""
    tables, measured = _tables(conn)
    wal = Path(f"{path}-wal")
    return DatabaseStats(
        path=str(path),
        file_bytes=path.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        page_size=_scalar(conn, "PRAGMA page_size"),
        pages=_scalar(conn, "PRAGMA page_count"),
        free_pages=_scalar(conn, "PRAGMA freelist_count"),
        auto_vacuum=("none", "full", "incremental")[_scalar(conn, "PRAGMA auto_vacuum")],
        bytes_measured=measured,
        tables=tables,
        articles=_scalar(conn, "SELECT count(*) FROM articles"),
        pruned_articles=_scalar(conn, "SELECT count(*) FROM articles WHERE pruned_at IS NOT NULL"),
        oldest_article=_scalar(conn, "SELECT min(fetched_at) FROM articles"),
        newest_article=_scalar(conn, "SELECT max(fetched_at) FROM articles"),
        oldest_text=_scalar(conn, "SELECT min(fetched_at) FROM articles WHERE pruned_at IS NULL"),
        retention_last_run=last_run(sqlite_utils.Database(conn), retention_task),
    )


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for (t,) in tables}


def backup(database: Path, target: Path) -> dict[str, int]:
    """Copy with SQLite's online backup API in one step: one read transaction, so the copy is
    one consistent moment and, in WAL mode, the daemon's writes go on meanwhile (a copy in
    several steps restarts whenever the daemon writes). The copy is written beside `target`,
    checked (opens, integrity_check, schema version), then renamed onto it. Returns its row
    counts."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        with closing(connect_read_only(database)) as source:
            version = source.execute("PRAGMA user_version").fetchone()[0]
            with closing(sqlite3.connect(partial)) as copy:
                source.backup(copy)
        with closing(sqlite3.connect(f"{partial.resolve().as_uri()}?mode=ro", uri=True)) as copy:
            check = copy.execute("PRAGMA integrity_check").fetchone()[0]
            copied = copy.execute("PRAGMA user_version").fetchone()[0]
            counts = _counts(copy)
        if check != "ok" or copied != version:
            raise StoreError(f"{target}: the copy failed its check ({check}); nothing replaced")
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise store_error(target, exc) from None
    finally:
        partial.unlink(missing_ok=True)
    return counts


def article_overview(db: Database) -> list[dict[str, Any]]:
    """Every article in storage order with its source, language, title, story and the
    watchlists it matched (`hits`, comma-separated, None when none did)."""
    return list(
        db.query(
            "SELECT a.source, a.language, a.title, a.story_id,"
            f" {joined(db, 'm.watchlist')} AS hits"
            " FROM articles a LEFT JOIN matches m ON m.article_id = a.id"
            " GROUP BY a.id ORDER BY a.id"
        )
    )
