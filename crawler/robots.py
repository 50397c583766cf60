"""robots.txt fetched once a day per site, not once per poll.

Scrapy's RobotsTxtMiddleware keeps parsed robots.txt as long as its crawl runs, which here is as
long as the daemon: a site's new robots.txt would never be read. This cache reads it again after
a day, and outlives a restarted crawl.
"""

from __future__ import annotations

import time
from typing import Any

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from twisted.internet.defer import Deferred

ROBOTS_TTL = 86400.0
MAX_SITES = 1024
SETTING = "NEWSWATCH_ROBOTS_CACHE"


class RobotsCache(dict[str, Any]):
    """netloc → parsed robots.txt, shared by every poll; an entry expires after `ttl` seconds,
    and past `max_sites` entries the oldest stored go first (listings link to any number of
    hosts). A robots.txt still being fetched (a Deferred) is never dropped: Scrapy's middleware
    reads it back when the fetch ends."""

    def __init__(self, ttl: float = ROBOTS_TTL, max_sites: int = MAX_SITES) -> None:
        super().__init__()
        self.ttl = ttl
        self.max_sites = max_sites
        self._stored_at: dict[str, float] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> RobotsCache:
        """Scrapy deep-copies the settings into every crawl: the cache must stay one object."""
        return self

    def __setitem__(self, netloc: str, parser: Any) -> None:
        self.pop(netloc, None)
        super().__setitem__(netloc, parser)
        self._stored_at[netloc] = time.monotonic()
        if len(self) > self.max_sites:
            self._evict()

    def pop(self, netloc: str, *default: Any) -> Any:
        self._stored_at.pop(netloc, None)
        return super().pop(netloc, *default)

    def _evict(self) -> None:
        """Oldest first: a dict keeps insertion order and `__setitem__` re-inserts."""
        for netloc in [n for n, parser in self.items() if not isinstance(parser, Deferred)]:
            if len(self) <= self.max_sites:
                return
            self.pop(netloc)

    def __contains__(self, netloc: object) -> bool:
        stored = self._stored_at.get(str(netloc))
        return stored is not None and time.monotonic() - stored < self.ttl


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._parsers = crawler.settings[SETTING]
