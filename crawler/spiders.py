"""The Scrapy side of one poll: fetch a source's listing conditionally, then its new articles.

The spider only moves bytes; what to do with them is the pipeline's job, and what a poll
found (validators, errors, counts) is kept on the `Poll` it was given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import scrapy
from scrapy.http import Request, Response, TextResponse
from twisted.python.failure import Failure

from crawler import robots
from crawler.config import Config, SourceConfig
from crawler.feeds import FeedEntry, FeedError
from crawler.listings import parse_listing
from crawler.pipeline import ArticlePipeline, Fetched
from crawler.store import SourceState

log = logging.getLogger("newswatch.poll")

MAX_CHILD_SITEMAPS = 5


@dataclass
class Poll:
    """One poll of one source: its inputs and what it found."""

    source: SourceConfig
    state: SourceState
    pipeline: ArticlePipeline
    max_new: int
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
    failures: list[str] = field(default_factory=list)

    @property
    def validators_to_keep(self) -> SourceState | None:
        """Only a poll that took every new entry may advance the ETag: otherwise the next poll's
        304 would hide entries that were never stored."""
        return self.validators if self.finished and not self.truncated else None

    def conditional_headers(self) -> dict[str, str]:
        headers = {"Cache-Control": "no-cache"}
        if self.state.etag:
            headers["If-None-Match"] = self.state.etag
        if self.state.last_modified:
            headers["If-Modified-Since"] = self.state.last_modified
        return headers

    def new_entries(self, entries: list[FeedEntry]) -> list[FeedEntry]:
        """Entries whose canonical URL is not stored, at most max_new (the rest wait a poll)."""
        fresh = [entry for entry in entries if not self.pipeline.is_known(entry.url)]
        if len(fresh) > self.max_new:
            self.truncated = True
            log.info(
                "source=%s: %d new entries, taking %d this poll",
                self.source.name,
                len(fresh),
                self.max_new,
            )
        return fresh[: self.max_new]

    async def take(self, fetched: Fetched) -> None:
        stored = await self.pipeline.process(fetched)
        if stored is not None:
            self.stored += 1
            self.alerts += stored.alerts_enqueued


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def describe_failure(failure: Failure) -> str:
    error = failure.value
    response = getattr(error, "response", None)
    if response is not None:
        return f"HTTP {response.status}"
    return f"{type(error).__name__}: {error}".rstrip(": ")


class SourceSpider(scrapy.Spider):
    name = "newswatch"

    def __init__(self, poll: Poll, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poll = poll

    async def start(self):  # type: ignore[override]
        yield Request(
            self.poll.source.url,
            headers=self.poll.conditional_headers(),
            callback=self.parse_listing,
            errback=self.listing_failed,
            dont_filter=True,
            meta={"handle_httpstatus_list": [304]},
        )

    def closed(self, reason: str) -> None:
        self.poll.finished = reason == "finished"

    def listing_failed(self, failure: Failure) -> None:
        self.poll.error = describe_failure(failure)

    def parse_listing(self, response: Response):
        poll = self.poll
        if response.status == 304:
            poll.not_modified = True
            return
        poll.validators = SourceState(_header(response, "ETag"), _header(response, "Last-Modified"))
        yield from self._listing_requests(response)

    def _listing_requests(self, response: Response):
        poll = self.poll
        try:
            listing = parse_listing(
                poll.source.kind,
                response.body,
                response.url,
                _header(response, "Content-Type"),
                poll.source.follow,
            )
        except FeedError as exc:
            poll.error = f"{response.url}: {exc}"
            return
        poll.kind = listing.kind
        poll.entries += len(listing.entries)
        for child in listing.child_sitemaps[:MAX_CHILD_SITEMAPS]:
            yield Request(child, callback=self._listing_requests, errback=self.listing_failed)
        for entry in poll.new_entries(listing.entries):
            yield Request(
                entry.url,
                callback=self.parse_article,
                errback=self.article_failed,
                cb_kwargs={"entry": entry},
            )

    async def parse_article(self, response: Response, entry: FeedEntry) -> None:
        self.poll.fetched += 1
        html = response.body if isinstance(response, TextResponse) else None
        if html is None:
            log.warning(
                "source=%s url=%s: not an HTML page (%s); using the feed entry",
                self.poll.source.name,
                response.url,
                _header(response, "Content-Type"),
            )
        await self.poll.take(self._fetched(entry, response.url, html))

    async def article_failed(self, failure: Failure) -> None:
        entry: FeedEntry = failure.request.cb_kwargs["entry"]
        reason = describe_failure(failure)
        self.poll.failures.append(f"{entry.url}: {reason}")
        log.warning(
            "source=%s url=%s: article not fetched (%s); using the feed entry",
            self.poll.source.name,
            entry.url,
            reason,
        )
        await self.poll.take(self._fetched(entry, None, None))

    def _fetched(self, entry: FeedEntry, url: str | None, html: bytes | None) -> Fetched:
        source = self.poll.source
        return Fetched(source.name, source.language, entry, url, html)


def scrapy_settings(config: Config) -> dict[str, Any]:
    """Scrapy as a polite fetcher: our own logging, no cookies, no telnet, no stats chatter."""
    crawl = config.crawl
    return {
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots_txt,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        "DOWNLOAD_MAXSIZE": crawl.max_page_size,
        "DOWNLOAD_WARNSIZE": 0,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.per_domain_concurrency,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "RETRY_TIMES": 1,
        "LOG_ENABLED": True,
        "LOG_LEVEL": "WARNING",
        "EXTENSIONS": {"scrapy.extensions.logstats.LogStats": None},
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.robots.SharedRobotsTxtMiddleware": 100,
        },
        robots.SETTING: robots.RobotsCache(),
    }
