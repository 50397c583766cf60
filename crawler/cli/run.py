"""`newswatch run` (the daemon), `check` (validate the config) and `demo` (the daemon against
the bundled offline site): the commands that start the pipeline or decide whether it may start."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crawler.cli.arguments import AddCommand, Load
from crawler.cli.exits import FAILURE, OK, USAGE, failure


def add_commands(command: AddCommand, load: Load) -> None:
    run = command("run", "the daemon: poll every source on its schedule and deliver alerts")
    run.add_argument("--once", action="store_true", help="poll every source once, deliver, exit")
    run.set_defaults(handler=lambda args: cmd_run(args, load))
    check = command("check", "validate the config; exit 2 listing every error")
    check.set_defaults(handler=lambda args: cmd_check(args, load))


def add_demo_command(commands: argparse._SubParsersAction) -> None:
    """The demo writes its own config: no `--config`."""
    demo = commands.add_parser(
        "demo", help="the whole pipeline against the bundled offline news site"
    )
    demo.add_argument("--keep", type=Path, help="keep the demo database in this folder")
    demo.set_defaults(handler=cmd_demo)


def cmd_check(args: argparse.Namespace, load: Load) -> int:
    config = load(args.config)
    print(
        f"{args.config}: OK — {len(config.sources)} source(s), {len(config.watchlists)}"
        f" watchlist(s), {len(config.concepts)} concept(s), {len(config.channels)} channel(s)"
    )
    return OK


def cmd_run(args: argparse.Namespace, load: Load) -> int:
    from crawler.cluster import ConfigMismatch
    from crawler.daemon import Daemon, run_on_reactor
    from crawler.store import StoreError
    from crawler.workers import Extractor

    config = load(args.config)
    with Extractor(deadline=config.crawl.extraction_timeout) as extractor:
        daemon = Daemon(config, extractor)
        try:
            return run_on_reactor(lambda: daemon.run(once=args.once))
        except ConfigMismatch as exc:  # a config error, though only the database can tell
            logging.getLogger("newswatch.daemon").error("%s", exc)
            return USAGE
        except StoreError as exc:  # AlreadyRunning among them
            logging.getLogger("newswatch.daemon").error("%s", exc)
            return FAILURE
        except OSError as exc:  # the lock file beside the database: a read-only folder
            logging.getLogger("newswatch.daemon").error(
                "%s: cannot write here (%s)", exc.filename or config.database, exc.strerror
            )
            return FAILURE


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo.run import run_demo

    if run_demo(keep=args.keep):
        return OK
    return failure("demo: a source failed or no alert was delivered (see the lines above)")
