"""`newswatch db …`: what the database holds and what it costs on disk, a hot backup beside the
running daemon, retention run now, and the one-time compaction of a file made before retention.
On PostgreSQL (the cluster mode) only `prune` applies: the others work on the SQLite file and
name PostgreSQL's own tool instead.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.cli.arguments import Load
from crawler.cli.exits import OK, failure, usage_error

if TYPE_CHECKING:
    from crawler.config import Config
    from crawler.store import DatabaseStats


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


def file_only(config: Config, command: str, instead: str) -> int | None:
    """A command that works on the SQLite file refuses a PostgreSQL database with one line
    naming the tool that does its job there (a usage error: running it again will not help)."""
    if not config.cluster:
        return None
    return usage_error(
        f"{command} works on a SQLite file and {config.database_name} is PostgreSQL: {instead}"
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
    from crawler.retention import TASK
    from crawler.store import connect_read_only, database_stats

    config = load(args.config)
    refused = file_only(
        config, "db stats", "use psql (\\dt+, \\l+) or the pg_stat_user_tables view"
    )
    if refused is not None:
        return refused
    with closing(connect_read_only(config.database)) as conn:
        stats = database_stats(conn, config.database, TASK)
    if args.json:
        print(json.dumps(asdict(stats), ensure_ascii=False))
    else:
        print(printable(render_stats(stats)))
    return OK


def cmd_backup(args: argparse.Namespace, load: Load) -> int:
    from crawler.store import StoreError, backup

    config = load(args.config)
    refused = file_only(config, "db backup", "use pg_dump (or pg_basebackup)")
    if refused is not None:
        return refused
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
        done = retention.prune(db, config.storage, events_window=config.events.window)
    print(f"{config.database_name}: retention: {retention.describe(done)}")
    return OK


def cmd_compact(args: argparse.Namespace, load: Load) -> int:
    from crawler import retention
    from crawler.store import daemon_lock, open_db

    config = load(args.config)
    refused = file_only(
        config, "db compact", "PostgreSQL's autovacuum reclaims space (VACUUM FULL in psql)"
    )
    if refused is not None:
        return refused
    # compaction rewrites the file, holding the write lock longer than the daemon's writes wait
    with daemon_lock(config.database), closing(open_db(config.database)) as db:
        before = config.database.stat().st_size
        retention.compact(db)
    after = config.database.stat().st_size
    print(
        f"{config.database}: compacted, {human_size(before)} → {human_size(after)};"
        " incremental vacuum from now on"
    )
    return OK
