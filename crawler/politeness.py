"""Per-site politeness shared by every poll: a concurrency limit per site and robots.txt
Crawl-delay.

Scrapy ignores Crawl-delay altogether, and its per-domain slots are keyed by host name alone.
The `DomainGate` is keyed by site (host and port) and lives as long as the daemon (passed to the
crawl through the settings, like the robots.txt cache, so a restarted crawl keeps it); every
request of every poll waits at it just before it goes on the wire. Scrapy's own per-domain
limit is set out of its way (`spiders.scrapy_settings`).
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
_HELD = "newswatch_gate_site"


class DomainGate:
    """At most `concurrency` requests in flight per site (host:port), and request starts spaced
    by the site's Crawl-delay, across all sources and polls."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> DomainGate:
        """Scrapy deep-copies the settings into every crawl: the gate must stay one object."""
        return self

    async def enter(self, site: str, delay: float) -> None:
        await self._slot(site).acquire()
        if delay <= 0:
            return
        now = time.monotonic()
        start = max(now, self._next_start.get(site, 0.0))
        self._next_start[site] = start + delay
        if start > now:
            await asyncio.sleep(start - now)

    def leave(self, site: str) -> None:
        self._slot(site).release()

    def _slot(self, site: str) -> asyncio.Semaphore:
        if site not in self._slots:
            self._slots[site] = asyncio.Semaphore(self.concurrency)
        return self._slots[site]


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
