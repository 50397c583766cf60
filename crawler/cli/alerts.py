"""`newswatch alerts` and `newswatch test-channel`: look at the outbox, send failed messages
again, and check a channel by sending it a test message, with the same code the daemon uses."""

from __future__ import annotations

import argparse
import asyncio
from contextlib import closing
from typing import Any

from crawler.cli.arguments import AddCommand, Load, positive_count
from crawler.cli.exits import OK, failure, usage_error


def add_commands(command: AddCommand, load: Load) -> None:
    alerts = command("alerts", "list the outbox (newest first); `alerts retry` sends failed ones")
    alerts.add_argument("--status", choices=_statuses(), help="only messages in this state")
    alerts.add_argument("--limit", type=positive_count, default=50, help="default: 50")
    actions = alerts.add_subparsers(dest="action", metavar="retry")
    retry = actions.add_parser("retry", help="queue failed messages again, with fresh attempts")
    retry.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all-failed", action="store_true", help="every failed message")
    alerts.set_defaults(handler=lambda args: cmd_alerts(args, load))
    test = command("test-channel", "send a test message through a channel and show the answer")
    test.add_argument("channel", metavar="NAME")
    test.set_defaults(handler=lambda args: cmd_test_channel(args, load))


def _statuses() -> tuple[str, ...]:
    from alerts.outbox import STATUSES

    return STATUSES


def cmd_alerts(args: argparse.Namespace, load: Load) -> int:
    from alerts import outbox
    from crawler.cli.terminal import printable
    from crawler.store import open_db, open_for_reading

    config = load(args.config)
    if args.action == "retry" and not args.ids and not args.all_failed:
        return usage_error("alerts retry: give message IDs or --all-failed")
    if args.action == "retry":
        with closing(open_db(config.database)) as db:
            return _retry(db, args)
    with closing(open_for_reading(config.database)) as db:
        rows = outbox.listing(db, args.status, args.limit)
        for row in rows:
            print(printable(_line(row)))
            if row["last_error"] and row["status"] != outbox.SENT:
                print(printable(f"    last error: {row['last_error']}"))
        counts = outbox.status_counts(db)
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "outbox empty")
    return OK


def _retry(db: Any, args: argparse.Namespace) -> int:
    from alerts import outbox

    count = outbox.requeue(db, args.ids, all_failed=args.all_failed)
    if not count and args.ids:
        return failure(f"alerts retry: no failed message with id {', '.join(args.ids)}")
    print(
        f"{count} message(s) queued again; a running daemon sends them within 30 s"
        " (or run `newswatch run --once`)"
    )
    return OK


def _line(row: dict[str, Any]) -> str:
    from alerts import outbox

    when = row["sent_at"] if row["status"] == outbox.SENT else row["next_attempt_at"]
    label = "sent" if row["status"] == outbox.SENT else "next"
    subject = outbox.message_of(row).subject
    return (
        f"{row['id']}  {row['status']:<8} {row['kind']:<8} {row['channel']:<12}"
        f" attempts={row['attempts']} queued={row['created_at']} {label}={when}  {subject}"
    )


def cmd_test_channel(args: argparse.Namespace, load: Load) -> int:
    from alerts import outbox
    from alerts.channels import DeliveryError
    from alerts.message import Notice
    from alerts.senders import send
    from alerts.times import timestamp
    from crawler.cli.terminal import printable

    config = load(args.config)
    channel = config.channels.get(args.channel)
    if channel is None:
        return usage_error(f"unknown channel {args.channel!r}; defined: {sorted(config.channels)}")
    now = timestamp()
    notice = Notice(
        kind="test",
        id=outbox.message_key("test", args.channel, now),
        event="test",
        title="newswatch test message",
        text=f"If you can read this, channel {args.channel} ({channel.type}) works.",
        at=now,
    )
    try:
        answer = asyncio.run(send(channel, notice))
    except DeliveryError as error:
        kind = "permanent" if error.permanent else "temporary"
        return failure(f"{args.channel}: not delivered ({kind}): {error}")
    print(printable(f"{args.channel}: delivered, message {notice.id}: {answer}"))
    return OK
