"""Backtest and country presets: prints its figures, asserts nothing.

1. Presets: time to expand every `country/…` preset into concepts and to build the index of one
   watchlist per country (what `newswatch check` and the daemon's start pay).
2. Backtest: `crawler.backtest.backtest` (read-only SQLite read, Document rebuilt, the daemon's
   `Watchlists.match`) over N stored Arabic news articles from SaudiNewsNet (read from
   ../shared/data/saudinewsnet when present, never copied; otherwise the seed article repeated),
   articles/s in CPU time, and which country watchlists matched most — a plausibility check of
   the presets on real text.

Usage: python bench/backtest.py [--data DIR] [--articles N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import TypeVar

from alerts.concepts import ConceptSpec
from alerts.presets import country_codes
from alerts.times import timestamp
from alerts.watchlists import WatchlistConfig, Watchlists
from crawler import store
from crawler.backtest import backtest, open_read_only

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "saudinewsnet"
SEED = ROOT / "tests" / "data" / "seed_article.txt"


def real_articles(data: Path, limit: int) -> Iterator[tuple[str, str]]:
    for archive in sorted(data.glob("*.zip")):
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                for item in json.loads(opened.read(name)):
                    lines = [p.strip() for p in item.get("content", "").splitlines() if p.strip()]
                    yield item.get("title", ""), "\n\n".join(lines)
                    limit -= 1
                    if limit == 0:
                        return


def seed_articles(limit: int) -> Iterator[tuple[str, str]]:
    lines = [line.strip() for line in SEED.read_text("utf-8").splitlines() if line.strip()]
    for _ in range(limit):
        yield lines[0], "\n\n".join(lines[1:])


def fill(path: Path, articles: Iterator[tuple[str, str]]) -> int:
    db = store.open_db(path)
    rows = [
        {
            "url": f"https://news.example/{n}",
            "canonical_url": f"https://news.example/{n}",
            "source": "bench",
            "title": title,
            "text": text,
            "language": "ar",
            "fetched_at": timestamp(),
            "content_hash": f"h{n}",
            "story_id": f"st-{n}",
        }
        for n, (title, text) in enumerate(articles)
    ]
    with db.atomic():
        db["articles"].insert_all(rows)
    db.close()
    return len(rows)


def cpu(action: Callable[[], T]) -> tuple[float, T]:
    start = time.process_time()
    result = action()
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--articles", type=int, default=2_000)
    args = parser.parse_args()

    codes = country_codes()
    expand, concepts = cpu(
        lambda: {c: ConceptSpec.model_validate({"preset": f"country/{c}"}) for c in codes}
    )
    aliases = sum(len(a) for spec in concepts.values() for a in spec.aliases.values())
    configs = [WatchlistConfig(name=c, rule=c) for c in codes]
    build, watchlists = cpu(lambda: Watchlists(concepts, configs))
    print(f"# Presets: {len(codes)} countries, {aliases} aliases in ar/fr/en")
    print(f"expand all presets: {expand:.3f} s CPU; index of one watchlist each: {build:.3f} s")

    real = args.data.is_dir() and any(args.data.glob("*.zip"))
    source = "SaudiNewsNet" if real else "the seed article repeated (SaudiNewsNet absent)"
    articles = real_articles(args.data, args.articles) if real else seed_articles(args.articles)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        stored = fill(path, articles)
        with closing(open_read_only(path)) as conn:
            seconds, results = cpu(lambda: list(backtest(conn, watchlists, None)))
    hits = Counter(m.watchlist for _, matches in results for m in matches)
    words = sum(len(a.document.text.split()) for a, _ in results)
    print(f"# Backtest: {stored} stored articles from {source}, {words / stored:.0f} words each")
    print(f"{stored / seconds:.0f} articles/s ({seconds:.2f} s CPU, read + rebuild + match)")
    top = ", ".join(f"{code} {n}" for code, n in hits.most_common(10))
    print(f"articles matched per country watchlist (top 10): {top}")


if __name__ == "__main__":
    sys.exit(main())
