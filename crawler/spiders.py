"""The Scrapy spider: a source's listing, fetched conditionally, then its new articles.

One spider serves every poll while the daemon runs (`crawler.poller` keeps its crawl open). It
only moves bytes: a listing goes to the listing parser, each new entry becomes a request for its
page, and each page (or the reason it could not be had) is handed to the ingest through the
entry's `Poll`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Request, Response
from twisted.python.failure import Failure

from crawler import addresses, refetch
from crawler.articles import Fetched
from crawler.encodings import to_utf8
from crawler.entries import ListingEntry
from crawler.polls import Poll, Traffic, describe_failure, response_header
from crawler.store import SourceState

MAX_CHILD_SITEMAPS_SETTING = "NEWSWATCH_MAX_CHILD_SITEMAPS"
MAX_AGE_SETTING = "NEWSWATCH_MAX_ARTICLE_AGE"
HTML_TYPES = (b"text/html", b"application/xhtml+xml")

log = logging.getLogger("newswatch.poll")


class SourceSpider(scrapy.Spider):
    """The one spider of the daemon's crawl, kept open while the daemon runs: `run` takes a
    poll through its listing and articles, and many polls run through it at once."""

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
            etag = response_header(response, "ETag")
            last_modified = response_header(response, "Last-Modified")
            poll.validators = SourceState(etag, last_modified, digest)
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
            response_header(response, "Content-Type"),
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
            content_type = response_header(response, "Content-Type")
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


def _fetched(poll: Poll, entry: ListingEntry, url: str | None, html: bytes | None) -> Fetched:
    source = poll.source
    return Fetched(source.name, source.language, entry, url, html)


def _is_html(response: Response) -> bool:
    """Only pages the server calls HTML (or, with no type given, that start like HTML) are
    extracted; PDFs, images, JSON and feeds linked from a listing are not articles to parse."""
    declared = (response.headers.get("Content-Type") or b"").split(b";")[0].strip().lower()
    if declared:
        return declared in HTML_TYPES
    head = response.body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))
