"""`newswatch` command line: each command calls the same functions the daemon uses."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
# Scrapy loggers whose failures each poll already reports in one line with source and URL.
REPORTED_BY_POLLS = (
    "scrapy.downloadermiddlewares.retry",
    "scrapy.downloadermiddlewares.robotstxt",
)


def setup_logging(level: str) -> None:
    """One line per event on stderr; Scrapy's own chatter only from warnings up."""
    from scrapy.utils.log import configure_logging

    configure_logging({"LOG_INSTALL_ROOT_HANDLER": False})
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in (
        "scrapy",
        "twisted",
        "apscheduler",
        "trafilatura",
        "htmldate",
        "httpx",
        "mail.log",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    for repeated in REPORTED_BY_POLLS:
        logging.getLogger(repeated).setLevel(logging.CRITICAL)


def _load(path: str):
    from crawler.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(
        f"{args.config}: OK — {len(config.sources)} source(s), {len(config.watchlists)}"
        f" watchlist(s), {len(config.concepts)} concept(s), {len(config.channels)} channel(s)"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from crawler.daemon import AlreadyRunning, Daemon, run_on_reactor
    from crawler.pipeline import Extractor
    from crawler.store import StoreError

    config = _load(args.config)
    with Extractor() as extractor:
        daemon = Daemon(config, extractor)
        try:
            return run_on_reactor(lambda: daemon.run(once=args.once))
        except (AlreadyRunning, StoreError) as exc:
            logging.getLogger("newswatch.daemon").error("%s", exc)
            return EXIT_FAILURE


def cmd_match(args: argparse.Namespace) -> int:
    from alerts.watchlists import Watchlists
    from crawler.documents import DocumentError, load_document

    config = _load(args.config)
    watchlists = Watchlists(config.concepts, config.watchlists)
    code = EXIT_OK
    for target in args.documents:
        try:
            doc = load_document(target, user_agent=config.crawl.user_agent)
        except DocumentError as exc:
            print(f"{target}: {exc}", file=sys.stderr)
            code = EXIT_FAILURE
            continue
        matches = watchlists.match(doc)
        if args.json:
            print(json.dumps(_match_json(target, matches), ensure_ascii=False))
        else:
            print(_match_text(target, doc.title, matches))
    return code


def _match_json(target: str, matches: Sequence) -> dict:
    return {
        "document": target,
        "watchlists": [
            {"name": m.watchlist, "matches": [hit.to_dict() for hit in m.hits]} for m in matches
        ],
    }


def _match_text(target: str, title: str, matches: Sequence) -> str:
    lines = [f"{target}: {title!r}"]
    if not matches:
        lines.append("  no watchlist matched")
    for match in matches:
        lines.append(f"  ✔ {match.watchlist}")
        for hit in match.hits:
            fuzzy = ", fuzzy" if hit.fuzzy else ""
            lines.append(
                f"      {hit.concept}: «{hit.text}» (alias {hit.alias!r}{fuzzy}) at {hit.offset}"
            )
        lines.append(f"      … {match.snippet} …")
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo import run_demo

    return run_demo(keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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

    run = command("run", "the daemon: poll every source on its schedule and deliver alerts")
    run.add_argument("--once", action="store_true", help="poll every source once, deliver, exit")
    run.set_defaults(handler=cmd_run)
    command("check", "validate the config; exit 2 listing every error").set_defaults(
        handler=cmd_check
    )
    match = command("match", "which watchlists a document matches, and the words that did")
    match.add_argument(
        "documents",
        nargs="+",
        metavar="FILE_OR_URL",
        help=".txt (plain text: first line title, '-' line before a teaser), .html, or a URL",
    )
    match.add_argument("--json", action="store_true", help="one JSON object per document")
    match.set_defaults(handler=cmd_match)
    demo = commands.add_parser(
        "demo", help="the whole pipeline against the bundled offline news site"
    )
    demo.add_argument("--keep", type=Path, help="keep the demo database in this folder")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or ("warning" if args.command == "demo" else "info"))
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
