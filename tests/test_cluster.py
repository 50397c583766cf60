"""The cluster mode: real `newswatch run` workers on one throwaway PostgreSQL database, polling
loopback news sites (each on its own port, so each is a site of its own for the per-site lock).
Worker death and pauses are made deterministic by a feed request the site holds open."""

from __future__ import annotations

import re
import signal
import time
from http import HTTPStatus
from pathlib import Path

from tests.cluster_support import (
    STALLED_AFTER,
    NewsSite,
    Worker,
    article_count,
    cluster_config,
    overlapping,
    polled,
    query,
)
from tests.support import HANG, newswatch, wait_until


def test_two_workers_share_the_sources_and_store_every_article_once(
    tmp_path: Path, pg_url: str, sites: list[NewsSite]
) -> None:
    for number in range(4):
        site = NewsSite(f"s{number}", delay=0.2)
        for article in range(3):
            site.publish(f"{number}-{article}")
        sites.append(site)
    # a digest channel: its periodic job is registered beside the tick's
    digest = "channels:\n  log: {type: file, path: alerts.jsonl, digest: '* * * * *'}\n"
    config = cluster_config(tmp_path, pg_url, sites, more=digest)
    workers = [Worker(config, tmp_path / f"w{n}.log") for n in range(2)]
    try:
        wait_until(lambda: article_count(pg_url) == 12, HANG, "every article stored")
        sites[0].publish("0-late")
        wait_until(lambda: article_count(pg_url) == 13, HANG, "the late article stored")
        wait_until(
            lambda: all(len(site.fetches("/feed.xml")) >= 4 for site in sites),
            HANG,
            "every source polled again and again",
        )
    finally:
        codes = [worker.stop() for worker in workers]
    assert codes == [0, 0], [worker.log() for worker in workers]
    logs = [worker.log() for worker in workers]
    assert all("Traceback" not in log for log in logs), logs
    # both workers polled: the sources are shared, not all taken by the first to start
    assert all(re.search(r"feed\.xml: (not modified|\d+ entries)", log) for log in logs), logs
    for site in sites:
        assert not overlapping(site.fetches("/feed.xml")), site.name
        for slug in site.articles:
            assert len(site.fetches(f"/a/{slug}.html")) == 1, slug
    duplicates = query(
        pg_url, "SELECT canonical_url FROM articles GROUP BY canonical_url HAVING count(*) > 1"
    )
    assert duplicates == []
    # finished jobs are deleted: what is left is at most one waiting job per source and task
    left = query(pg_url, "SELECT count(*) FROM procrastinate_jobs")[0][0]
    assert left <= len(sites) + 4


def test_a_stalled_poll_with_a_sibling_waiting_is_recovered(
    tmp_path: Path, pg_url: str, sites: list[NewsSite]
) -> None:
    """procrastinate's retry of the stalled job fails (UniqueViolation on the queueing lock)
    when the next tick queued a sibling: the stalled job is finished, its site lock goes, and
    the sibling polls the source."""
    site = NewsSite("held")
    sites.append(site)
    site.hold()
    config = cluster_config(tmp_path, pg_url, sites)
    first = Worker(config, tmp_path / "first.log")
    try:
        assert site.holding.wait(HANG)
        wait_until(
            lambda: (
                query(
                    pg_url,
                    "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = 'held'"
                    " AND status = 'todo'",
                )[0][0]
                == 1
            ),
            HANG,
            "a sibling poll queued behind the stalled one",
        )
    finally:
        first.kill()
    killed = time.monotonic()
    second = Worker(config, tmp_path / "second.log")
    try:
        wait_until(lambda: polled(pg_url, "held", "last_polled_at"), STALLED_AFTER + 10, "a poll")
        assert time.monotonic() - killed < STALLED_AFTER + 10
    finally:
        site.release()
        assert second.stop() == 0
    assert "finished, a newer one is already queued" in second.log()
    assert query(pg_url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == [(0,)]


def test_two_recoveries_of_one_stalled_job_at_once_queue_it_once(
    tmp_path: Path, pg_url: str, sites: list[NewsSite]
) -> None:
    """Every worker runs the recovery, and a slow one overlaps the next: both find the same
    job of a dead worker; one queues it again, the other leaves it to it, without an error
    that would stop it recovering the other stalled jobs."""
    import asyncio
    from types import SimpleNamespace

    from crawler import store
    from crawler.cluster import POLL_TASK, POLLS
    from crawler.cluster import Worker as Recoverer
    from crawler.config import parse_config

    sites.append(NewsSite("stalled"))
    path = cluster_config(tmp_path, pg_url, sites)
    config = parse_config(path.read_text(encoding="utf-8"), str(path), tmp_path)
    db = store.open_db(pg_url)
    # what the recovery uses of the daemon: its config and database
    first, second = (Recoverer(SimpleNamespace(config=config, db=db)) for _ in range(2))
    first.join()

    async def a_dead_workers_job_recovered_twice_at_once() -> int:
        async with first.app.open_async(), second.app.open_async():
            manager = first.app.job_manager
            await first.app.configure_task(POLL_TASK, queueing_lock="stalled").defer_async(
                source="stalled"
            )
            dead = await manager.register_worker()
            job = await manager.fetch_job(queues=[POLLS], worker_id=dead)
            assert job is not None and job.id is not None
            query(
                pg_url,
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
                " RETURNING id",
            )
            await asyncio.gather(first.recover(), second.recover())
            return job.id

    try:
        job_id = asyncio.run(a_dead_workers_job_recovered_twice_at_once())
    finally:
        db.close()
    assert query(pg_url, "SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)) == [
        ("todo",)
    ]


def test_a_paused_worker_resumed_after_its_poll_ran_elsewhere_commits_nothing(
    tmp_path: Path, pg_url: str, sites: list[NewsSite]
) -> None:
    site = NewsSite("paused")
    sites.append(site)
    site.hold()
    config = cluster_config(tmp_path, pg_url, sites)
    paused = Worker(config, tmp_path / "paused.log")
    other: Worker | None = None
    try:
        assert site.holding.wait(HANG)
        paused.process.send_signal(signal.SIGSTOP)
        other = Worker(config, tmp_path / "other.log")
        wait_until(lambda: polled(pg_url, "paused"), HANG, "the poll run again elsewhere")
        # the paused poll's feed request now fails: committed, it would mark the source failing
        site.held_status = HTTPStatus.INTERNAL_SERVER_ERROR
        site.release()
        # the job recovery gave the other worker is finished (and deleted) there
        wait_until(lambda: not polling(pg_url, "paused"), HANG, "the other worker's poll done")
        paused.process.send_signal(signal.SIGCONT)
        wait_until(lambda: "stale poll discarded" in paused.log(), HANG, "the stale poll")
    finally:
        paused.process.send_signal(signal.SIGCONT)
        codes = [paused.stop(), other.stop() if other else 0]
    assert codes == [0, 0], paused.log()
    # the job recovery gave the other worker was finished there: one line, no traceback
    assert "already run and finished by another worker" in paused.log()
    assert "Traceback" not in paused.log()
    row = query(
        pg_url,
        "SELECT last_error, consecutive_failures FROM sources WHERE name = 'paused'",
    )
    assert row == [(None, 0)]


def polling(url: str, source: str) -> bool:
    """Whether a job polling `source` is running."""
    return query(
        url,
        "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s AND status = 'doing'",
        (source,),
    ) != [(0,)]


def test_a_worker_with_another_config_is_refused(
    tmp_path: Path, pg_url: str, sites: list[NewsSite]
) -> None:
    sites.extend([NewsSite("a"), NewsSite("b")])
    url = pg_url.replace("//newswatch@", "//newswatch:hunter2@")
    running = cluster_config(tmp_path, url, sites[:1], name="running")
    changed = cluster_config(tmp_path, url, sites, name="changed")
    worker = Worker(running, tmp_path / "running.log")
    try:
        wait_until(lambda: "worker started" in worker.log(), HANG, "the first worker")
        refused = newswatch("run", "--once", "--config", str(changed))
    finally:
        assert worker.stop() == 0
    assert refused.returncode == 2, refused.stderr
    assert "differs from the one the workers" in refused.stderr
    assert "hunter2" not in refused.stderr + worker.log()
    # rolled out: every worker stopped, the new config starts
    wait_until(lambda: _stored_long_enough(pg_url), HANG, "the old config's grace")
    rolled_out = Worker(changed, tmp_path / "changed.log")
    try:
        wait_until(lambda: "worker started" in rolled_out.log(), HANG, "the new config's worker")
    finally:
        assert rolled_out.stop() == 0


def _stored_long_enough(url: str) -> bool:
    return query(
        url,
        "SELECT stored_at::timestamptz < now() - make_interval(secs => %s) FROM cluster_config",
        (STALLED_AFTER,),
    )[0][0]


def test_cluster_section_is_checked_at_load(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("cluster: {heartbeat: 10s, stalled_after: 15s}\n", encoding="utf-8")
    result = newswatch("check", "--config", str(path))
    assert result.returncode == 2
    assert "cluster: stalled_after (15 s) must be at least twice heartbeat" in result.stderr


def test_the_next_poll_follows_backoff_and_cron(pg_url: str, tmp_path: Path) -> None:
    """The schedule's only input is the source's row: a failing source waits out its backoff,
    a cron source waits for its next fire time."""
    from datetime import UTC, datetime, timedelta

    from crawler import store
    from crawler.cluster import next_poll_at
    from crawler.config import parse_config

    config = parse_config(
        "schedule: {interval: 60s, jitter: 0, max_backoff: 1h}\nsources:\n"
        "  - {name: failing, url: 'http://127.0.0.1:9/feed'}\n"
        "  - {name: daily, url: 'http://127.0.0.1:9/feed', cron: '0 6 * * *'}\n",
        "test",
        tmp_path,
    )
    db = store.open_db(pg_url)
    try:
        for _ in range(3):
            store.record_poll(db, "failing", "http://127.0.0.1:9/feed", "feed", error="boom")
        failing, daily = config.sources
        now = datetime.now(UTC)
        # third failure in a row: 60 s × 2² instead of the 60 s interval
        assert next_poll_at(db, config, failing, now) - now > timedelta(seconds=200)
        noon = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        assert next_poll_at(db, config, daily, noon) == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    finally:
        db.close()


def test_a_tick_leaves_out_sources_whose_poll_already_waits(pg_url: str) -> None:
    """Deferring a source already queued is refused by its queueing lock, but only after a
    failed insert that PostgreSQL logs as an ERROR: with a backlog, hundreds at every tick."""
    from procrastinate import App, SyncPsycopgConnector

    from crawler import store
    from crawler.cluster import POLL_TASK
    from crawler.store import cluster as cluster_store

    db = store.open_db(pg_url)
    try:
        cluster_store.install_queue(db)
        cluster_store.seed_sources(
            db, {"waiting": "2026-01-01T00:00:00Z", "due": "2026-01-01T00:00:00Z"}
        )
        app = App(connector=SyncPsycopgConnector(conninfo=pg_url))
        with app.open():
            app.configure_task(POLL_TASK, queueing_lock="waiting").defer(source="waiting")
        due = cluster_store.due_sources(db, ["waiting", "due"], "2026-12-01T00:00:00Z")
    finally:
        db.close()
    assert due == ["due"]
