"""`newswatch stories`: the stories in the database, with the event each is in, how far each
spread and when."""

from __future__ import annotations

import argparse
import json
from contextlib import closing

from crawler.cli.arguments import AddCommand, Load, age_cutoff
from crawler.cli.exits import OK

TITLE_CHARS = 60
# "st-" and 8 hex digits: enough to see which rows share an event; --json has the whole id
EVENT_CHARS = 11


def add_commands(command: AddCommand, load: Load) -> None:
    stories = command(
        "stories", "stories with their event, article counts, outlets, first/last seen"
    )
    stories.add_argument(
        "--since",
        type=age_cutoff,
        metavar="AGE",
        help="only stories seen in the last AGE (1d, 12h, 30m)",
    )
    stories.add_argument("--json", action="store_true", help="one JSON object per story")
    stories.set_defaults(handler=lambda args: cmd_stories(args, load))


def cmd_stories(args: argparse.Namespace, load: Load) -> int:
    from alerts.render import shorten
    from crawler.cli.terminal import printable
    from crawler.store import list_stories, open_for_reading

    config = load(args.config)
    with closing(open_for_reading(config.database)) as db:
        rows = list_stories(db, args.since, urls=args.json)
    if args.json:
        for row in rows:
            print(json.dumps(row.__dict__, ensure_ascii=False))
        return OK
    print(
        f"{'story':<23} {'event':<{EVENT_CHARS}} {'articles':>8} {'first seen':<20}"
        f" {'last seen':<20} outlets · title"
    )
    for row in rows:
        print(
            printable(
                f"{row.id:<23} {row.event[:EVENT_CHARS]:<{EVENT_CHARS}} {row.articles:>8}"
                f" {row.first_seen:<20} {row.last_seen:<20} {', '.join(row.outlets)}"
                f" · {shorten(row.title, TITLE_CHARS)}"
            )
        )
    print(f"{len(rows)} stor{'y' if len(rows) == 1 else 'ies'}")
    return OK
