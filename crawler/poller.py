"""The daemon's one long-lived crawl on the reactor, and the Scrapy settings it runs with.

One crawl lives as long as the daemon and every poll feeds it (`Poller`): starting a Scrapy crawl
per poll (settings copied, engine, middlewares and downloader built, then torn down) cost about
20 ms of CPU, most of an idle poll.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

from scrapy import signals

# Scrapy imports its HTTP handler at the first crawl, deep in the reactor's stack, where the
# deprecation shims the module defines read the source of every frame: 0.5 s there, 0.2 s here.
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import AsyncCrawlerRunner, Crawler

from crawler import addresses, politeness, robots
from crawler.config import Config
from crawler.polls import POLL_CONCURRENCY, Poll
from crawler.spiders import MAX_AGE_SETTING, MAX_CHILD_SITEMAPS_SETTING, SourceSpider

REDIRECT_MAX_TIMES = 5
IDLE_CONNECTION = 5.0


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
            "http": "crawler.poller.PollingHandler",
            "https": "crawler.poller.PollingHandler",
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
        "SPIDER_MIDDLEWARES": {"crawler.polls.PollAccounting": 1},
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
