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

ROBOTS_TTL = 86400.0
SETTING = "NEWSWATCH_ROBOTS_CACHE"


class RobotsCache(dict[str, Any]):
    """netloc → parsed robots.txt, shared by every poll; an entry expires after `ttl` seconds."""

    def __init__(self, ttl: float = ROBOTS_TTL) -> None:
        super().__init__()
        self.ttl = ttl
        self._stored_at: dict[str, float] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> RobotsCache:
        """Scrapy deep-copies the settings into every crawl: the cache must stay one object."""
        return self

    def __setitem__(self, netloc: str, parser: Any) -> None:
        super().__setitem__(netloc, parser)
        self._stored_at[netloc] = time.monotonic()

    def __contains__(self, netloc: object) -> bool:
        stored = self._stored_at.get(str(netloc))
        return stored is not None and time.monotonic() - stored < self.ttl


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._parsers = crawler.settings[SETTING]
