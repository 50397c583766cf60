"""`newswatch db …`: what the database holds and what it costs on disk, a hot backup beside the
running daemon, retention run now, and the one-time compaction of a file made before retention.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crawler.cli.arguments import Load
from crawler.cli.exits import OK, failure, usage_error


def add_commands(commands: Any, default_config: str, load: Load) -> None:
    group = commands.add_parser(
        "db", help="database size, backup, retention", description="database size, backup"
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", default=default_config, help=f"default: {default_config}")
        sub.set_defaults(handler=lambda args: handler(args, load))
        return sub

    stats = action("stats", "rows and bytes per table, free space, oldest article", cmd_stats)
    stats.add_argument("--json", action="store_true", help="one JSON object")
    backup = action(
        "backup", "copy the database safely while the daemon runs, then check the copy", cmd_backup
    )
    backup.add_argument("file", metavar="FILE", type=Path)
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    action("prune", "apply the storage: retention now (the daemon does it daily)", cmd_prune)
    action(
        "compact",
        "once, daemon stopped: rewrite a file made before retention so that it can shrink",
        cmd_compact,
    )


@dataclass(frozen=True)
class TableSize:
    name: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class DatabaseStats:
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


def database_stats(conn: sqlite3.Connection, path: Path) -> DatabaseStats:
    from crawler.retention import TASK

    tables, measured = _tables(conn)
    wal = Path(f"{path}-wal")
    last_run = conn.execute("SELECT last_run_at FROM maintenance WHERE task = ?", [TASK])
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
        retention_last_run=(last_run.fetchone() or (None,))[0],
    )


def human_size(size: int) -> str:
    """Binary units, as `crawl.max_page_size` is written."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} B"


def render_stats(stats: DatabaseStats) -> str:
    free = stats.free_pages * stats.page_size
    lines = [
        f"{stats.path}: {human_size(stats.file_bytes)} (+ {human_size(stats.wal_bytes)} WAL),"
        f" {stats.pages:,} pages of {stats.page_size} bytes, {stats.free_pages:,} free"
        f" ({human_size(free)}), auto-vacuum {stats.auto_vacuum}",
        f"{'table':<24} {'rows':>12} {'bytes':>12}"
        + ("" if stats.bytes_measured else "  (estimated: this SQLite has no dbstat)"),
    ]
    lines += [f"{t.name:<24} {t.rows:>12,} {human_size(t.bytes):>12}" for t in stats.tables]
    lines += [
        f"articles: {stats.articles:,} ({stats.pruned_articles:,} pruned to tombstones);"
        f" oldest {stats.oldest_article or '-'}, newest {stats.newest_article or '-'},"
        f" oldest text kept {stats.oldest_text or '-'}",
        f"retention last run: {stats.retention_last_run or 'never'}",
    ]
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace, load: Load) -> int:
    from crawler.cli.terminal import printable
    from crawler.store import connect_read_only

    config = load(args.config)
    with closing(connect_read_only(config.database)) as conn:
        stats = database_stats(conn, config.database)
    if args.json:
        print(json.dumps(asdict(stats), ensure_ascii=False))
    else:
        print(printable(render_stats(stats)))
    return OK


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
    from crawler.store import StoreError, connect_read_only, store_error

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


def cmd_backup(args: argparse.Namespace, load: Load) -> int:
    from crawler.store import StoreError

    config = load(args.config)
    target: Path = args.file
    if target.exists() and target.resolve() == config.database.resolve():
        return usage_error(f"{target} is the database itself; back it up to another file")
    if target.exists() and not args.force:
        return usage_error(f"{target} exists; add --force to replace it")
    try:
        counts = backup(config.database, target)
    except (StoreError, OSError) as exc:
        return failure(f"db backup: {exc}")
    print(
        f"{target}: backup of {config.database} ({human_size(target.stat().st_size)}),"
        f" integrity ok, {counts.get('articles', 0):,} article(s),"
        f" {counts.get('alerts', 0):,} outbox message(s)"
    )
    return OK


def cmd_prune(args: argparse.Namespace, load: Load) -> int:
    from crawler import retention
    from crawler.store import open_db

    config = load(args.config)
    with closing(open_db(config.database)) as db:
        done = retention.prune(db, config.storage)
    print(f"{config.database}: retention: {retention.describe(done)}")
    return OK


def cmd_compact(args: argparse.Namespace, load: Load) -> int:
    from crawler import retention
    from crawler.store import daemon_lock, open_db

    config = load(args.config)
    # a full VACUUM holds the write lock longer than the daemon's writes wait
    with daemon_lock(config.database), closing(open_db(config.database)) as db:
        before = config.database.stat().st_size
        retention.compact(db)
    after = config.database.stat().st_size
    print(
        f"{config.database}: compacted, {human_size(before)} → {human_size(after)};"
        " incremental vacuum from now on"
    )
    return OK
