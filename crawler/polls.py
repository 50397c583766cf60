"""A poll of one source in the shared crawl: what it asked for, what it found, and when it is over.

Each request carries its `Poll` in `cb_kwargs`; a poll is over when every request it made has
been answered (`Traffic` counts them, `PollAccounting` admits each one the spider yields). What a
poll found (validators, errors, counts, pages that could not be had) is kept on its `Poll`, and
the daemon reads it when the poll is over. Failures are said in the operator's words here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from OpenSSL import SSL
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError, IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from twisted.python.failure import Failure

from crawler import refetch, store
from crawler.articles import Fetched
from crawler.config import SourceConfig
from crawler.entries import ListingEntry, ListingError
from crawler.ingest import Ingest
from crawler.listings import Listing, parse_listing
from crawler.store import SourceState

log = logging.getLogger("newswatch.poll")
T = TypeVar("T")

# Requests a poll could have in flight when each poll was its own crawl (CONCURRENT_REQUESTS):
# still its limit, and the shared crawl allows this many per concurrent poll.
POLL_CONCURRENCY = 16


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
    ingest: Ingest
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
            listing = await in_thread(
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
        """Entries the ingest wants fetched (new, changed since, retry due), each canonical URL
        once, however many polls list it at the same time; at most max_new (the rest wait a
        poll). Each refetch of a stored or failed page is logged once, with why."""
        claimed = self.ingest.claimed
        wanted: dict[str, tuple[ListingEntry, str]] = {}
        for entry, canonical, why in self.ingest.needs_fetch(entries):
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
            stored = await self.ingest.process(fetched)
        finally:
            self.release(canonical)
        if stored is not None:
            self.stored += 1
            self.alerts += stored.alerts_enqueued
        elif fetched.html is not None and not store.known_articles(self.ingest.db, [canonical]):
            # a page that gave nothing to store (no title, no text, no summary to stand in)
            # would otherwise look new to every poll
            when = self._remember_failure(fetched.entry, "nothing to store", permanent=True)
            log.info("source=%s url=%s: %s", self.source.name, fetched.entry.url, when)

    def release(self, canonical: str) -> None:
        self.queued.discard(canonical)
        self.ingest.claimed.discard(canonical)

    def release_all(self) -> None:
        """Entries this poll queued but never took (a stop) are free for the next poll."""
        self.ingest.claimed.difference_update(self.queued)
        self.queued.clear()

    def page_fetched(self, entry: ListingEntry) -> None:
        store.forget_fetch_failure(self.ingest.db, entry.url)

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
            self.ingest.db,
            entry.url,
            reason,
            permanent=permanent,
            listed_updated_at=entry.updated,
            retry_at=refetch.retry_at,
        )
        if row["retry_at"]:
            return f"retry {row['attempts'] + 1} of {refetch.MAX_ATTEMPTS} after {row['retry_at']}"
        return "not fetched again unless a listing says it changed"


def response_header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def describe_failure(failure: Failure) -> str:
    """Say what went wrong in the operator's words: a redirect that was not followed, a timeout,
    a page over the size limit, rather than the exception's class name."""
    error = failure.value
    response = getattr(error, "response", None)
    if response is not None:
        location = response_header(response, "Location")
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


async def in_thread(function: Callable[[], T]) -> T:
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
