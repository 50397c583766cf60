"""The daemon: one process, one event loop shared by Twisted (Scrapy) and asyncio (APScheduler,
delivery). Jobs are rebuilt from the config at every start; the database holds all state.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from alerts.delivery import DeliveryReport, deliver_due
from alerts.message import Message
from alerts.times import timestamp
from alerts.watchlists import Watchlists
from crawler import heartbeat, retention, scheduling, sources, store
from crawler.config import Config, SourceConfig, cron_trigger
from crawler.ingest import Ingest
from crawler.notices import Notices
from crawler.poller import Poller, scrapy_settings
from crawler.polls import Poll
from crawler.workers import Extractor

if TYPE_CHECKING:
    from crawler.cluster import Worker

log = logging.getLogger("newswatch.daemon")

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
DELIVERY_INTERVAL = 30.0
RETUNE_INTERVAL = 3600.0
RETUNE_CHANGE = 0.2
STOP_GRACE = 6.0  # + crawl stop + stop notice (a quarter of it): exit within 10 s
CRAWL_STOP = 1.0  # for Scrapy to close the crawl once the unfinished polls are handed back
START_RATE = 20.0  # first polls a second at start-up (scheduling.first_poll_at)
START_WAIT = 30.0  # a worker starting while PostgreSQL restarts waits this long for it


def run_on_reactor(main: Callable[[], Awaitable[int]]) -> int:
    """Run `main` on the asyncio loop under Twisted's asyncio reactor and return its exit code.

    The reactor must be installed before anything imports twisted.internet.reactor, so this is
    the only entry into Twisted; signal handling stays ours (installSignalHandlers=False).
    """
    from scrapy.utils.reactor import install_reactor

    install_reactor(ASYNCIO_REACTOR)
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import reactor

    outcome: dict[str, Any] = {}

    async def wrapper() -> None:
        try:
            outcome["code"] = await main()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            reactor.callLater(0, reactor.stop)

    reactor.callWhenRunning(lambda: deferred_from_coro(wrapper()))
    reactor.run(installSignalHandlers=False)
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome.get("code", 1))


@dataclass
class PollSummary:
    sources: int = 0
    failed_sources: int = 0
    stored: int = 0
    alerts_enqueued: int = 0
    not_modified: int = 0
    sent: list[Message] = field(default_factory=list)


class Daemon:
    def __init__(
        self,
        config: Config,
        extractor: Extractor,
        *,
        on_sent: Callable[[Message, str], None] | None = None,
    ) -> None:
        self.config = config
        self.extractor = extractor
        self.on_sent = on_sent
        self.summary = PollSummary()
        self._stopping = asyncio.Event()
        self._busy: set[asyncio.Task[Any]] = set()
        self._delivery_lock = asyncio.Lock()
        # Each poll has its own pages in flight: a bound on how many run at once bounds memory
        # when many sources fall due together (start-up).
        self._poll_slots = asyncio.Semaphore(config.crawl.max_concurrent_polls)
        self.pollers: dict[bool, Poller] = {}
        self.cluster: Worker | None = None

    async def run(self, once: bool = False) -> int:
        """A worker of a cluster shares its database with the others (no lock); a daemon on a
        file holds the file's lock."""
        if self.config.cluster:
            return await self._run(once)
        with store.daemon_lock(self.config.database):
            return await self._run(once)

    async def _run(self, once: bool) -> int:
        with self._stop_on_signals():
            return await self._start(once)

    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """From the first moment: a SIGTERM during start-up stops the daemon as one during a poll
        does, instead of killing it and leaving its extraction workers behind."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            yield
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _start(self, once: bool) -> int:
        self.db = store.open_db(self.config.database, wait=START_WAIT)
        try:
            self.cluster = self._join_cluster()
            self.heartbeat = heartbeat.Heartbeat(self.db)
            self.heartbeat.beat()
            self.notices = Notices(self.config, self.db)
            self.notices.catch_up()
            watchlists = Watchlists(self.config.concepts, self.config.watchlists)
            self.ingest = Ingest(
                self.db,
                watchlists,
                self.extractor,
                store_html=self.config.crawl.store_html,
                dedup_config=self.config.dedup,
                events_config=self.config.events,
                guard=self.cluster.holds if self.cluster else None,
            )
            self.pollers = _pollers(self.config)
            if once:
                await self._poll_all_once()
                await self.deliver()
                if retention.next_run(self.db) <= _now():
                    await self.run_retention()
                return 0
            return await self._serve()
        finally:
            await self._stop_crawls()
            self.db.close()

    def _join_cluster(self) -> Worker | None:
        """In the cluster mode, this daemon as one of the workers (procrastinate is imported
        then only)."""
        if not self.config.cluster:
            return None
        from crawler.cluster import Worker

        worker = Worker(self)
        worker.join()
        return worker

    def stop(self) -> None:
        log.info("stop requested: finishing in-flight work")
        self._stopping.set()

    async def _poll_all_once(self) -> None:
        if self.cluster is not None:
            cluster = self.cluster
            await asyncio.gather(
                *(cluster.poll(source.name, due=False) for source in self.config.sources)
            )
            return
        await asyncio.gather(*(self.poll(source) for source in self.config.sources))

    async def _serve(self) -> int:
        # No job runs twice at once; runs missed while the loop was busy collapse into one that
        # runs late rather than never.
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone="UTC",
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        if self.cluster is None:
            self._schedule_alone(scheduler)
        scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=DELIVERY_INTERVAL),
            args=[self.deliver],
            id="delivery",
            name="delivery",
            next_run_time=_now(),
        )
        scheduler.add_job(
            self.heartbeat.beat,
            IntervalTrigger(seconds=heartbeat.INTERVAL),
            id="heartbeat",
            name="heartbeat",
        )
        self.notices.daemon_event("daemon_started", "newswatch started")
        scheduler.start()
        queue = asyncio.ensure_future(self.cluster.run(self._stopping)) if self.cluster else None
        log.info(
            "%s started: %d source(s), %d watchlist(s), database %s",
            "worker" if queue else "daemon",
            len(self.config.sources),
            len(self.config.watchlists),
            self.config.database_name,
        )
        code = await self._until_stopped(queue)
        # Paused, not shut down: shutting down cancels the jobs running now, which are given
        # the stop grace instead (_drain).
        scheduler.pause()
        await self._drain()
        if queue is not None:
            await self._end_queue(queue)
        scheduler.shutdown(wait=False)
        await self._announce_stop()
        log.info("daemon stopped")
        return code

    def _schedule_alone(self, scheduler: AsyncIOScheduler) -> None:
        """A daemon alone on its file schedules each source, retention, the `interval: auto`
        retune and the digests itself (a cluster's workers share these through their queue)."""
        jitter = int(self.config.schedule.jitter) or None
        self._auto = sources.auto_intervals(self.db, self.config)
        spread = len(self.config.sources) / START_RATE
        for source in self.config.sources:
            seconds = self._auto.get(source.name) or self.config.source_interval(source)
            trigger = (
                cron_trigger(source.cron, jitter)
                if source.cron
                else IntervalTrigger(seconds=seconds, jitter=jitter)
            )
            scheduler.add_job(
                self._job,
                trigger,
                args=[self.poll, source],
                id=f"source:{source.name}",
                name=f"poll of {source.name}",
                next_run_time=None
                if source.cron
                else scheduling.first_poll_at(source.name, min(spread, seconds), _now()),
            )
        scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=retention.INTERVAL),
            args=[self.run_retention],
            id="retention",
            name="retention",
            next_run_time=retention.next_run(self.db),
        )
        if self._auto:
            scheduler.add_job(
                self._retune,
                IntervalTrigger(seconds=RETUNE_INTERVAL),
                args=[scheduler, jitter],
                id="auto-intervals",
            )
        for channel, trigger in self.notices.digest_triggers().items():
            scheduler.add_job(
                self._job,
                trigger,
                args=[self.digest, channel],
                id=f"digest:{channel}",
                name=f"digest for {channel}",
            )

    async def _until_stopped(self, queue: asyncio.Future[None] | None) -> int:
        """Until a stop is asked; a worker whose job queue ended on its own (it could not
        open its connections) stops too, with exit code 1."""
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({stop, *([queue] if queue else [])}, return_when=asyncio.FIRST_COMPLETED)
        if queue is None or not queue.done():
            return 0
        stop.cancel()
        log.error("the job queue ended: %s; stopping", queue.exception() or "no error")
        self.stop()
        return 1

    async def _end_queue(self, queue: asyncio.Future[None]) -> None:
        """The queue's worker waits for its running jobs, which the drain has just ended."""
        _, unfinished = await asyncio.wait({queue}, timeout=CRAWL_STOP)
        for task in unfinished:
            task.cancel()

    async def _drain(self) -> None:
        """Give in-flight polls and sends a few seconds, then stop the extraction workers (a
        page in a stuck worker would hold its poll) and the crawl: an article not stored is
        fetched again next time, an alert not recorded as sent stays pending."""
        if self._busy:
            _, unfinished = await asyncio.wait(set(self._busy), timeout=STOP_GRACE)
            if unfinished:
                log.warning("stopping %d unfinished poll(s)", len(unfinished))
                self.extractor.close()
                await self._stop_crawls()
                await asyncio.wait(unfinished, timeout=CRAWL_STOP)

    async def _stop_crawls(self) -> None:
        await asyncio.gather(*(poller.stop(CRAWL_STOP) for poller in self.pollers.values()))

    async def _announce_stop(self) -> None:
        """Send the stop notice within the stop grace; if the channel is slow, it stays queued
        (or `sending`, retried with the same id) for the next start."""
        self.notices.daemon_event("daemon_stopped", "newswatch stopped")
        if self.config.health.notify:
            try:
                await asyncio.wait_for(self.deliver(), timeout=STOP_GRACE / 4)
            except TimeoutError:
                log.warning("stop notice not delivered in time; it is sent at the next start")

    async def _job(self, work: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Every scheduled coroutine runs through here: work cancelled because the daemon stops
        is not an error, and the scheduler would log a traceback for it."""
        try:
            await work(*args)
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            log.info("%s: cancelled by the stop; done again at the next start", work.__name__)

    async def run_retention(self) -> None:
        """Daily, and in `run --once` when a day has passed: cron users get retention too."""
        await retention.run_daily(
            self.db, self.config.storage, self.config.events.window, self._stopping
        )

    @contextmanager
    def _working(self) -> Iterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._busy.add(task)
        try:
            yield
        finally:
            self._busy.discard(task)

    def _retune(self, scheduler: AsyncIOScheduler, jitter: int | None) -> None:
        """`interval: auto` sources follow their publication rate as it changes; a small change
        is ignored so jobs are not rescheduled (and their next poll moved) every hour."""
        for name, seconds in sources.auto_intervals(self.db, self.config).items():
            current = self._auto[name]
            if abs(seconds - current) <= RETUNE_CHANGE * current:
                continue
            self._auto[name] = seconds
            scheduler.reschedule_job(
                f"source:{name}", trigger=IntervalTrigger(seconds=seconds, jitter=jitter)
            )
            log.info("source=%s: interval: auto now %.0f s (was %.0f s)", name, seconds, current)

    async def poll(self, source: SourceConfig) -> None:
        if self._stopping.is_set():
            return
        row = store.source_row(self.db, source.name)
        retry_at = sources.retry_at(row, self.config, source)
        if retry_at is not None and retry_at > _now():
            log.info(
                "source=%s url=%s: backing off after repeated failures; next poll after %s",
                source.name,
                source.display_url,
                timestamp(retry_at),
            )
            return
        with self._working():
            async with self._poll_slots:
                if self._stopping.is_set():
                    return
                poll = Poll(
                    source=source,
                    state=store.source_state(row),
                    ingest=self.ingest,
                    max_new=self.config.crawl.max_new_articles_per_poll,
                    max_entries=self.config.crawl.max_listing_entries,
                )
                try:
                    await self.pollers[source.verify_tls].run(poll)
                except Exception as exc:
                    poll.error = poll.error or f"{type(exc).__name__}: {exc}"
            self._record(poll)
        if poll.alerts and not self._stopping.is_set():
            await self.deliver()

    def _record(self, poll: Poll) -> None:
        """Keep the poll's outcome; in a cluster only if no later poll of the source started
        (a stale poll is dropped whole, see `cluster.Worker.commit`)."""
        if self.cluster is None:
            self._store_poll(poll)
        elif not self.cluster.commit(poll, self._store_poll):
            return
        self._report(poll)
        self.notices.source_polled(poll.source)

    def _store_poll(self, poll: Poll) -> None:
        source = poll.source
        store.record_poll(
            self.db,
            source.name,
            source.display_url,
            poll.kind or source.kind,
            error=poll.error,
            validators=poll.validators_to_keep,
        )

    def _report(self, poll: Poll) -> None:
        source = poll.source
        self.summary.sources += 1
        self.summary.stored += poll.stored
        self.summary.alerts_enqueued += poll.alerts
        if poll.error:
            self.summary.failed_sources += 1
            log.error(
                "source=%s url=%s: poll failed: %s", source.name, source.display_url, poll.error
            )
        elif poll.not_modified:
            self.summary.not_modified += 1
            log.info("source=%s url=%s: not modified", source.name, source.display_url)
        else:
            log.info(
                "source=%s url=%s: %d entries, %d fetched, %d new article(s), %d alert(s) queued",
                source.name,
                source.display_url,
                poll.entries,
                poll.fetched,
                poll.stored,
                poll.alerts,
            )

    async def deliver(self) -> DeliveryReport:
        with self._working():
            async with self._delivery_lock:
                report = await deliver_due(
                    self.db,
                    self.config.channels,
                    self.config.delivery.policy(),
                    self.on_sent,
                    self.notices.message_failed,
                )
        self.summary.sent.extend(report.sent)
        return report

    async def digest(self, channel: str) -> None:
        """The channel's cron fired: close its period and send the digest now."""
        if self.notices.close_period(channel) is not None:
            await self.deliver()


def _pollers(config: Config) -> dict[bool, Poller]:
    """The crawl every poll feeds, by whether it verifies TLS certificates: Scrapy checks them
    per crawl, so sources with `verify_tls: false` get a crawl of their own. Both share the
    per-site gate and robots.txt cache the settings carry."""
    settings = scrapy_settings(config)
    return {
        verify: Poller({**settings, "DOWNLOAD_VERIFY_CERTIFICATES": verify})
        for verify in {True} | {source.verify_tls for source in config.sources}
    }


def _now() -> datetime:
    return datetime.now(UTC)
