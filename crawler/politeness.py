"""Per-site politeness shared by every poll: a concurrency limit per site and robots.txt
Crawl-delay.

Scrapy ignores Crawl-delay altogether, and its per-domain slots are keyed by host name alone.
The `DomainGate` is keyed by site (host and port) and lives as long as the daemon (passed to the
crawl through the settings, like the robots.txt cache, so a restarted crawl keeps it); every
request of every poll waits at it just before it goes on the wire. Scrapy's own per-domain
limit is set out of its way (`poller.scrapy_settings`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from scrapy.crawler import Crawler
from scrapy.http import Request, Response
from scrapy.robotstxt import RobotParser
from scrapy.utils.httpobj import urlparse_cached

from crawler import robots

log = logging.getLogger("newswatch.politeness")

SETTING = "NEWSWATCH_DOMAIN_GATE"
MAX_CRAWL_DELAY = 60.0
MAX_SITES = 1024
_HELD = "newswatch_gate_site"


class DomainGate:
    """At most `concurrency` requests in flight per site (host:port), and request starts spaced
    by the site's Crawl-delay, across all sources and polls.

    A site is forgotten once no request holds or awaits its slot and its Crawl-delay spacing has
    run out: listings link to any number of hosts, and a daemon runs for months. When
    `max_sites` are remembered all the same, idle ones are swept; sites in use never are."""

    def __init__(self, concurrency: int, max_sites: int = MAX_SITES) -> None:
        self.concurrency = concurrency
        self.max_sites = max_sites
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self._users: dict[str, int] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> DomainGate:
        """Scrapy deep-copies the settings into every crawl: the gate must stay one object."""
        return self

    def __len__(self) -> int:
        """Sites remembered."""
        return len(self._slots)

    async def enter(self, site: str, delay: float) -> None:
        slot = self._slot(site)
        self._users[site] = self._users.get(site, 0) + 1
        try:
            await slot.acquire()
        except BaseException:
            self._done(site)
            raise
        if delay <= 0:
            return
        now = time.monotonic()
        start = max(now, self._next_start.get(site, 0.0))
        self._next_start[site] = start + delay
        if start > now:
            try:
                await asyncio.sleep(start - now)
            except BaseException:
                self.leave(site)
                raise

    def leave(self, site: str) -> None:
        self._slots[site].release()
        self._done(site)

    def _done(self, site: str) -> None:
        self._users[site] -= 1
        if not self._users[site] and self._idle(site, time.monotonic()):
            self._forget(site)

    def _slot(self, site: str) -> asyncio.Semaphore:
        if site not in self._slots:
            if len(self._slots) >= self.max_sites:
                self._sweep()
            self._slots[site] = asyncio.Semaphore(self.concurrency)
            self._users[site] = 0
        return self._slots[site]

    def _idle(self, site: str, now: float) -> bool:
        return not self._users[site] and self._next_start.get(site, 0.0) <= now

    def _sweep(self) -> None:
        """Idle sites whose spacing ran out; if that is not enough, idle sites by how soon
        their spacing ends, down to half the limit (a sweep per new site would cost n each)."""
        now = time.monotonic()
        idle = sorted((self._next_start.get(s, 0.0), s) for s in self._slots if not self._users[s])
        for next_start, site in idle:
            if next_start > now and len(self._slots) <= self.max_sites // 2:
                return
            self._forget(site)

    def _forget(self, site: str) -> None:
        del self._slots[site], self._users[site]
        self._next_start.pop(site, None)


class PolitenessMiddleware:
    """Placed last before the download, so nothing between it and the wire can drop a request
    that holds a slot; the slot is given back when the response or the error comes back."""

    def __init__(self, crawler: Crawler) -> None:
        self.gate: DomainGate = crawler.settings[SETTING]
        self.robots: robots.RobotsCache = crawler.settings[robots.SETTING]
        self.user_agent: str = crawler.settings["USER_AGENT"]
        self._announced: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PolitenessMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        site = urlparse_cached(request).netloc
        await self.gate.enter(site, self._crawl_delay(site))
        request.meta[_HELD] = site

    def process_response(self, request: Request, response: Response) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._release(request)

    def _release(self, request: Request) -> None:
        site = request.meta.pop(_HELD, None)
        if site is not None:
            self.gate.leave(site)

    def _crawl_delay(self, site: str) -> float:
        parser: Any = self.robots.get(site)
        if not isinstance(parser, RobotParser):
            return 0.0
        delay = min(float(parser.crawl_delay(self.user_agent) or 0.0), MAX_CRAWL_DELAY)
        if delay and site not in self._announced:
            self._announced.add(site)
            log.info("site=%s: robots.txt asks for %.1f s between requests; honoured", site, delay)
        return delay
