"""Database size (issue 9): prints its figures, asserts nothing.

1. Size per 10,000 articles, without and with stored HTML: real Arabic article texts from
   SaudiNewsNet as bodies, real article pages from the extraction benchmark (AEB, gzip-stored
   there) as the HTML kept beside them, stored as the daemon stores them (row, FTS row of the
   normalised text, seen URL, MinHash signature).
2. Size held flat under retention: N simulated days at a steady rate, each followed by the
   daily retention run (`crawler.retention.prune`, the daemon's own), keep_articles and
   keep_html shortened so the window is reached within the run; the file size each day.

Both data sets are read from ../shared/data (never copied into the project).

Usage: python bench/storage.py [--data DIR] [--articles N] [--days D] [--per-day P]
       [--keep-days K] [--keep-html-days H]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import random
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from alerts.document import PARAGRAPH_SEPARATOR
from alerts.times import timestamp
from crawler import dedup, retention, store
from crawler.config import StorageConfig

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
START = datetime(2026, 1, 1, tzinfo=UTC)


def texts(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(title, paragraphs) of every SaudiNewsNet article with a body, shuffled (seeded) so a
    sample mixes the papers and days."""
    found = []
    for path in sorted(folder.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                for item in json.loads(archive.read(name)):
                    paragraphs = tuple(p.strip() for p in item["content"].split("\n") if p.strip())
                    if paragraphs:
                        found.append((" ".join(item["title"].split()), paragraphs))
    random.Random(1).shuffle(found)
    return found


def pages(folder: Path) -> list[str]:
    return [
        gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        for path in sorted(folder.glob("*.html.gz"))
    ]


def article_stream(
    corpus: list[tuple[str, tuple[str, ...]]], html: list[str] | None
) -> Iterator[tuple[str, tuple[str, ...], str | None]]:
    """Texts (and pages) cycled; each copy made distinct so none is an exact duplicate."""
    htmls = itertools.cycle(html) if html else itertools.repeat(None)
    for number, (title, paragraphs) in enumerate(itertools.cycle(corpus)):
        yield f"{title} {number}", (*paragraphs, f"#{number}"), next(htmls)


def store_day(
    db: sqlite_utils.Database,
    stream: Iterator[tuple[str, tuple[str, ...], str | None]],
    count: int,
    fetched_at: datetime,
    first_id: int,
) -> None:
    """`count` articles as the pipeline stores them, in one transaction."""
    with db.atomic():
        for number in range(first_id, first_id + count):
            title, paragraphs, html = next(stream)
            url = f"https://news.example/a/{number}"
            found = dedup.fingerprint(title, paragraphs)
            article_id = store.insert_article(
                db,
                {
                    "url": url,
                    "canonical_url": url,
                    "source": "bench",
                    "title": title,
                    "text": PARAGRAPH_SEPARATOR.join(paragraphs),
                    "language": "ar",
                    "fetched_at": timestamp(fetched_at),
                    "content_hash": found.content_hash,
                    "extraction": "page",
                    "story_id": f"st-{number}",
                    "html": html,
                },
            )
            store.remember_urls(db, article_id, {url})
            if found.signature is not None:
                db["article_signatures"].insert(
                    {"article_id": article_id, "signature": found.signature}
                )


def file_size(db: sqlite_utils.Database, path: Path) -> int:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def size_per_10k(corpus: list, html: list[str] | None, articles: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db = store.open_db(path)
        empty = file_size(db, path)
        store_day(db, article_stream(corpus, html), articles, START, 1)
        size = file_size(db, path) - empty
        db.close()
    return size * 10_000 / articles


def held_flat(corpus: list, html: list[str], args: argparse.Namespace) -> list[tuple]:
    """(day, file size, articles with text, seconds of retention) for each simulated day."""
    policy = StorageConfig(
        keep_articles=f"{args.keep_days}d", keep_html=f"{args.keep_html_days}d", keep_versions=0
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db = store.open_db(path)
        stream = article_stream(corpus, html)
        for day in range(args.days):
            moment = START + timedelta(days=day)
            store_day(db, stream, args.per_day, moment, day * args.per_day + 1)
            started = time.perf_counter()
            retention.prune(db, policy, now=moment + timedelta(hours=23))
            seconds = time.perf_counter() - started
            kept = db.execute("SELECT count(*) FROM articles WHERE pruned_at IS NULL").fetchone()
            rows.append((day + 1, file_size(db, path), kept[0], seconds))
        db.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--articles", type=int, default=2000, help="for the size per 10,000")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100)
    parser.add_argument("--keep-days", type=int, default=10)
    parser.add_argument("--keep-html-days", type=int, default=3)
    args = parser.parse_args()
    saudi, aeb = args.data / "saudinewsnet", args.data / "aeb" / "html"
    if not saudi.is_dir() or not aeb.is_dir():
        print(f"data sets not found under {args.data}: see the docstring", file=sys.stderr)
        return 1
    corpus, html = texts(saudi), pages(aeb)
    text_bytes = sum(len(PARAGRAPH_SEPARATOR.join(p).encode()) for _, p in corpus) / len(corpus)
    html_bytes = sum(len(page.encode()) for page in html) / len(html)
    print(
        f"mean article text {text_bytes / 1024:.1f} KB ({len(corpus)} SaudiNewsNet texts),"
        f" mean page {html_bytes / 1024:.1f} KB ({len(html)} AEB pages)"
    )
    for label, pages_ in (("text only", None), ("with HTML", html)):
        per_10k = size_per_10k(corpus, pages_, args.articles)
        print(f"size per 10,000 articles, {label}: {per_10k / 1024**2:.1f} MB")
    print(
        f"\n{args.days} days of {args.per_day} articles/day with HTML;"
        f" keep_articles {args.keep_days}d, keep_html {args.keep_html_days}d"
    )
    print(f"{'day':>4} {'file MB':>8} {'texts kept':>11} {'retention s':>12}")
    rows = held_flat(corpus, html, args)
    for day, size, kept, seconds in rows:
        print(f"{day:>4} {size / 1024**2:>8.1f} {kept:>11} {seconds:>12.2f}")
    steady = [size for day, size, _, _ in rows if day > args.keep_days + 1]
    if steady:
        print(
            f"after the window: {min(steady) / 1024**2:.1f}–{max(steady) / 1024**2:.1f} MB"
            f" over {len(steady)} days (max/min {max(steady) / min(steady):.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
