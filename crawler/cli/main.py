"""`newswatch` command line: each command calls the same functions the daemon uses."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from crawler.cli.alerts import add_commands as add_alert_commands
from crawler.cli.arguments import age_cutoff
from crawler.cli.db import add_commands as add_db_commands
from crawler.cli.exits import FAILURE, OK, USAGE, failure, usage_error
from crawler.cli.sources import add_commands as add_source_commands
from crawler.cli.stories import add_commands as add_story_commands
from crawler.cli.terminal import printable
from crawler.urls import REDACTED, secret_pattern

if TYPE_CHECKING:
    from alerts.watchlists import Watchlists

# Scrapy loggers whose failures each poll already reports in one line with source and URL.
REPORTED_BY_POLLS = (
    "scrapy.downloadermiddlewares.retry",
    "scrapy.downloadermiddlewares.robotstxt",
    "trafilatura.core",
    "scrapy.downloadermiddlewares.httpcompression",
    "scrapy.core.downloader.handlers.http11",
)


# Commands that fork extraction workers: their language model loads while the rest is imported.
EXTRACTING_COMMANDS = frozenset({"run", "demo"})


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


class _Redacting(logging.Filter):
    """Log lines written by libraries (Scrapy's "Spider error processing <GET …>") quote source
    URLs as fetched: the secrets they carry are hidden there too, as in our own lines."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.pattern.sub(REDACTED, message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _load(path: str):
    from crawler.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        raise SystemExit(USAGE) from None
    pattern = secret_pattern(config.secrets)
    if pattern is not None:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_Redacting(pattern))
    return config


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(
        f"{args.config}: OK — {len(config.sources)} source(s), {len(config.watchlists)}"
        f" watchlist(s), {len(config.concepts)} concept(s), {len(config.channels)} channel(s)"
    )
    return OK


def cmd_run(args: argparse.Namespace) -> int:
    from crawler.daemon import Daemon, run_on_reactor
    from crawler.pipeline import Extractor
    from crawler.store import StoreError

    config = _load(args.config)
    with Extractor(deadline=config.crawl.extraction_timeout) as extractor:
        daemon = Daemon(config, extractor)
        try:
            return run_on_reactor(lambda: daemon.run(once=args.once))
        except StoreError as exc:  # AlreadyRunning among them
            logging.getLogger("newswatch.daemon").error("%s", exc)
            return FAILURE
        except OSError as exc:  # the lock file beside the database: a read-only folder
            logging.getLogger("newswatch.daemon").error(
                "%s: cannot write here (%s)", exc.filename or config.database, exc.strerror
            )
            return FAILURE


def cmd_match(args: argparse.Namespace) -> int:
    from alerts.watchlists import Watchlists
    from crawler.cli.documents import DocumentError, load_document

    config = _load(args.config)
    if bool(args.documents) == args.archive:
        return usage_error("give FILE_OR_URL… or --archive (one of them)")
    if args.since is not None and not args.archive:
        return usage_error("--since reads the archive: add --archive")
    selected = [w for w in config.watchlists if not args.watchlist or w.name in args.watchlist]
    unknown = sorted(set(args.watchlist or ()) - {w.name for w in selected})
    if unknown:
        defined = ", ".join(w.name for w in config.watchlists) or "none"
        return usage_error(f"unknown watchlist {', '.join(unknown)} (defined: {defined})")
    watchlists = Watchlists(config.concepts, selected)
    if args.archive:
        return _match_archive(config.database, watchlists, args.since, as_json=args.json)
    code = OK
    for target in args.documents:
        try:
            doc = load_document(target, config)
        except DocumentError as exc:
            code = failure(f"{target}: {exc}")
            continue
        matches = watchlists.match(doc)
        if args.json:
            print(json.dumps(_match_json(target, matches), ensure_ascii=False))
        else:
            print(printable(_match_text(target, doc.title, matches)))
    return code


def _match_archive(
    database: Path, watchlists: Watchlists, start: str | None, *, as_json: bool
) -> int:
    """List the stored articles the watchlists match; nothing is sent and nothing written."""
    from contextlib import closing

    from crawler.backtest import ArchiveError, backtest, open_read_only

    try:
        conn = open_read_only(database)
    except ArchiveError as exc:
        return failure(str(exc))
    scanned = 0
    found: dict[str, dict[int, str]] = {name: {} for name in watchlists.configs}
    with closing(conn):
        for article, matches in backtest(conn, watchlists, start):
            scanned += 1
            for match in matches:
                found[match.watchlist][article.id] = article.story_id
            if not matches:
                continue
            if as_json:
                report = _match_json(article.url, matches) | {"article": article.summary()}
                print(json.dumps(report, ensure_ascii=False))
            else:
                target = f"{article.fetched_at} {article.source} {article.url}"
                print(printable(_match_text(target, article.title, matches)))
    print(_backtest_summary(scanned, start, found), file=sys.stderr if as_json else sys.stdout)
    return OK


def _backtest_summary(scanned: int, start: str | None, found: dict[str, dict[int, str]]) -> str:
    """Per watchlist, articles and stories matched: the daemon alerts once per story."""
    since = f" fetched since {start}" if start else ""
    lines = [f"backtest: {scanned} stored article(s){since}; nothing was sent"]
    for name, articles in found.items():
        stories = len(set(articles.values()))
        counts = f"{len(articles)} article(s) in {stories} story(ies)" if articles else "no match"
        lines.append(f"  {name}: {counts}")
    return "\n".join(lines)


def _match_json(target: str, matches: Sequence) -> dict:
    return {
        "document": target,
        "watchlists": [
            {
                "name": m.watchlist,
                "matches": [hit.to_dict() for hit in m.hits],
                "matches_total": m.hits_total,
            }
            for m in matches
        ],
    }


def _match_text(target: str, title: str, matches: Sequence) -> str:
    lines = [f"{target}: {title!r}"]
    if not matches:
        lines.append("  no watchlist matched")
    for match in matches:
        lines.append(f"  ✔ {match.watchlist}")
        lines += [f"      {line}" for line in _hits_by_concept(match.hits)]
        if match.more_hits:
            lines.append(f"      … {match.more_hits} more hit(s) not shown")
        lines.append(f"      {match.snippet}")
    return "\n".join(lines)


def _hits_by_concept(hits: Sequence) -> list[str]:
    """One line per concept, each distinct matched text once with its count: a long article
    hits the same words dozens of times (`--json` has the hits shown with their offsets)."""
    texts: dict[str, Counter[str]] = {}
    for hit in hits:
        texts.setdefault(hit.concept, Counter())[
            f"«{hit.text}»" + (" (fuzzy)" if hit.fuzzy else "")
        ] += 1
    lines = []
    for concept, counts in texts.items():
        shown = ", ".join(text + (f" ×{n}" if n > 1 else "") for text, n in counts.most_common())
        lines.append(f"{concept} ({counts.total()} hit(s)): {shown}")
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo.run import run_demo

    if run_demo(keep=args.keep):
        return OK
    return failure("demo: a source failed or no alert was delivered (see the lines above)")


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

    run = command("run", "the daemon: poll every source on its schedule and deliver alerts")
    run.add_argument("--once", action="store_true", help="poll every source once, deliver, exit")
    run.set_defaults(handler=cmd_run)
    command("check", "validate the config; exit 2 listing every error").set_defaults(
        handler=cmd_check
    )
    match = command("match", "which watchlists a document matches, and the words that did")
    match.add_argument(
        "documents",
        nargs="*",
        metavar="FILE_OR_URL",
        help=".txt (plain text: first line title, '-' line before a teaser), .html, or a URL",
    )
    match.add_argument("--json", action="store_true", help="one JSON object per document")
    match.add_argument(
        "--archive",
        action="store_true",
        help="backtest: match the articles stored in the config's database (nothing is sent)",
    )
    match.add_argument(
        "--since",
        type=age_cutoff,
        metavar="AGE",
        help="with --archive: only articles fetched in the last AGE (7d, 12h)",
    )
    match.add_argument(
        "--watchlist",
        action="append",
        metavar="NAME",
        help="only this watchlist (repeatable)",
    )
    match.set_defaults(handler=cmd_match)
    demo = commands.add_parser(
        "demo", help="the whole pipeline against the bundled offline news site"
    )
    demo.add_argument("--keep", type=Path, help="keep the demo database in this folder")
    demo.set_defaults(handler=cmd_demo)
    add_alert_commands(command, _load)
    add_story_commands(command, _load)
    add_source_commands(command, _load)
    add_db_commands(commands, default_config, _load)
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
    (the message says whether the file is healthy: read-only, disk full, locked)."""
    import sqlite3

    from crawler.store import StoreError, store_error

    try:
        return args.handler(args)
    except StoreError as exc:
        return failure(f"{args.command}: {exc}")
    except sqlite3.Error as exc:
        return failure(f"{args.command}: {store_error('the database', exc)}")
