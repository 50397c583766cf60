"""`newswatch match`: which watchlists a document matches and the words that did, or, with
`--archive`, which stored articles they would have matched (a backtest; nothing is sent). It
calls the same `Watchlists.match` the daemon calls."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.snippets import HITS_SHOWN, words_by_concept
from crawler.cli.arguments import AddCommand, Load, age_cutoff
from crawler.cli.exits import OK, failure, usage_error
from crawler.cli.terminal import printable

if TYPE_CHECKING:
    from alerts.watchlists import Watchlists


def add_commands(command: AddCommand, load: Load) -> None:
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
    match.set_defaults(handler=lambda args: cmd_match(args, load))


def cmd_match(args: argparse.Namespace, load: Load) -> int:
    from alerts.watchlists import Watchlists
    from crawler.cli.targets import DocumentError, load_document

    config = load(args.config)
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
    database: Path | str, watchlists: Watchlists, start: str | None, *, as_json: bool
) -> int:
    """List the stored articles the watchlists match; nothing is sent and nothing written."""
    from contextlib import closing

    from crawler.backtest import ArchiveError, backtest, open_read_only

    try:
        db = open_read_only(database)
    except ArchiveError as exc:
        return failure(str(exc))
    scanned = 0
    found: dict[str, dict[int, str]] = {name: {} for name in watchlists.configs}
    with closing(db):
        for article, matches in backtest(db, watchlists, start):
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
    hits the same words dozens of times (`--json` has the hits shown with their offsets).
    Every listed form is shown: this is where a rule is checked, not a message."""
    lines = []
    for group in words_by_concept([hit.to_dict() for hit in hits], shown=HITS_SHOWN):
        shown = ", ".join(
            f"«{word.text}»"
            + (" (fuzzy)" if word.fuzzy else "")
            + (f" ×{word.hits}" if word.hits > 1 else "")
            for word in group.words
        )
        lines.append(f"{group.concept} ({group.hits} hit(s)): {shown}")
    return lines
