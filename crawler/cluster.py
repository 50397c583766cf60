"""The cluster mode: every `newswatch run` on one PostgreSQL database is a procrastinate worker
running in the daemon's event loop, and the workers share the sources through its job queue.

- A periodic `tick` defers a `poll` job for every source whose `source_schedule.next_poll_at`
  has come, with the source as queueing lock (a source already waiting is not queued twice)
  and its site as lock (one poll of a site at a time across hosts, so per-site politeness and
  Crawl-delay hold). Jitter, cron, `interval: auto` and backoff only compute that column, at
  each poll's commit: no periodic task per source (procrastinate #1464).
- A poll takes a fencing token (`source_schedule.fence`) as it starts; what it writes
  (articles, the source's state) is written only while the token is still the newest, so a
  worker paused past the stall timeout, whose job ran again elsewhere, cannot commit its stale
  poll.
- A periodic `recover` hands the jobs of workers whose heartbeat stopped to live workers. When a
  sibling with the same queueing lock already waits, procrastinate refuses the retry
  (UniqueViolation) and the stalled job would keep the site's lock for ever: it is finished
  as failed instead, and the sibling runs.
- Digests, the hourly `interval: auto` retune and the daily retention are periodic tasks too;
  finished jobs are deleted, so the job table stays as large as the number of sources.

procrastinate and psycopg are imported only here and only once a worker starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from alerts.database import PgDatabase
from alerts.times import timestamp
from crawler import retention, scheduling, sources, store
from crawler.config import Config, SourceConfig, cron_trigger
from crawler.daemon import CRAWL_STOP, RETUNE_CHANGE, START_RATE, STOP_GRACE
from crawler.store import cluster as cluster_store

if TYPE_CHECKING:
    from procrastinate import App, PsycopgConnector
    from procrastinate.jobs import Job, Status
    from procrastinate.manager import JobManager

    from crawler.daemon import Daemon
    from crawler.polls import Poll

log = logging.getLogger("newswatch.cluster")

# polls have a queue of their own: polls filling every slot must not hold back the tick and the
# recovery of a dead worker's jobs
POLLS = "newswatch.polls"
PERIODIC = "newswatch.periodic"
POLL_TASK = "newswatch.poll"
# after the job queue's worker failed (PostgreSQL restarting, a lost connection)
RESTART_DELAY = 1.0
# periodic jobs a worker may run at once
PERIODIC_JOBS = 4
RETUNE_CRON = "0 * * * *"
RETENTION_CRON = "30 * * * *"
# how procrastinate's finish and retry of a job begin their error for a job no longer there
# (or no longer in the state they act on)
JOB_GONE = "Job was not found"


class ConfigMismatch(Exception):
    """This worker's config is not the one the cluster runs: two configs would poll and alert
    differently on the same database."""


def config_hash(config: Config) -> str:
    """What every worker must agree on: the whole config but the database URL (which names
    the cluster and may carry a per-host password)."""
    text = config.model_dump_json(exclude={"database"})
    return hashlib.sha256(text.encode()).hexdigest()


def site(url: str) -> str:
    """The poll job's lock: host and port, as the per-site gate keys sites (no credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


class Worker:
    """This process's part of the cluster: the daemon's polls and deliveries, run from the
    shared job queue."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.config: Config = daemon.config
        self.db: PgDatabase = daemon.db
        self.fences: dict[str, int] = {}
        self.app = _app(self)

    def join(self) -> None:
        """At start: the queue's tables, this config as the cluster's (or refused), and a due
        time for every source not scheduled yet, spread over the first interval."""
        cluster_store.install_queue(self.db)
        now = datetime.now(UTC)
        live_since = timestamp(now - timedelta(seconds=self.config.workers.stalled_after))
        other = cluster_store.claim_config(
            self.db, config_hash(self.config), timestamp(now), live_since
        )
        if other is not None:
            raise ConfigMismatch(
                f"this config (hash {config_hash(self.config)[:12]}) differs from the one the"
                f" workers on {self.config.database_name} run (hash {other[:12]}): give every"
                " worker the same config; to roll out a new one, stop every worker, then start"
                " them with it"
            )
        spread = len(self.config.sources) / START_RATE
        first = {
            source.name: timestamp(first_poll_at(self.config, source, spread, now))
            for source in self.config.sources
        }
        cluster_store.seed_sources(self.db, first)
        self.retune()

    async def run(self, stopping: asyncio.Event) -> None:
        """procrastinate's worker until the daemon stops; started again when it fails (a lost
        connection stops it), so a PostgreSQL restart is waited out, not fatal."""
        async with self.app.open_async():
            while not stopping.is_set():
                work = asyncio.ensure_future(self._work())
                stop = asyncio.ensure_future(stopping.wait())
                await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if not work.done():
                    work.cancel()
                    await asyncio.gather(work, return_exceptions=True)
                    return
                error = work.exception()
                cause = f": {error}" if error else " (its connection to PostgreSQL was lost)"
                log.error("job queue worker stopped%s; starting it again", cause)
                await asyncio.sleep(RESTART_DELAY)

    async def _work(self) -> None:
        """procrastinate's workers, one per queue; when one stops, so does the other, and both
        start again together."""
        runs = [
            asyncio.ensure_future(
                self._queue_worker(POLLS, self.config.crawl.max_concurrent_polls)
            ),
            asyncio.ensure_future(self._queue_worker(PERIODIC, PERIODIC_JOBS)),
        ]
        try:
            done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
            for run in done:
                run.result()
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)

    async def _queue_worker(self, queue: str, concurrency: int) -> None:
        timing = self.config.workers
        await self.app.run_worker_async(
            queues=[queue],
            name=queue,
            concurrency=concurrency,
            install_signal_handlers=False,
            delete_jobs="always",
            update_heartbeat_interval=timing.heartbeat,
            stalled_worker_timeout=timing.stalled_after,
            fetch_job_polling_interval=min(timing.tick, 5.0),
            shutdown_graceful_timeout=STOP_GRACE + CRAWL_STOP,
        )

    # -- the tasks ------------------------------------------------------------------------

    async def tick(self) -> None:
        """Queue a poll of every due source; one already waiting is left as it is."""
        from procrastinate.exceptions import AlreadyEnqueued

        names = [source.name for source in self.config.sources]
        for name in cluster_store.due_sources(self.db, names, timestamp()):
            task = self.app.configure_task(
                POLL_TASK, queueing_lock=name, lock=site(self.config.source(name).url)
            )
            try:
                await task.defer_async(source=name)
            except AlreadyEnqueued:
                continue

    async def poll(self, source: str, due: bool = True) -> None:
        """The daemon's poll of one source, fenced; a job whose source a poll since covered
        (a coalesced sibling) does nothing. `run --once` polls whether due or not."""
        config = next((s for s in self.config.sources if s.name == source), None)
        if config is None:
            return
        token = cluster_store.take_fence(self.db, source, timestamp() if due else None)
        if token is None:
            return
        self.fences[source] = token
        try:
            await self.daemon.poll(config)
        finally:
            if self.fences.get(source) == token:
                del self.fences[source]

    def holds(self, source: str) -> bool:
        """Inside a poll's write transaction: whether its token is still the source's newest
        (no poll of the source started since, elsewhere or here)."""
        token = self.fences.get(source)
        return token is not None and cluster_store.fence_holds(self.db, source, token)

    def commit(self, poll: Poll, record: Callable[[Poll], None]) -> bool:
        """`record(poll)` (the daemon's bookkeeping of a poll) with the source's next due time,
        in one transaction, if the poll's token still holds; False for a stale poll."""
        source = poll.source
        with self.db.atomic():
            if self.holds(source.name):
                record(poll)
                due = next_poll_at(self.db, self.config, source, datetime.now(UTC))
                cluster_store.schedule_poll(self.db, source.name, timestamp(due))
                return True
        log.warning(
            "source=%s url=%s: stale poll discarded: its job ran again on another worker",
            source.name,
            source.display_url,
        )
        return False

    async def recover(self) -> None:
        """Jobs of workers whose heartbeat stopped go back to the queue. Recoveries run on
        several workers, and one may overlap the next: a job another recovery took first is
        left to it."""
        from procrastinate.exceptions import ConnectorException

        stalled = await self.app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=self.config.workers.stalled_after
        )
        for job in stalled:
            try:
                await self._requeue(job)
            except ConnectorException as error:
                if not job_gone(error):
                    raise
                log.info(
                    "job %s of a dead worker (%s): recovered by another worker already",
                    job.id,
                    job.call_string,
                )

    async def _requeue(self, job: Job) -> None:
        """The stalled job queued again; one whose source already has a sibling waiting is
        finished as failed instead, so its lock goes and the sibling runs."""
        from procrastinate.exceptions import UniqueViolation
        from procrastinate.jobs import Status

        manager = self.app.job_manager
        assert job.id is not None
        try:
            await manager.retry_job(job)
            log.warning("job %s of a dead worker (%s): queued again", job.id, job.call_string)
        except UniqueViolation:
            await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=True)
            log.warning(
                "job %s of a dead worker (%s): finished, a newer one is already queued",
                job.id,
                job.call_string,
            )

    def retune(self) -> None:
        """`interval: auto` intervals from the publication rates, kept in the schedule's rows
        so every worker schedules with them; small changes are ignored, as in the daemon."""
        now = datetime.now(UTC)
        for name, seconds in sources.auto_intervals(self.db, self.config, now).items():
            current = cluster_store.auto_interval(self.db, name)
            if current is not None and abs(seconds - current) <= RETUNE_CHANGE * current:
                continue
            due_by = timestamp(now + timedelta(seconds=seconds))
            cluster_store.retune(self.db, name, seconds, due_by)
            if current is not None:
                log.info(
                    "source=%s: interval: auto now %.0f s (was %.0f s)", name, seconds, current
                )

    async def retention(self) -> None:
        if retention.next_run(self.db) <= datetime.now(UTC):
            await self.daemon.run_retention()


def first_poll_at(config: Config, source: SourceConfig, spread: float, now: datetime) -> datetime:
    """A cron source at its first fire time; the others within `spread` seconds of now, as the
    daemon alone starts them (`scheduling.first_poll_at`)."""
    if source.cron:
        return cron_trigger(source.cron, config.schedule.jitter).get_next_fire_time(None, now)
    return scheduling.first_poll_at(source.name, min(spread, config.source_interval(source)), now)


def next_poll_at(db: PgDatabase, config: Config, source: SourceConfig, now: datetime) -> datetime:
    """After a poll: the schedule's next time (cron, or interval with jitter), or later if
    the source is backing off after failures."""
    jitter = config.schedule.jitter
    if source.cron:
        regular = cron_trigger(source.cron, jitter).get_next_fire_time(None, now)
    else:
        auto = source.interval == "auto"
        interval = cluster_store.auto_interval(db, source.name) if auto else None
        seconds = (interval or config.source_interval(source)) + random.uniform(0, jitter)
        regular = now + timedelta(seconds=seconds)
    backoff = sources.retry_at(store.source_row(db, source.name), config, source)
    return max(regular, backoff) if backoff else regular


def _app(worker: Worker) -> App:
    """The procrastinate app of one worker, its tasks bound to it. Periodic jobs carry a
    queueing lock (one waiting at most) but no lock: a run stalled on a dead worker must not
    block the next one, and `recover` clears it."""
    from procrastinate import App, PsycopgConnector

    config = worker.config
    # autocommit: each of the queue's statements commits as it ends on the server, so a worker
    # paused between a statement and its commit holds no lock the others wait for
    connector = PsycopgConnector(
        conninfo=str(config.database),
        kwargs={"application_name": "newswatch-worker"},
        configure=_autocommit,
        min_size=1,
        max_size=4,
    )
    app = App(connector=connector)
    app.job_manager = _job_manager(connector)

    @app.task(name=POLL_TASK, queue=POLLS)
    async def poll(source: str) -> None:
        await worker.poll(source)

    def periodic(name: str, cron: str, work: Any, **kwargs: Any) -> None:
        task = app.task(name=name, queue=PERIODIC, queueing_lock=name)(work)
        app.periodic(cron=cron, periodic_id=kwargs.get("channel", ""), task_kwargs=kwargs)(task)

    async def tick(timestamp: int) -> None:
        await worker.tick()

    async def recover(timestamp: int) -> None:
        await worker.recover()

    async def retune(timestamp: int) -> None:
        worker.retune()

    async def retention(timestamp: int) -> None:
        await worker.retention()

    periodic("newswatch.tick", _every(config.workers.tick), tick)
    periodic("newswatch.recover", _every(config.workers.heartbeat), recover)
    periodic("newswatch.retune", RETUNE_CRON, retune)
    periodic("newswatch.retention", RETENTION_CRON, retention)
    for channel_name, channel in config.channels.items():
        if channel.digest:

            async def digest(timestamp: int, channel: str) -> None:
                await worker.daemon.digest(channel)

            name = f"newswatch.digest.{channel_name}"
            periodic(name, channel.digest, digest, channel=channel_name)
    return app


def _job_manager(connector: PsycopgConnector) -> JobManager:
    """procrastinate's, but for one case: a worker paused past `stalled_after` resumes and
    finishes a job that recovery gave to another worker, which ran and deleted it. Its poll
    was discarded by its fence already: that is one warning line, not the traceback of a
    task whose exception nobody retrieved."""
    from procrastinate.exceptions import ConnectorException
    from procrastinate.manager import JobManager

    class Manager(JobManager):
        async def finish_job(self, job: Job, status: Status, delete_job: bool) -> None:
            try:
                await super().finish_job(job, status, delete_job)
            except ConnectorException as error:
                if not job_gone(error):
                    raise
                log.warning(
                    "job %s (%s): already run and finished by another worker while this one"
                    " was taken for dead",
                    job.id,
                    job.call_string,
                )

    return Manager(connector=connector)


def job_gone(error: Exception) -> bool:
    """Whether procrastinate refused to finish or retry a job because another worker already
    did (its database error is the cause of the connector's)."""
    return str(error.__cause__).startswith(JOB_GONE)


async def _autocommit(connection: Any) -> None:
    await connection.set_autocommit(True)


def _every(seconds: float) -> str:
    """A cron line (procrastinate's sixth field is seconds) firing every `seconds`, whole
    seconds from 1 to 60."""
    step = max(1, min(60, round(seconds)))
    return "* * * * *" if step == 60 else f"* * * * * */{step}"
