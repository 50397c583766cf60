"""What a huge listing costs the daemon (issue 13.8).

Prints, for a generated RSS feed of N entries (default 10,000 and 20,000; the issue's case is
100,000: `--entries 100000`):
- the time to parse it with `parse_listing` (feedparser, each entry checked, capped at 1,000);
- the longest the event loop went without running while that parse happened, inline on the loop
  (as before) and in the thread `Poll.read_listing` uses: a 5 ms ticker measures its own delay;
- known-URL lookup for the 1,000 entries kept: one query (`store.known_articles`) against one
  query per entry (`store.known_article`), 1,000 of them stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.times import timestamp
from crawler import store
from crawler.listings import parse_listing
from crawler.polls import in_thread
from crawler.urls import canonical_url

CAP = 1000
TICK = 0.005


def feed(entries: int) -> bytes:
    items = "".join(
        f"<item><title>t{n}</title><link>https://h.ma/a/{n}.html</link>"
        f"<pubDate>Sat, 28 Nov 2026 10:{n % 60:02d}:00 +0300</pubDate></item>"
        for n in range(entries)
    )
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()


def parse(body: bytes):
    return parse_listing("feed", body, "https://h.ma/feed.xml", max_entries=CAP)


async def longest_stall(work: Callable[[bytes], Awaitable[object]], body: bytes) -> float:
    """The longest gap between two 5 ms ticks of the loop, minus the tick, while `work` runs."""
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            worst = max(worst, time.perf_counter() - before - TICK)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(TICK)
    await work(body)
    done.set()
    await task
    return worst


async def inline(body: bytes) -> None:
    parse(body)


async def threaded(body: bytes) -> None:
    await in_thread(lambda: parse(body))


def lookups(listing_urls: list[str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        db = store.open_db(Path(folder) / "news.db")
        canonicals = [canonical_url(u) for u in listing_urls]
        with db.atomic():
            for n, canonical in enumerate(canonicals):
                article_id = store.insert_article(
                    db,
                    {
                        "url": canonical,
                        "canonical_url": canonical,
                        "source": "s",
                        "title": "t",
                        "text": "x",
                        "fetched_at": timestamp(),
                        "content_hash": str(n),
                        "story_id": str(n),
                    },
                )
                store.remember_urls(db, article_id, {canonical})
        start = time.perf_counter()
        store.known_articles(db, canonicals)
        batch = time.perf_counter() - start
        start = time.perf_counter()
        for canonical in canonicals:
            store.known_article(db, canonical)
        single = time.perf_counter() - start
        db.close()
    return batch, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000, 20_000])
    args = parser.parse_args()
    print("| entries | parse (capped at 1,000) | loop stall, inline | loop stall, thread |")
    print("|---|---|---|---|")
    for entries in args.entries:
        body = feed(entries)
        start = time.perf_counter()
        listing = parse(body)
        took = time.perf_counter() - start
        stall_inline = asyncio.run(longest_stall(inline, body))
        stall_thread = asyncio.run(longest_stall(threaded, body))
        print(
            f"| {entries:,} | {took:.2f} s | {stall_inline * 1000:.0f} ms |"
            f" {stall_thread * 1000:.0f} ms |"
        )
    batch, single = lookups([e.url for e in listing.entries])
    print(
        f"\nknown-URL lookup, {len(listing.entries)} entries: one query {batch * 1000:.1f} ms,"
        f" one query per entry {single * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
