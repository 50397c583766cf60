"""Retention: a database that runs for a year unattended stays the size of its windows.

Once a day (and at start when a day has passed since the last run, recorded in `maintenance`)
old article texts, stored HTML, superseded versions and remembered failed fetches are dropped,
in small batches so the write lock is held for milliseconds and polls go on in between. A pruned
article is a tombstone: its row keeps the URLs that lead to it (`seen_urls`), its story id, its
content hash and its alerts, so listed again it is neither fetched nor alerted, and a copy of its
text elsewhere still joins its story. Its near-duplicate signature goes with the text (the story
index is rebuilt from the signatures at start and ignores ids that have none).

Freed pages go back to the file system by incremental vacuum. A file made before this feature
has no incremental auto-vacuum and needs one full VACUUM (outside any transaction, holding the
write lock while it copies the whole file): done here for small files, else left to
`newswatch db compact` with the daemon stopped.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from alerts.times import parse_time, timestamp
from crawler import store
from crawler.backtest import cutoff
from crawler.config import StorageConfig

log = logging.getLogger("newswatch.retention")

TASK = "retention"
INTERVAL = 86400.0
# Articles per transaction: deleting their FTS rows is most of the cost (~0.2 ms each).
BATCH = 200
# Pages of the full-text index merged per step (a few ms of write lock each).
FTS_MERGE_PAGES = 256
# Pages given back per incremental-vacuum step (4 MB at the default page size).
VACUUM_PAGES = 1024
# The largest file converted to incremental auto-vacuum by the daemon itself: its full VACUUM
# blocks the daemon for about a second per 50 MB.
AUTO_COMPACT_BYTES = 64 * 1024**2
INCREMENTAL = 2


def _prune_articles(db: sqlite_utils.Database, before: str) -> int:
    """One batch of articles older than `before` (first fetched and last updated) made
    tombstones."""
    ids = [
        row[0]
        for row in db.execute(
            "SELECT id FROM articles INDEXED BY idx_articles_unpruned"
            " WHERE pruned_at IS NULL AND fetched_at < ? AND coalesce(updated_at, fetched_at) < ?"
            " ORDER BY fetched_at LIMIT ?",
            [before, before, BATCH],
        )
    ]
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    with db.atomic():
        for table, key in (
            ("articles_fts", "rowid"),
            ("article_signatures", "article_id"),
            ("article_versions", "article_id"),
            ("matches", "article_id"),
        ):
            db.execute(f"DELETE FROM {table} WHERE {key} IN ({marks})", ids)
        _rewrite_as_tombstones(db, ids, marks)
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


def _batch(sql: str) -> Callable[[sqlite_utils.Database, str], int]:
    """One short transaction changing at most BATCH rows older than the cutoff `sql` is given."""

    def run(db: sqlite_utils.Database, before: str) -> int:
        with db.atomic():
            return db.execute(sql, [before, BATCH]).rowcount

    return run


_drop_html = _batch(
    "UPDATE articles SET html = NULL WHERE id IN (SELECT id FROM articles"
    " INDEXED BY idx_articles_html WHERE html IS NOT NULL AND fetched_at < ? LIMIT ?)"
)
_drop_versions = _batch(
    "DELETE FROM article_versions WHERE rowid IN (SELECT rowid FROM article_versions"
    " WHERE replaced_at < ? LIMIT ?)"
)
# Failed fetches are remembered as long as articles are: a page that failed before the window
# is as old as the texts retention drops, and a listing still naming it is rare.
_drop_fetch_failures = _batch(
    "DELETE FROM fetch_failures WHERE rowid IN (SELECT rowid FROM fetch_failures"
    " WHERE failed_at < ? LIMIT ?)"
)


def _merge_fts_step(db: sqlite_utils.Database) -> int:
    """FTS5 forgets deleted rows only when it merges the segments that hold them: merged in
    steps of FTS_MERGE_PAGES after pruning, the index keeps to its live size instead of
    growing by what each day's pruning deleted. Returns the rows changed (< 2: nothing left)."""
    before = db.conn.total_changes
    with db.atomic():
        db.execute(
            "INSERT INTO articles_fts(articles_fts, rank) VALUES('merge', ?)", [-FTS_MERGE_PAGES]
        )
    return db.conn.total_changes - before


def _vacuum_step(db: sqlite_utils.Database) -> int:
    """Give up to VACUUM_PAGES free pages back; returns how many. (`executescript` steps the
    pragma to the end: `execute` would free a single page.)"""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
        return 0
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    if not free:
        return 0
    db.conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
    return free - db.execute("PRAGMA freelist_count").fetchone()[0]


def database_file(db: sqlite_utils.Database) -> Path:
    return Path(db.execute("PRAGMA database_list").fetchone()[2])


def compact(db: sqlite_utils.Database) -> None:
    """Switch a file to incremental auto-vacuum and rewrite it without its free pages: one full
    VACUUM, which needs about twice the file's size free (the copy, then the WAL)."""
    path = database_file(db)
    size = path.stat().st_size
    free = shutil.disk_usage(path.parent).free
    if free < 2 * size + 16 * 1024**2:
        raise store.StoreError(
            f"{path}: compacting needs about {2 * size // 1024**2 + 16} MB free beside the file"
            f" ({free // 1024**2} MB free)"
        )
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _convert_if_small(db: sqlite_utils.Database) -> None:
    """A file made before retention gets incremental auto-vacuum when that is quick."""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
        return
    path = database_file(db)
    size = path.stat().st_size
    if size > AUTO_COMPACT_BYTES:
        log.warning(
            "database %s (%d MB) was made before retention: pruned space is reused but the file"
            " does not shrink; stop the daemon and run `newswatch db compact` once",
            path,
            size // 1024**2,
        )
        return
    try:
        compact(db)
    except store.StoreError as exc:
        log.warning("retention: cannot compact yet: %s", exc)
        return
    log.info("database %s compacted once and switched to incremental vacuum", path)


def steps(
    db: sqlite_utils.Database, policy: StorageConfig, now: datetime | None = None
) -> Iterator[tuple[str, int]]:
    """The whole retention run as short steps, each yielding what it removed; the run is
    recorded once every step is done (an interrupted run starts again at the next start)."""
    now = now or datetime.now(UTC)
    pruned = False
    for what, keep, batch in (
        ("article text(s)", policy.keep_articles, _prune_articles),
        ("stored page(s)", policy.keep_html, _drop_html),
        ("old version(s)", policy.keep_versions, _drop_versions),
        ("failed fetch(es)", policy.keep_articles, _drop_fetch_failures),
    ):
        before = cutoff(keep, now)
        while before is not None and (count := batch(db, before)):
            pruned = pruned or batch is _prune_articles
            yield what, count
    while pruned and _merge_fts_step(db) >= 2:
        yield "full-text index merge step(s)", 1
    _convert_if_small(db)
    while count := _vacuum_step(db):
        yield "free page(s) given back", count
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db["maintenance"].upsert({"task": TASK, "last_run_at": timestamp()}, pk="task")


def prune(
    db: sqlite_utils.Database, policy: StorageConfig, now: datetime | None = None
) -> Counter[str]:
    """Run retention to the end (the `newswatch db prune` command, tests, benchmarks)."""
    done: Counter[str] = Counter()
    for what, count in steps(db, policy, now):
        done[what] += count
    return done


def describe(done: Counter[str]) -> str:
    return ", ".join(f"{count} {what}" for what, count in done.items()) or "nothing to remove"


async def run_daily(
    db: sqlite_utils.Database, policy: StorageConfig, stopping: asyncio.Event
) -> None:
    """The daemon's job: the steps on the event loop with the daemon's own connection (no
    lock contention with its writes), yielding to polls between batches; a stop request ends
    it between two batches."""
    done: Counter[str] = Counter()
    try:
        for what, count in steps(db, policy):
            done[what] += count
            if stopping.is_set():
                log.info("retention interrupted by the stop: %s so far", describe(done))
                return
            await asyncio.sleep(0)
    except sqlite3.Error as exc:
        log.error("retention stopped: %s", store.store_error(database_file(db), exc))
        return
    log.info("retention: %s", describe(done))


def next_run(db: sqlite_utils.Database) -> datetime:
    """Now when a day has passed since the last run (or there was none), else a day after it."""
    current = datetime.now(UTC)
    row = db.execute("SELECT last_run_at FROM maintenance WHERE task = ?", [TASK]).fetchone()
    if row is None:
        return current
    last = parse_time(row[0]) or current
    return max(current, last + timedelta(seconds=INTERVAL))
