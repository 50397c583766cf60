"""The Scrapy side of polling: fetch a source's listing conditionally, then its new articles.

One crawl lives as long as the daemon and every poll feeds it (`Poller`): starting a Scrapy crawl
per poll (settings copied, engine, middlewares and downloader built, then torn down) cost about
20 ms of CPU, most of an idle poll. Each request carries its `Poll` in `cb_kwargs`; a poll is over
when every request it made has been answered. The spider only moves bytes; what to do with them
is the pipeline's job, and what a poll found (validators, errors, counts) is kept on its `Poll`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import scrapy

# Scrapy imports its HTTP handler at the first crawl, deep in the reactor's stack, where the
# deprecation shims the module defines read the source of every frame: 0.5 s there, 0.2 s here.
import scrapy.core.downloader.handlers.http11
from OpenSSL import SSL
from scrapy import signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import AsyncCrawlerRunner, Crawler
from scrapy.exceptions import (
    DontCloseSpider,
    DownloadCancelledError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from twisted.python.failure import Failure

from crawler import addresses, politeness, refetch, robots, store
from crawler.config import Config, SourceConfig
from crawler.encodings import to_utf8
from crawler.entries import ListingEntry, ListingError
from crawler.listings import Listing, parse_listing
from crawler.pipeline import ArticlePipeline, Fetched
from crawler.store import SourceState

log = logging.getLogger("newswatch.poll")
T = TypeVar("T")

MAX_CHILD_SITEMAPS_SETTING = "NEWSWATCH_MAX_CHILD_SITEMAPS"
MAX_AGE_SETTING = "NEWSWATCH_MAX_ARTICLE_AGE"
REDIRECT_MAX_TIMES = 5
# Requests a poll could have in flight when each poll was its own crawl (CONCURRENT_REQUESTS):
# still its limit, and the shared crawl allows this many per concurrent poll.
POLL_CONCURRENCY = 16
IDLE_CONNECTION = 5.0
HTML_TYPES = (b"text/html", b"application/xhtml+xml")


@dataclass
class Traffic:
    """A poll's requests in the shared crawl. At most POLL_CONCURRENCY of them are handed to the
    downloader at once, the rest wait here: a poll of a hundred articles on a slow site queues
    at its site's gate with 16 requests, as when it was its own crawl, instead of holding every
    download slot while other polls' requests wait behind it."""

    send: Callable[[Request], None]
    done: asyncio.Future[None]
    outstanding: int = 0
    in_flight: int = 0
    waiting: deque[Request] = field(default_factory=deque)

    def start(self, request: Request) -> None:
        """The poll's first request (its listing), sent by the poll itself, not a callback."""
        self.outstanding += 1
        self.in_flight += 1
        self.send(request)

    def admit(self, request: Request) -> Request | None:
        """The request if there is room for it now; otherwise it waits for a request to end."""
        self.outstanding += 1
        if self.in_flight < POLL_CONCURRENCY:
            self.in_flight += 1
            return request
        self.waiting.append(request)
        return None

    def answer(self) -> bool:
        """One request ended; True when it was the poll's last."""
        self.outstanding -= 1
        self.in_flight -= 1
        self.release()
        return self.outstanding <= 0

    def release(self) -> None:
        while self.waiting and self.in_flight < POLL_CONCURRENCY:
            self.in_flight += 1
            self.send(self.waiting.popleft())


@dataclass
class Poll:
    """One poll of one source: its inputs and what it found."""

    source: SourceConfig
    state: SourceState
    pipeline: ArticlePipeline
    max_new: int
    # entries read from one listing (`crawl.max_listing_entries`), the newest where dated
    max_entries: int | None = None
    validators: SourceState | None = None
    kind: str | None = None
    not_modified: bool = False
    error: str | None = None
    entries: int = 0
    fetched: int = 0
    stored: int = 0
    alerts: int = 0
    truncated: bool = False
    finished: bool = False
    child_sitemaps: int = 0
    failures: list[str] = field(default_factory=list)
    queued: set[str] = field(default_factory=set)
    traffic: Traffic | None = field(default=None, repr=False)

    @property
    def validators_to_keep(self) -> SourceState | None:
        """Only a poll that took every new entry without an error may advance the ETag:
        otherwise the next poll's 304 would hide entries that were never stored."""
        ok = self.finished and not self.truncated and self.error is None
        return self.validators if ok else None

    def failed_unexpectedly(self, error: BaseException, url: str | None) -> None:
        """An error no code path expected (a bug, a full disk) fails the poll, visibly, instead
        of leaving a listing half-read behind a "success" and the next poll's 304."""
        where = f"{url}: " if url else ""
        message = f"{where}unexpected error: {type(error).__name__}: {error}"
        self.error = self.error or self.source.redact(message)

    async def read_listing(
        self, body: bytes, url: str, content_type: str | None, max_size: int, not_before: datetime
    ) -> Listing | None:
        """Parse a listing in a thread (a 100,000-entry feed is seconds of feedparser, which
        would stall every other source), keeping its newest `max_entries`; log each entry it
        skipped. None when the listing is unreadable (the poll's error says why)."""
        source = self.source
        try:
            listing = await _in_thread(
                lambda: parse_listing(
                    source.kind,
                    body,
                    url,
                    content_type,
                    source.follow,
                    max_size,
                    not_before,
                    self.max_entries,
                )
            )
        except ListingError as exc:
            self.error = source.redact(f"{url}: {exc}")
            return None
        for skipped in listing.skipped:
            log.warning("source=%s url=%s: %s", source.name, url, skipped.describe())
        if listing.listed > len(listing.entries) and self.max_entries is not None:
            log.info(
                "source=%s url=%s: %d entries, reading the newest %d (crawl.max_listing_entries)",
                source.name,
                url,
                listing.listed,
                len(listing.entries),
            )
        return listing

    def conditional_headers(self) -> dict[str, str]:
        headers = {"Cache-Control": "no-cache"}
        if self.state.etag:
            headers["If-None-Match"] = self.state.etag
        if self.state.last_modified:
            headers["If-Modified-Since"] = self.state.last_modified
        return headers

    def new_entries(self, entries: list[ListingEntry]) -> list[ListingEntry]:
        """Entries the pipeline wants fetched (new, changed since, retry due), each canonical URL
        once, however many polls list it at the same time; at most max_new (the rest wait a
        poll). Each refetch of a stored or failed page is logged once, with why."""
        claimed = self.pipeline.claimed
        wanted: dict[str, tuple[ListingEntry, str]] = {}
        for entry, canonical, why in self.pipeline.needs_fetch(entries):
            if canonical not in claimed:
                wanted.setdefault(canonical, (entry, why))
        if len(wanted) > self.max_new:
            self.truncated = True
            log.info(
                "source=%s: %d new entries, taking %d this poll",
                self.source.name,
                len(wanted),
                self.max_new,
            )
        fresh = []
        for canonical, (entry, why) in list(wanted.items())[: self.max_new]:
            if why:
                log.info("source=%s url=%s: fetching again: %s", self.source.name, entry.url, why)
            claimed.add(canonical)
            self.queued.add(canonical)
            fresh.append(entry)
        return fresh

    def request(self, url: str, **kwargs: Any) -> Request:
        """A request of this poll: its callback gets the poll, and `PollAccounting` admits it
        to the poll's `Traffic` once it is on its way to the engine."""
        cb_kwargs = {"poll": self, **kwargs.pop("cb_kwargs", {})}
        return Request(url, cb_kwargs=cb_kwargs, **kwargs)

    @contextmanager
    def answered(self) -> Iterator[None]:
        """Wraps each callback and errback: when the last one of the poll's requests is done,
        whatever it raised, the poll is over."""
        try:
            yield
        finally:
            if self.traffic is not None and self.traffic.answer():
                self.settle(finished=True)

    def settle(self, finished: bool) -> None:
        """The poll is over: `finished` when every request was answered, not when the crawl was
        stopped under it (its validators are then not kept)."""
        if self.traffic is not None and not self.traffic.done.done():
            self.finished = finished
            self.release_all()
            self.traffic.done.set_result(None)

    async def take(self, fetched: Fetched, canonical: str) -> None:
        try:
            stored = await self.pipeline.process(fetched)
        finally:
            self.release(canonical)
        if stored is not None:
            self.stored += 1
            self.alerts += stored.alerts_enqueued
        elif fetched.html is not None and not store.known_articles(self.pipeline.db, [canonical]):
            # a page that gave nothing to store (no title, no text, no summary to stand in)
            # would otherwise look new to every poll
            when = self._remember_failure(fetched.entry, "nothing to store", permanent=True)
            log.info("source=%s url=%s: %s", self.source.name, fetched.entry.url, when)

    def release(self, canonical: str) -> None:
        self.queued.discard(canonical)
        self.pipeline.claimed.discard(canonical)

    def release_all(self) -> None:
        """Entries this poll queued but never took (a stop) are free for the next poll."""
        self.pipeline.claimed.difference_update(self.queued)
        self.queued.clear()

    def page_fetched(self, entry: ListingEntry) -> None:
        store.forget_fetch_failure(self.pipeline.db, entry.url)

    def fetch_failed(self, entry: ListingEntry, reason: str, *, permanent: bool) -> None:
        self.failures.append(f"{entry.url}: {reason}")
        log.warning(
            "source=%s url=%s: article not fetched (%s); using the feed entry; %s",
            self.source.name,
            entry.url,
            reason,
            self._remember_failure(entry, reason, permanent=permanent),
        )

    def refused(self, entry: ListingEntry, url: str, reason: str) -> None:
        """The address policy refused the page (or a redirect from it): the entry is not stored
        either, since its link leads to an internal host, and it is not asked for again."""
        self.failures.append(f"{entry.url}: {reason}")
        log.warning(
            "source=%s url=%s: %s; entry skipped; %s",
            self.source.name,
            url,
            reason,
            self._remember_failure(entry, reason, permanent=True),
        )
        self.release(entry.canonical)

    def _remember_failure(self, entry: ListingEntry, reason: str, *, permanent: bool) -> str:
        """Remember why the page could not be had, so the next polls do not ask for it again
        (permanent) or only after a growing delay, a bounded number of times (transient).
        Returns what happens next, in words."""
        row = store.record_fetch_failure(
            self.pipeline.db,
            entry.url,
            reason,
            permanent=permanent,
            listed_updated_at=entry.updated,
            retry_at=refetch.retry_at,
        )
        if row["retry_at"]:
            return f"retry {row['attempts'] + 1} of {refetch.MAX_ATTEMPTS} after {row['retry_at']}"
        return "not fetched again unless a listing says it changed"


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def describe_failure(failure: Failure) -> str:
    """Say what went wrong in the operator's words: a redirect that was not followed, a timeout,
    a page over the size limit, rather than the exception's class name."""
    error = failure.value
    response = getattr(error, "response", None)
    if response is not None:
        location = _header(response, "Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            return f"HTTP {response.status} redirect to {location} refused (not http/https)"
        return f"HTTP {response.status}"
    if isinstance(error, DownloadTimeoutError):
        return f"timed out ({error})"
    if isinstance(error, DownloadCancelledError):
        return str(error) or "larger than crawl.max_page_size: download stopped"
    if isinstance(error, IgnoreRequest):
        return str(error) or "request dropped"
    tls = _tls_error(error)
    if tls is not None:
        return f"TLS error ({tls}); to accept the certificate set verify_tls: false on the source"
    return f"{type(error).__name__}: {error}".rstrip(": ")


def _tls_error(error: BaseException) -> str | None:
    """Twisted reports a refused certificate as a list of failures wrapped in a download
    error; the operator needs OpenSSL's reason ("certificate verify failed")."""
    for reason in getattr(error.__cause__, "reasons", ()):
        if isinstance(reason, Failure) and reason.check(SSL.Error):
            details = [item[-1] for item in reason.value.args[0] if isinstance(item, tuple)]
            return ", ".join(str(d) for d in details if d) or "handshake failed"
    return None


class SourceSpider(scrapy.Spider):
    """Kept open while the daemon runs; `run` hands it one poll at a time (many at once)."""

    name = "newswatch"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.polls: list[Poll] = []
        self.stopping = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SourceSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.idle, signal=signals.spider_idle, weak=False)
        crawler.signals.connect(spider.spider_error, signal=signals.spider_error, weak=False)
        return spider

    def spider_error(self, failure: Failure, response: Response | Failure, spider: Any) -> None:
        """A callback raised: its poll fails (validators not kept), whatever else it found."""
        request = getattr(response, "request", None)
        poll = request.cb_kwargs.get("poll") if request is not None else None
        if isinstance(poll, Poll):
            poll.failed_unexpectedly(failure.value, request.url)

    async def start(self) -> AsyncIterator[Request]:
        """Nothing to start with: polls bring their requests."""
        return
        yield

    async def run(self, poll: Poll) -> None:
        """Poll one source: its listing, then what the listing leads to; done when the last
        request is answered."""
        engine = self.crawler.engine
        poll.traffic = Traffic(engine.crawl, asyncio.get_running_loop().create_future())
        self.polls.append(poll)
        try:
            request = poll.request(
                poll.source.url,
                headers=poll.conditional_headers(),
                callback=self.parse_listing,
                errback=self.listing_failed,
                dont_filter=True,
                meta={"handle_httpstatus_list": [304]},
            )
            poll.traffic.start(request)
            await poll.traffic.done
        finally:
            self.polls.remove(poll)

    def idle(self) -> None:
        """Nothing is in flight, so a poll still awaiting answers lost requests somewhere (a
        request dropped after `PollAccounting` counted it): its waiting requests go out, or it
        is over. The crawl stays open."""
        for poll in list(self.polls):
            assert poll.traffic is not None
            if poll.traffic.waiting:
                poll.traffic.in_flight = 0
                poll.traffic.release()
            else:
                poll.settle(finished=True)
        if not self.stopping:
            raise DontCloseSpider

    def abandon(self) -> None:
        """The daemon stops: polls still running end unfinished, their work handed back."""
        self.stopping = True
        for poll in list(self.polls):
            poll.settle(finished=False)

    def closed(self, reason: str) -> None:
        self.abandon()

    def listing_failed(self, failure: Failure) -> None:
        poll: Poll = failure.request.cb_kwargs["poll"]
        with poll.answered():
            poll.error = poll.source.redact(describe_failure(failure))

    async def parse_listing(self, response: Response, poll: Poll):
        with poll.answered():
            if response.status == 304:
                poll.not_modified = True
                return
            digest = hashlib.sha256(response.body).hexdigest()
            poll.validators = SourceState(
                _header(response, "ETag"), _header(response, "Last-Modified"), digest
            )
            if digest == poll.state.listing_hash:
                poll.not_modified = True
                return
            async for request in self._listing_requests(response, poll):
                yield request

    async def parse_child_sitemap(self, response: Response, poll: Poll):
        with poll.answered():
            async for request in self._listing_requests(response, poll):
                yield request

    async def _listing_requests(self, response: Response, poll: Poll):
        listing = await poll.read_listing(
            response.body,
            response.url,
            _header(response, "Content-Type"),
            self.settings.getint("DOWNLOAD_MAXSIZE"),
            self._not_before(),
        )
        if listing is None:
            return
        poll.kind = listing.kind
        poll.entries += len(listing.entries)
        for child in self._children_to_read(listing.child_sitemaps, poll):
            yield poll.request(
                child, callback=self.parse_child_sitemap, errback=self.listing_failed
            )
        for entry in poll.new_entries(listing.entries):
            yield poll.request(
                entry.url,
                callback=self.parse_article,
                errback=self.article_failed,
                cb_kwargs={"entry": entry},
            )

    def _not_before(self) -> datetime:
        return datetime.now(UTC) - timedelta(seconds=self.settings.getfloat(MAX_AGE_SETTING))

    def _children_to_read(self, children: list[str], poll: Poll) -> list[str]:
        """Newest children first, and never more than the cap in one poll, however deeply
        sitemap indexes nest: a hostile or huge index cannot make a poll fetch thousands."""
        room = max(0, self.settings.getint(MAX_CHILD_SITEMAPS_SETTING) - poll.child_sitemaps)
        if len(children) > room:
            log.info(
                "source=%s url=%s: %d child sitemap(s), reading %d this poll",
                poll.source.name,
                poll.source.display_url,
                len(children),
                room,
            )
        poll.child_sitemaps += min(room, len(children))
        return children[:room]

    async def parse_article(self, response: Response, poll: Poll, entry: ListingEntry) -> None:
        with poll.answered():
            poll.fetched += 1
            content_type = _header(response, "Content-Type")
            html = None
            if _is_html(response):
                html = to_utf8(response.body, content_type)
                poll.page_fetched(entry)
            else:
                poll.fetch_failed(entry, f"not an HTML page ({content_type})", permanent=True)
            await poll.take(_fetched(poll, entry, response.url, html), entry.canonical)

    async def article_failed(self, failure: Failure) -> None:
        poll: Poll = failure.request.cb_kwargs["poll"]
        entry: ListingEntry = failure.request.cb_kwargs["entry"]
        with poll.answered():
            reason = describe_failure(failure)
            if failure.check(addresses.RefusedAddress):
                poll.refused(entry, failure.request.url, reason)
                return
            poll.fetch_failed(entry, reason, permanent=refetch.is_permanent(failure.value))
            await poll.take(_fetched(poll, entry, None, None), entry.canonical)


class PollAccounting(BaseSpiderMiddleware):
    """Admits each request a callback yields to its poll's `Traffic` once every other spider
    middleware has let it through (it is placed nearest the engine), so a request one of them
    drops (Scrapy's URLLENGTH_LIMIT) is never awaited; a callback's own end is counted after the
    requests it yielded, so a poll cannot end early."""

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        poll = request.cb_kwargs.get("poll")
        if isinstance(poll, Poll) and poll.traffic is not None:
            return poll.traffic.admit(request)
        return request


def _fetched(poll: Poll, entry: ListingEntry, url: str | None, html: bytes | None) -> Fetched:
    source = poll.source
    return Fetched(source.name, source.language, entry, url, html)


class Poller:
    """The daemon's one crawl, started at the first poll and kept open until `stop`."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.runner = AsyncCrawlerRunner(settings)
        self._spider: SourceSpider | None = None
        self._crawl: asyncio.Task[None] | None = None
        self._opening: asyncio.Lock | None = None

    async def run(self, poll: Poll) -> None:
        spider = await self._open()
        await spider.run(poll)

    async def _open(self) -> SourceSpider:
        """Start the crawl if it is not running (first poll, or it ended under us)."""
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._spider is None or self._crawl is None or self._crawl.done():
                crawler = self.runner.create_crawler(SourceSpider)
                opened: asyncio.Future[SourceSpider] = asyncio.get_running_loop().create_future()
                crawler.signals.connect(
                    lambda spider: opened.done() or opened.set_result(spider),
                    signal=signals.spider_opened,
                    weak=False,
                )
                self._crawl = self.runner.crawl(crawler)
                await asyncio.wait({self._crawl, opened}, return_when=asyncio.FIRST_COMPLETED)
                if not opened.done():
                    self._crawl.result()
                    raise RuntimeError("the crawl ended before it opened")
                self._spider = opened.result()
            return self._spider

    async def stop(self, timeout: float) -> None:
        """Polls still running end unfinished at once; Scrapy gets `timeout` to close the
        crawl (downloads in flight are waited for), then the crawl is cancelled."""
        if self._spider is not None:
            self._spider.abandon()
        if self._crawl is None or self._crawl.done():
            return
        closing = asyncio.ensure_future(self.runner.stop())
        _, pending = await asyncio.wait({closing}, timeout=timeout)
        for task in (*pending, self._crawl):
            task.cancel()
        with suppress(asyncio.CancelledError):
            await self._crawl


async def _in_thread(function: Callable[[], T]) -> T:
    """Run `function` in a daemon thread: unlike the loop's default executor, a thread the
    process exit does not wait for, so a stop request is not held up by a huge listing."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = function(), None
        except BaseException as exc:
            result, error = None, exc
        # RuntimeError: the loop closed while this ran, nobody waits for the result any more
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="listing-parser", daemon=True).start()
    return await future


def _is_html(response: Response) -> bool:
    """Only pages the server calls HTML (or, with no type given, that start like HTML) are
    extracted; PDFs, images, JSON and feeds linked from a listing are not articles to parse."""
    declared = (response.headers.get("Content-Type") or b"").split(b";")[0].strip().lower()
    if declared:
        return declared in HTML_TYPES
    head = response.body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


class PollingHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP handler, with idle connections closed after IDLE_CONNECTION seconds instead
    of Twisted's 240: a listing's articles still reuse its connection, but the crawl, which
    lives as long as the daemon, does not hold a socket open to each of thousands of sites
    between their polls (a crawl per poll closed them all at its end). As many kept per site
    as the site may have requests in flight."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._pool.cachedConnectionTimeout = IDLE_CONNECTION
        self._pool.maxPersistentPerHost = crawler.settings[politeness.SETTING].concurrency


SCRAPER_BACKLOG_BYTES = 1_000_000
# Scrapy imports every extension of EXTENSIONS_BASE for its crawl, even one disabled in
# EXTENSIONS; remote control alone imports aiohttp (0.2 s of a cold start). The crawl needs only
# the stats and log counts.
EXTENSIONS = {"scrapy.extensions.corestats.CoreStats": 0, "scrapy.extensions.logcount.LogCount": 0}


def scrapy_settings(config: Config) -> dict[str, Any]:
    """Scrapy as a polite fetcher: our own logging, no cookies, no telnet, no stats chatter.

    Pages wait for an extraction worker while their callback runs: the crawl stops downloading
    once SCRAPER_BACKLOG_BYTES per concurrent poll of them wait, so memory follows the workers'
    pace, not the network's. The per-site limit is the `DomainGate`'s (keyed by host and port,
    Crawl-delay honoured): Scrapy's own per-hostname slot would be a second, different limit.
    Scrapy's source inspection of callbacks (a warning for generators with `return`) costs
    milliseconds per crawl for callbacks that never change: off.

    No duplicate filter: a poll never asks twice for a URL on purpose, and with one a redirect
    loop (a → b → a) is dropped silently instead of failing at REDIRECT_MAX_TIMES with a log line.
    """
    crawl = config.crawl
    return {
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots_txt,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        "DOWNLOAD_MAXSIZE": crawl.max_page_size,
        "DOWNLOAD_WARNSIZE": 0,
        "CONCURRENT_REQUESTS": POLL_CONCURRENCY * crawl.max_concurrent_polls,
        "CONCURRENT_REQUESTS_PER_DOMAIN": POLL_CONCURRENCY * crawl.max_concurrent_polls,
        # A callback yields a handful of requests at most; Scrapy starts this many asyncio tasks
        # for each response it hands to a callback (100 by default).
        "CONCURRENT_ITEMS": 4,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "RETRY_TIMES": 1,
        "REDIRECT_MAX_TIMES": REDIRECT_MAX_TIMES,
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "DOWNLOAD_HANDLERS": {
            "http": "crawler.spiders.PollingHandler",
            "https": "crawler.spiders.PollingHandler",
            "file": None,
            "ftp": None,
            "s3": None,
            "data": None,
        },
        "LOG_ENABLED": True,
        "LOG_LEVEL": "WARNING",
        "EXTENSIONS_BASE": EXTENSIONS,
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "SCRAPER_SLOT_MAX_ACTIVE_SIZE": SCRAPER_BACKLOG_BYTES * crawl.max_concurrent_polls,
        "SPIDER_MIDDLEWARES": {"crawler.spiders.PollAccounting": 1},
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.robots.SharedRobotsTxtMiddleware": 100,
            "crawler.addresses.AddressPolicyMiddleware": 940,
            "crawler.politeness.PolitenessMiddleware": 950,
        },
        "DOWNLOAD_VERIFY_CERTIFICATES": True,
        addresses.SETTING: addresses.AddressPolicy.for_sources(
            (source.url for source in config.sources), crawl.allow_private_networks
        ),
        robots.SETTING: robots.RobotsCache(),
        politeness.SETTING: politeness.DomainGate(crawl.per_domain_concurrency),
        MAX_CHILD_SITEMAPS_SETTING: crawl.max_child_sitemaps,
        MAX_AGE_SETTING: crawl.max_article_age,
    }
