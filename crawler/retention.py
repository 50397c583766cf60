"""Retention: a database that runs for a year unattended stays the size of its windows.

Once a day (and at start when a day has passed since the last run, recorded in `maintenance`)
old article texts, stored HTML, superseded versions, remembered failed fetches and the event
profiles of stories past the events window are dropped,
in small batches so the write lock is held for milliseconds and polls go on in between. A pruned
article is a tombstone: its row keeps the URLs that lead to it (`seen_urls`), its story id, its
content hash and its alerts, so listed again it is neither fetched nor alerted, and a copy of its
text elsewhere still joins its story. Its near-duplicate signature goes with the text (the story
index is rebuilt from the signatures at start and ignores ids that have none).

Freed pages go back to the file system by incremental vacuum. A file made before this feature
has no incremental auto-vacuum and needs one full VACUUM (outside any transaction, holding the
write lock while it copies the whole file): done here for small files, else left to
`newswatch db compact` with the daemon stopped. On PostgreSQL (the cluster mode) only the rows
are pruned: its autovacuum gives their space back.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlite_utils

from alerts.database import SQLITE, Database, database_errors, dialect
from alerts.times import parse_time
from crawler import store
from crawler.backtest import cutoff
from crawler.config import EventsConfig, StorageConfig

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


def compact(db: sqlite_utils.Database) -> None:
    """Switch a file to incremental auto-vacuum and rewrite it without its free pages: one full
    VACUUM, which needs about twice the file's size free (the copy, then the WAL)."""
    path = store.database_file(db)
    size = path.stat().st_size
    free = shutil.disk_usage(path.parent).free
    if free < 2 * size + 16 * 1024**2:
        raise store.StoreError(
            f"{path}: compacting needs about {2 * size // 1024**2 + 16} MB free beside the file"
            f" ({free // 1024**2} MB free)"
        )
    store.full_vacuum(db)


def _convert_if_small(db: sqlite_utils.Database) -> None:
    """A file made before retention gets incremental auto-vacuum when that is quick."""
    if store.incremental_vacuum(db):
        return
    path = store.database_file(db)
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
    db: Database,
    policy: StorageConfig,
    now: datetime | None = None,
    events_window: float = EventsConfig().window,
) -> Iterator[tuple[str, int]]:
    """The whole retention run as short steps, each yielding what it removed; the run is
    recorded once every step is done (an interrupted run starts again at the next start)."""
    now = now or datetime.now(UTC)
    pruned = False
    # Failed fetches are remembered as long as articles are: a page that failed before the
    # window is as old as the texts retention drops, and a listing still naming it is rare.
    # A story's event profile is kept a day past the events window (a story's time is its
    # publication's, which may be a little older than its storing).
    for what, keep, batch in (
        ("article text(s)", policy.keep_articles, store.prune_articles),
        ("stored page(s)", policy.keep_html, store.drop_html),
        ("old version(s)", policy.keep_versions, store.drop_versions),
        ("failed fetch(es)", policy.keep_articles, store.drop_fetch_failures),
        ("event profile(s)", events_window + INTERVAL, store.forget_event_profiles),
    ):
        before = cutoff(keep, now)
        while before is not None and (count := batch(db, before, BATCH)):
            pruned = pruned or batch is store.prune_articles
            yield what, count
    if dialect(db) == SQLITE:
        yield from _file_steps(db, pruned)
    store.record_run(db, TASK)


def _file_steps(db: sqlite_utils.Database, pruned: bool) -> Iterator[tuple[str, int]]:
    """What the SQLite file needs after its rows were pruned: the full-text index merged, free
    pages given back, the WAL written back."""
    while pruned and store.merge_fts_step(db, FTS_MERGE_PAGES) >= 2:
        yield "full-text index merge step(s)", 1
    _convert_if_small(db)
    while count := store.vacuum_step(db, VACUUM_PAGES):
        yield "free page(s) given back", count
    store.checkpoint(db)


def prune(
    db: Database,
    policy: StorageConfig,
    now: datetime | None = None,
    events_window: float = EventsConfig().window,
) -> Counter[str]:
    """Run retention to the end (the `newswatch db prune` command, tests, benchmarks)."""
    done: Counter[str] = Counter()
    for what, count in steps(db, policy, now, events_window):
        done[what] += count
    return done


def describe(done: Counter[str]) -> str:
    return ", ".join(f"{count} {what}" for what, count in done.items()) or "nothing to remove"


async def run_daily(
    db: Database,
    policy: StorageConfig,
    events_window: float,
    stopping: asyncio.Event,
) -> None:
    """The daemon's job: the steps on the event loop with the daemon's own connection (no
    lock contention with its writes), yielding to polls between batches; a stop request ends
    it between two batches."""
    done: Counter[str] = Counter()
    try:
        for what, count in steps(db, policy, events_window=events_window):
            done[what] += count
            if stopping.is_set():
                log.info("retention interrupted by the stop: %s so far", describe(done))
                return
            await asyncio.sleep(0)
    except database_errors() as exc:
        reason = (
            store.store_error(store.database_file(db), exc)
            if isinstance(exc, sqlite3.Error)
            else exc
        )
        log.error("retention stopped: %s", reason)
        return
    log.info("retention: %s", describe(done))


def next_run(db: Database) -> datetime:
    """Now when a day has passed since the last run (or there was none), else a day after it."""
    current = datetime.now(UTC)
    stamp = store.last_run(db, TASK)
    if stamp is None:
        return current
    last = parse_time(stamp) or current
    return max(current, last + timedelta(seconds=INTERVAL))
