"""The cluster mode's figures (issue 11): how polls scale with workers, and whether a cluster
alerts as the SQLite daemon does. Prints them, asserts nothing. Loopback only: a throwaway
PostgreSQL (the tests' own, `tests/postgres.py`) and news sites served by this script, each on
a loopback address of its own (127.0.1.1, 127.0.1.2, …), so each is a site for the per-site
lock and the politeness gate.

1. **Scaling.** `--sources` sources, one per site, whose feeds and pages answer after
   `--delay` seconds (robots.txt at once, with a 404: it is fetched once per site and
   process, and would otherwise weigh on whichever run meets the site first). Every feed request
   publishes `--new` new articles at the top of the feed (it lists its newest 10), so every poll
   does real work: one feed, `--new` pages fetched, extracted, stored. The schedule's interval
   is 1 s, so every source is due again as soon as its poll is committed and the workers poll
   as fast as they can; each worker keeps the defaults (`crawl.max_concurrent_polls` 4 polls
   at once, 2 requests per site, tick 5 s). `newswatch run` workers, 1 then 3, on a new
   database each run; after a warm-up (every worker polling, then `--warm-up` seconds) the polls
   the sites answered (feed requests) are counted over `--seconds`: polls per minute, the
   median of `--runs` runs each (the 1- and 3-worker runs alternate, so the machine's noise
   falls on both), and the ratio 3 workers / 1 worker. Sources must outnumber what the workers
   poll between two ticks (5 s), or they idle until the next tick: a quick run with a small
   `--sources` measures the tick, not the workers. Beside it, over the same window: the
   workers' CPU (their processes and extraction workers, in cores), PostgreSQL's (the server
   and its backends), the whole machine's busy share (other work on it included), and each
   worker's polls from its log, so a reader sees whether the figure is latency-bound and the
   load shared.
2. **Same alerts.** A generated site of `--outlets` outlets publishing `--stories` stories, each
   as near-copies in 3 outlets (the wire copy re-titled and one sentence of its own), half of
   them about Morocco–France extradition; two watchlists keyed on stories (`group: story`).
   The SQLite daemon (`newswatch run --once`) and a 3-worker cluster (`newswatch run` until
   every article is stored) crawl the same site; each (watchlist, story) alert is compared by
   what its story is (the set of its articles' URLs: a story id is its first URL's hash, and
   which copy comes first may differ between the two), and both counts and the symmetric
   difference are printed (goal: empty).

Usage: python bench/cluster.py [--runs N] [--seconds S] [--warm-up S] [--sources N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity import POLL_LINE

from crawler import store
from crawler.config import CrawlConfig
from tests.postgres import PostgresServer, new_server
from tests.support import run_once, start_daemon, stop_daemon

FEED_LENGTH = 10
WARM_UP_TIMEOUT = 180.0
STORE_TIMEOUT = 180.0
Answer = tuple[int, str, bytes]


def words(seed: str, count: int) -> str:
    """Text of its own for every seed, so no two articles are one story by chance."""
    pick = random.Random(seed)
    return " ".join(
        "".join(pick.choices("abcdefghijklmnopqrstuvwxyz", k=pick.randint(3, 9)))
        for _ in range(count)
    )


def article_page(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"{body}</article></body></html>"
    ).encode()


def rss(title: str, base: str, items: list[tuple[str, str]]) -> bytes:
    """A feed of (slug, title) items, newest first, all published now."""
    now = format_datetime(datetime.now().astimezone())
    entries = "".join(
        f"<item><title>{heading}</title><link>{base}/a/{slug}.html</link><guid>{slug}</guid>"
        f"<pubDate>{now}</pubDate></item>"
        for slug, heading in items
    )
    return (
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>{title}</title>"
        f"<link>{base}/</link>{entries}</channel></rss>"
    ).encode()


@dataclass
class Sites:
    """`count` sites on 127.0.1.1, 127.0.1.2, … served by one asyncio loop in a thread: a
    delayed answer holds no thread, so hundreds of requests wait at once at no cost.
    `answer(site, path)` makes each answer; every feed request's start is recorded."""

    count: int
    answer: Callable[[int, str], Answer]
    delay: float = 0.0
    urls: list[str] = field(default_factory=list)
    feed_starts: list[float] = field(default_factory=list)

    def __enter__(self) -> Sites:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def feeds_between(self, start: float, end: float) -> int:
        return sum(1 for at in list(self.feed_starts) if start <= at < end)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        servers = []
        for number in range(self.count):
            host = f"127.0.{1 + number // 250}.{1 + number % 250}"
            server = await asyncio.start_server(
                lambda r, w, n=number: self._handle(n, r, w), host, 0
            )
            servers.append(server)
            self.urls.append(f"http://{host}:{server.sockets[0].getsockname()[1]}")
        self._ready.set()
        await self._stop.wait()
        for server in servers:
            server.close()

    async def _handle(
        self, site: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One request per connection (`Connection: close`), as small as HTTP/1.1 allows."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            if path == "/robots.txt":
                status, kind, body = 404, "text/plain", b"none"
            else:
                if path == "/feed.xml":
                    self.feed_starts.append(time.monotonic())
                await asyncio.sleep(self.delay)
                status, kind, body = self.answer(site, path)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}"
                "\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


# -- scaling ----------------------------------------------------------------------------------


class Publishing:
    """Sites whose every feed request publishes `new` articles (each a page of its own text)."""

    def __init__(self, new: int) -> None:
        self.new = new
        self.published: dict[int, int] = {}
        self.lock = threading.Lock()

    def answer(self, site: int, path: str, base: str) -> Answer:
        if path == "/feed.xml":
            with self.lock:
                self.published[site] = last = self.published.get(site, 0) + self.new
            slugs = [f"{site}-{n}" for n in range(last, max(0, last - FEED_LENGTH), -1)]
            return 200, "application/rss+xml", rss(f"site {site}", base, [(s, s) for s in slugs])
        slug = path.removeprefix("/a/").removesuffix(".html")
        paragraphs = [words(slug, 120), words(slug + "+", 120)]
        return 200, "text/html; charset=utf-8", article_page(f"Report {slug}", paragraphs)


def feed_sources(prefix: str, sites: Sites) -> str:
    """The config's source list: one feed per site, named `prefix` + its number."""
    return "\n".join(
        f"  - {{name: {prefix}{n}, url: '{base}/feed.xml', kind: feed}}"
        for n, base in enumerate(sites.urls)
    )


def scaling_config(url: str, sites: Sites) -> str:
    listed = feed_sources("s", sites)
    return (
        f"database: '{url}'\nschedule: {{interval: 1s, jitter: 0}}\n"
        f"crawl: {{download_timeout: 30s}}\nsources:\n{listed}\n"
    )


def tree_cpu(pid: int) -> float:
    """User + system CPU so far of a process and its live descendants (extraction workers,
    PostgreSQL backends)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(tree_cpu(int(child)) for child in children)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Window:
    polls: int
    seconds: float
    worker_cores: float
    postgres_cores: float
    machine_busy: float
    per_worker: list[int]

    @property
    def per_minute(self) -> float:
        return 60 * self.polls / self.seconds


@contextlib.contextmanager
def workers(config: Path, count: int) -> Iterator[list[Any]]:
    """`count` `newswatch run` workers on the config's database, each logging to a file (a
    pipe nobody reads would fill); stopped as a service manager stops them."""
    logs = [(config.parent / f"worker{n}.log").open("w") for n in range(count)]
    started = [start_daemon(config, stderr=log) for log in logs]
    try:
        yield started
    finally:
        for process in started:
            stop_daemon(process)
        for log in logs:
            log.close()


def polls_in_log(log: Path, start: datetime, end: datetime) -> int:
    found = 0
    for line in log.read_text(encoding="utf-8").splitlines():
        if match := POLL_LINE.match(line):
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            found += start <= at < end
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def scaling_run(server: PostgresServer, sites: Sites, count: int, args: Any) -> Window:
    """One measured window of `count` workers on a new database."""
    with tempfile.TemporaryDirectory(prefix="nw-cluster-") as scratch:
        config = Path(scratch) / "config.yaml"
        config.write_text(scaling_config(server.database(), sites), encoding="utf-8")
        logs = [Path(scratch) / f"worker{n}.log" for n in range(count)]
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        with workers(config, count) as running:
            wait_for(
                lambda: all(polls_in_log(log, datetime.min, datetime.max) for log in logs),
                WARM_UP_TIMEOUT,
                "every worker's first poll",
            )
            time.sleep(args.warm_up)
            pids = [process.pid for process in running]
            started, wall = time.monotonic(), datetime.now()
            cpu = sum(tree_cpu(pid) for pid in pids)
            pg, machine = tree_cpu(postmaster), machine_busy()
            time.sleep(args.seconds)
            ended, end_wall = time.monotonic(), datetime.now()
            cpu = sum(tree_cpu(pid) for pid in pids) - cpu
            pg = tree_cpu(postmaster) - pg
            busy, total = (now - then for now, then in zip(machine_busy(), machine, strict=True))
            assert all(process.poll() is None for process in running), "a worker stopped"
        seconds = ended - started
        return Window(
            polls=sites.feeds_between(started, ended),
            seconds=seconds,
            worker_cores=cpu / seconds,
            postgres_cores=pg / seconds,
            machine_busy=busy / total,
            per_worker=[polls_in_log(log, wall, end_wall) for log in logs],
        )


def describe(label: str, windows: list[Window]) -> float:
    rate = statistics.median(w.per_minute for w in windows)
    each = ", ".join(f"{w.per_minute:.0f}" for w in windows)
    middle = sorted(windows, key=lambda w: w.per_minute)[len(windows) // 2]
    print(
        f"{label}: {rate:.0f} polls/min (runs: {each});"
        f" median run: workers {middle.worker_cores:.2f} cores, PostgreSQL"
        f" {middle.postgres_cores:.2f} cores, machine {middle.machine_busy:.0%} busy"
        f" (of {os.cpu_count()} cores), polls per worker from their logs {middle.per_worker}"
    )
    return rate


def scaling(server: PostgresServer, args: Any) -> None:
    publishing = Publishing(args.new)
    sites = Sites(
        args.sources, lambda n, path: publishing.answer(n, path, sites.urls[n]), args.delay
    )
    with sites:
        runs: dict[int, list[Window]] = {1: [], 3: []}
        for _ in range(args.runs):
            for count in runs:
                runs[count].append(scaling_run(server, sites, count, args))
                print(
                    f"  {count} worker(s): {runs[count][-1].per_minute:.0f} polls/min", flush=True
                )
    print(
        f"scaling: {args.sources} sources on {args.sources} loopback sites answering feeds and"
        f" pages in {args.delay:g} s, {args.new} new articles a poll, {args.seconds:g} s windows"
        f" after {args.warm_up:g} s of warm-up, median of {args.runs}"
    )
    crawl = CrawlConfig()
    rounds = 1 + math.ceil(args.new / crawl.per_domain_concurrency)
    bound = 60 * crawl.max_concurrent_polls / (rounds * args.delay)
    print(
        f"  latency bound of a worker: {crawl.max_concurrent_polls} polls at once"
        f" (crawl.max_concurrent_polls), each {rounds} round trips of {args.delay:g} s (the feed,"
        f" then {args.new} pages {crawl.per_domain_concurrency} at a time): {bound:.0f} polls/min"
    )
    one = describe("  1 worker ", runs[1])
    three = describe("  3 workers", runs[3])
    print(f"  ratio 3 workers / 1 worker: {three / one:.2f} (goal >= 2.5)")


# -- same alerts ------------------------------------------------------------------------------

WATCHLISTS = """
concepts:
  morocco: {en: [Morocco, Moroccan, Rabat]}
  france: {en: [France, French, Paris]}
  extradition: {en: [{term: extradition, mode: stem}, {term: extradite, mode: stem}]}
watchlists:
  - {name: extradition, rule: 'morocco AND france AND extradition', group: story, notify: [log]}
  - {name: morocco, rule: morocco, group: story, notify: [log]}
channels:
  log: {type: file, path: alerts.jsonl}
"""
MATCHING = "Morocco agreed to extradite a French national wanted in Paris, the court in Rabat said."


class Outlets:
    """`outlets` outlets; story k is published by three of them (drawn from the seed), each
    copy the wire text with the outlet's own title and one sentence of its own; every even
    story is about Morocco-France extradition."""

    def __init__(self, outlets: int, stories: int) -> None:
        pick = random.Random(11)
        self.listed: dict[int, list[tuple[str, str]]] = {n: [] for n in range(outlets)}
        self.pages: dict[tuple[int, str], bytes] = {}
        for story in range(stories):
            sentences = [words(f"story{story}.{s}", 12).capitalize() + "." for s in range(10)]
            if story % 2 == 0:
                sentences[3] = MATCHING
            for outlet in pick.sample(range(outlets), 3):
                slug = f"story{story}-o{outlet}"
                title = f"Outlet {outlet}: story {story}"
                own = [*sentences, words(slug, 12).capitalize() + "."]
                self.listed[outlet].append((slug, title))
                self.pages[outlet, slug] = article_page(
                    title, [" ".join(own[:6]), " ".join(own[6:])]
                )

    @property
    def articles(self) -> int:
        return len(self.pages)

    def answer(self, site: int, path: str, base: str) -> Answer:
        if path == "/feed.xml":
            return 200, "application/rss+xml", rss(f"outlet {site}", base, self.listed[site])
        slug = path.removeprefix("/a/").removesuffix(".html")
        page = self.pages.get((site, slug))
        if page is None:
            return 404, "text/plain", b"no such page"
        return 200, "text/html; charset=utf-8", page


def outlets_config(database: str, sites: Sites) -> str:
    listed = feed_sources("outlet", sites)
    return (
        f"database: '{database}'\nschedule: {{interval: 10m, jitter: 0}}\n"
        f"sources:\n{listed}\n{WATCHLISTS}"
    )


Alert = tuple[str, frozenset[str]]


@dataclass
class Alerts:
    """What one mode stored and queued."""

    found: set[Alert]
    rows: int
    articles: int
    stories: int

    def __str__(self) -> str:
        return (
            f"{self.articles} articles in {self.stories} stories, {self.rows} alerts,"
            f" {len(self.found)} distinct (watchlist, story)"
        )


def story_alerts(where: Path | str) -> Alerts:
    """(watchlist, the story's article URLs) of every alert the database queued."""
    db = store.open_for_reading(where)
    try:
        members: dict[str, set[str]] = {}
        for story_id, url in db.execute("SELECT story_id, canonical_url FROM articles").fetchall():
            members.setdefault(story_id, set()).add(url)
        rows = db.execute(
            "SELECT watchlist, story_id FROM alerts WHERE kind = 'alert' AND notice = 0"
        ).fetchall()
    finally:
        db.close()
    found = {(watchlist, frozenset(members[story])) for watchlist, story in rows}
    return Alerts(found, len(rows), sum(map(len, members.values())), len(members))


def cluster_alerts(folder: Path, url: str, sites: Sites, expected: int) -> Alerts:
    """3 workers until every article is stored and its alerts queued (in the storing
    transaction), then stopped."""
    config = folder / "cluster.yaml"
    config.write_text(outlets_config(url, sites), encoding="utf-8")
    with workers(config, 3):
        wait_for(lambda: stored(url) >= expected, STORE_TIMEOUT, "every article in the cluster")
    return story_alerts(url)


def stored(url: str) -> int:
    db = store.open_for_reading(url)
    try:
        return db.execute("SELECT count(*) FROM articles").fetchone()[0]
    finally:
        db.close()


def same_alerts(server: PostgresServer, args: Any) -> None:
    outlets = Outlets(args.outlets, args.stories)
    sites = Sites(args.outlets, lambda n, path: outlets.answer(n, path, sites.urls[n]), 0.1)
    with sites, tempfile.TemporaryDirectory(prefix="nw-alerts-") as scratch:
        folder = Path(scratch)
        config = folder / "sqlite.yaml"
        config.write_text(outlets_config(str(folder / "news.db"), sites), encoding="utf-8")
        run_once(config)
        alone = story_alerts(folder / "news.db")
        cluster = cluster_alerts(folder, server.database(), sites, outlets.articles)
    print(
        f"same alerts: {args.stories} stories as {outlets.articles} near-copies in"
        f" {args.outlets} outlets (loopback sites), 2 watchlists keyed on stories"
    )
    print(f"  SQLite daemon (run --once): {alone}")
    print(f"  3-worker cluster: {cluster}")
    difference = alone.found ^ cluster.found
    print(f"  symmetric difference: {len(difference)} (goal 0)")
    for watchlist, urls in sorted(difference, key=lambda a: (a[0], sorted(a[1]))):
        side = "SQLite only" if (watchlist, urls) in alone.found else "cluster only"
        print(f"    {side}: {watchlist} {sorted(urls)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per run")
    parser.add_argument("--warm-up", type=float, default=15.0)
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds each feed and page takes")
    parser.add_argument("--new", type=int, default=2, help="new articles a poll finds")
    parser.add_argument("--outlets", type=int, default=12)
    parser.add_argument("--stories", type=int, default=40)
    args = parser.parse_args()
    started = time.monotonic()
    server = new_server()
    try:
        same_alerts(server, args)
        scaling(server, args)
    finally:
        server.stop()
    print(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
