"""What retention does to the file, in short steps: old texts made tombstones, stored pages,
superseded versions and failed fetches dropped, the full-text index merged, free pages given
back, and when each periodic task last ran (`maintenance`). Which rows are old is the caller's
policy (`crawler.retention`): each step here takes its cutoff and a batch size.

The row steps run on both engines; the file steps (full-text merge, incremental vacuum, WAL
checkpoint, compaction) are SQLite's alone: PostgreSQL's autovacuum does that work itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from alerts.database import SQLITE, Database, dialect
from alerts.times import timestamp

INCREMENTAL = 2


def _indexed_by(db: Database, index: str) -> str:
    """SQLite's planner is told which partial index finds the old rows; PostgreSQL's finds it."""
    return f" INDEXED BY {index}" if dialect(db) == SQLITE else ""


def prune_articles(db: Database, before: str, limit: int) -> int:
    """One batch of at most `limit` articles older than `before` (first fetched and last
    updated) made tombstones, in one transaction; returns how many. PostgreSQL writes a new
    row version on any update, so the SQLite file's delete-and-insert gains nothing there, and
    two workers pruning the same batch would both insert it again: there it is an update."""
    ids = [
        row[0]
        for row in db.execute(
            f"SELECT id FROM articles{_indexed_by(db, 'idx_articles_unpruned')}"
            " WHERE pruned_at IS NULL AND fetched_at < ? AND coalesce(updated_at, fetched_at) < ?"
            " ORDER BY fetched_at LIMIT ?",
            [before, before, limit],
        )
    ]
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    with db.atomic():
        for table in ("article_signatures", "article_versions", "matches"):
            db.execute(f"DELETE FROM {table} WHERE article_id IN ({marks})", ids)
        if dialect(db) == SQLITE:
            db.execute(f"DELETE FROM articles_fts WHERE rowid IN ({marks})", ids)
            _rewrite_as_tombstones(db, ids, marks)
        else:
            db.execute(
                "UPDATE articles SET text = NULL, html = NULL, pruned_at = ?"
                f" WHERE id IN ({marks}) AND pruned_at IS NULL",
                [timestamp(), *ids],
            )
    return len(ids)


def _rewrite_as_tombstones(db: sqlite_utils.Database, ids: list[int], marks: str) -> None:
    """Delete and insert again, rather than update: SQLite merges the pages a delete leaves
    underfull, not those an update shrinks, and a row that held a long text keeps its page to
    itself (2.6 KB per tombstone instead of 0.3 KB). The rows referring to them (URLs, alerts)
    are checked at commit, when the same ids exist again. The texts are not read back."""
    kept = ", ".join(c for c in db["articles"].columns_dict if c not in ("text", "html"))
    rows = list(db.query(f"SELECT {kept} FROM articles WHERE id IN ({marks})", ids))
    stamp = timestamp()
    db.execute("PRAGMA defer_foreign_keys=ON")
    db.execute(f"DELETE FROM articles WHERE id IN ({marks})", ids)
    db["articles"].insert_all([{**row, "pruned_at": stamp} for row in rows], alter=False)


def _batch(sql: str, index: str = "") -> Callable[[Database, str, int], int]:
    """One short transaction changing at most `limit` rows older than the cutoff; `{indexed}`
    in `sql` names `index` to SQLite."""

    def run(db: Database, before: str, limit: int) -> int:
        indexed = _indexed_by(db, index) if index else ""
        with db.atomic():
            return db.execute(sql.format(indexed=indexed), [before, limit]).rowcount

    return run


drop_html = _batch(
    "UPDATE articles SET html = NULL WHERE id IN (SELECT id FROM articles{indexed}"
    " WHERE html IS NOT NULL AND fetched_at < ? LIMIT ?)",
    "idx_articles_html",
)
drop_versions = _batch(
    "DELETE FROM article_versions WHERE (article_id, version) IN (SELECT article_id, version"
    " FROM article_versions WHERE replaced_at < ? LIMIT ?)"
)
drop_fetch_failures = _batch(
    "DELETE FROM fetch_failures WHERE canonical_url IN (SELECT canonical_url FROM fetch_failures"
    " WHERE failed_at < ? LIMIT ?)"
)


def merge_fts_step(db: sqlite_utils.Database, pages: int) -> int:
    """FTS5 forgets deleted rows only when it merges the segments that hold them: merged in
    steps of `pages` after pruning, the index keeps to its live size instead of growing by what
    each day's pruning deleted. Returns the rows changed (< 2: nothing left)."""
    before = db.conn.total_changes
    with db.atomic():
        db.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES('merge', ?)", [-pages])
    return db.conn.total_changes - before


def incremental_vacuum(db: sqlite_utils.Database) -> bool:
    """Whether the file gives freed pages back by incremental vacuum (files made before
    retention do not)."""
    return db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL


def vacuum_step(db: sqlite_utils.Database, pages: int) -> int:
    """Give up to `pages` free pages back; returns how many. (`executescript` steps the pragma
    to the end: `execute` would free a single page.)"""
    if not incremental_vacuum(db):
        return 0
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    if not free:
        return 0
    db.conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
    return free - db.execute("PRAGMA freelist_count").fetchone()[0]


def full_vacuum(db: sqlite_utils.Database) -> None:
    """Switch the file to incremental auto-vacuum and rewrite it without its free pages."""
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("VACUUM")
    checkpoint(db)


def checkpoint(db: sqlite_utils.Database) -> None:
    """Write the WAL back into the file and truncate it."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def database_file(db: sqlite_utils.Database) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def last_run(db: Database, task: str) -> str | None:
    row = db.execute("SELECT last_run_at FROM maintenance WHERE task = ?", [task]).fetchone()
    return row[0] if row else None


def record_run(db: Database, task: str) -> None:
    db["maintenance"].upsert({"task": task, "last_run_at": timestamp()}, pk="task")
