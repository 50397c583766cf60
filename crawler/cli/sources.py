"""`newswatch sources` (each source's status) and `newswatch add URL` (what a site offers)."""

from __future__ import annotations

import argparse
import json
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.cli.arguments import AddCommand, Load
from crawler.cli.exits import OK, failure

if TYPE_CHECKING:
    from crawler.sources import SourceStatus


def add_commands(command: AddCommand, load: Load) -> None:
    listing = command(
        "sources", "each source's health: last success, last error, failures, articles/day"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per source")
    listing.set_defaults(handler=lambda args: cmd_sources(args, load))
    add = command("add", "find a site's feeds and sitemaps and print the source entry to paste")
    add.add_argument("url", metavar="URL", help="the site's home or section page, or a feed")
    add.set_defaults(handler=lambda args: cmd_add(args, load))


def cmd_sources(args: argparse.Namespace, load: Load) -> int:
    from crawler.cli.terminal import printable
    from crawler.sources import statuses
    from crawler.store import open_for_reading

    config = load(args.config)
    with closing(open_for_reading(config.database)) as db:
        rows = statuses(db, config)
    if args.json:
        for row in rows:
            fields = row.__dict__ | {"retry_at": row.retry_at.isoformat() if row.retry_at else None}
            print(json.dumps(fields, ensure_ascii=False))
    else:
        print(printable(render(rows)))
    return OK


def cmd_add(args: argparse.Namespace, load: Load) -> int:
    """Works without a config file too: a first-time user runs `add` before writing one."""
    from crawler.cli.terminal import printable
    from crawler.config import Config
    from crawler.discovery import Fetcher, discover, report
    from crawler.fetching import command_line_client

    config = load(args.config) if Path(args.config).exists() else Config()
    timeout = min(config.crawl.download_timeout, 15.0)
    fetcher = Fetcher(command_line_client(config, args.url, timeout))
    try:
        found = discover(args.url, fetcher)
    finally:
        fetcher.close()
    if not found.candidates:
        return failure(report(found))
    print(printable(report(found)))
    return OK


def render(rows: list[SourceStatus]) -> str:
    """A plain-text table, one source a line, errors last so long messages do not break it."""
    from alerts.times import timestamp

    header = ("source", "kind", "every", "last success", "failures", "articles/day", "last error")
    lines = [
        (
            row.name,
            row.kind,
            row.schedule,
            row.last_success_at or "never",
            str(row.failures) + (f" (next {timestamp(row.retry_at)})" if row.retry_at else ""),
            f"{row.articles_per_day:.1f}",
            row.last_error or "",
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip()
        + ("  " + cells[-1] if cells[-1] else "")
        for cells in [header, *lines]
    )
