"""`newswatch` command line: the parser, the dispatch to one module per command group, and what
every command shares (loading the config, logging, the exit codes of `crawler.cli.exits`).
Each command calls the same functions the daemon uses. Heavy modules are imported inside the
commands that need them, so `newswatch --help` and the quick commands start fast."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from crawler.cli import alerts, db, events, match, run, serve, sources, stories
from crawler.cli.exits import USAGE, failure, usage_error
from crawler.cli.logs import hide_secrets, setup_logging

if TYPE_CHECKING:
    from crawler.config import Config

# Commands that fork extraction workers: their language model loads while the rest is imported.
EXTRACTING_COMMANDS = frozenset({"run", "demo"})


def load(path: str) -> Config:
    """The config, validated; an invalid one is a usage error listing every problem with its
    YAML path. Its secrets are hidden from the log lines from here on."""
    from crawler.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        raise SystemExit(USAGE) from None
    hide_secrets(config.secrets)
    return config


class Parser(argparse.ArgumentParser):
    """argparse's usage errors (an unknown option, a bad `--since`) go through the same
    `usage_error` as the commands' own, so every usage error reads and exits alike."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise SystemExit(usage_error(message))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="newswatch",
        description="Watch news sites, match watchlists in Arabic, French and English, alert once.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("NEWSWATCH_LOG_LEVEL"),
        choices=["debug", "info", "warning", "error"],
        help="default: info (warning for demo, which prints its own report)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    default_config = os.environ.get("NEWSWATCH_CONFIG", "config.yaml")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", default=default_config, help=f"default: {default_config}")
        return sub

    run.add_commands(command, load)
    match.add_commands(command, load)
    run.add_demo_command(commands)
    alerts.add_commands(command, load)
    stories.add_commands(command, load)
    events.add_commands(command, load)
    sources.add_commands(command, load)
    serve.add_commands(command, load)
    db.add_commands(commands, default_config, load)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in EXTRACTING_COMMANDS:
        from crawler.language import load_model_soon

        load_model_soon()
    setup_logging(args.log_level or ("warning" if args.command == "demo" else "info"))
    code = _handle(args)
    # The interpreter's teardown collects garbage over the whole heap again and again as it
    # clears modules: 0.4 s for every `run --once` from cron. Frozen objects are skipped.
    gc.freeze()
    return code


def _handle(args: argparse.Namespace) -> int:
    """Run the command; a database that cannot be used is one line on stderr, not a traceback
    (the message says whether the file is healthy: read-only, disk full, locked, or that
    PostgreSQL cannot be reached)."""
    import sqlite3

    from alerts.database import database_errors
    from crawler.store import StoreError, store_error

    try:
        return args.handler(args)
    except StoreError as exc:
        return failure(f"{args.command}: {exc}")
    except database_errors() as exc:
        reason = store_error("the database", exc) if isinstance(exc, sqlite3.Error) else exc
        return failure(f"{args.command}: {reason}")
