"""`newswatch events`: the events in the database (stories that report one happening in their
own words), each with its stories, its outlets and when it was first and last reported."""

from __future__ import annotations

import argparse
import json
from contextlib import closing
from typing import TYPE_CHECKING, Any

from crawler.cli.arguments import AddCommand, Load, age_cutoff
from crawler.cli.exits import OK
from crawler.cli.stories import TITLE_CHARS

if TYPE_CHECKING:
    from crawler.store import EventRow, StoryRow


def add_commands(command: AddCommand, load: Load) -> None:
    events = command("events", "events with their stories, outlets, first/last seen")
    events.add_argument(
        "--since",
        type=age_cutoff,
        metavar="AGE",
        help="only events reported in the last AGE (1d, 12h, 30m)",
    )
    events.add_argument(
        "--json", action="store_true", help="one JSON object per event, with its stories"
    )
    events.set_defaults(handler=lambda args: cmd_events(args, load))


def cmd_events(args: argparse.Namespace, load: Load) -> int:
    from alerts.render import shorten
    from crawler.cli.terminal import printable
    from crawler.store import list_events, open_for_reading, stories_by_id

    config = load(args.config)
    with closing(open_for_reading(config.database)) as db:
        events = list_events(db, args.since)
        if args.json:
            stories = stories_by_id(db, [story for event in events for story in event.stories])
            for event in events:
                print(json.dumps(event_json(event, stories), ensure_ascii=False))
            return OK
    print(f"{'event':<23} {'stories':>7} {'first seen':<20} {'last seen':<20} outlets · title")
    for event in events:
        print(
            printable(
                f"{event.id:<23} {len(event.stories):>7} {event.first_seen:<20}"
                f" {event.last_seen:<20} {', '.join(event.outlets)}"
                f" · {shorten(event.title, TITLE_CHARS)}"
            )
        )
    print(f"{len(events)} event{'' if len(events) == 1 else 's'}")
    return OK


def event_json(event: EventRow, stories: dict[str, StoryRow]) -> dict[str, Any]:
    """An event as `--json` prints it: its stories first reported first (the story that started
    it, and alerted, leads even when others were stored in the same second), each with the
    addresses of its articles, so a script can open every report of the event."""
    shown = sorted(
        (stories[story] for story in event.stories),
        key=lambda row: (row.id != event.id, row.first_seen, row.id),
    )
    return {
        "id": event.id,
        "title": event.title,
        "first_seen": event.first_seen,
        "last_seen": event.last_seen,
        "stories": [
            {"id": row.id, "outlets": row.outlets, "title": row.title, "urls": row.urls}
            for row in shown
        ],
        "outlets": event.outlets,
    }
