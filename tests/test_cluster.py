"""The cluster mode: real `newswatch run` workers on one throwaway PostgreSQL database, polling
loopback news sites (each on its own port, so each is a site of its own for the per-site lock).
Worker death and pauses are made deterministic by a feed request the site holds open."""

from __future__ import annotations

import itertools
import random
import re
import signal
import string
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import HANG, newswatch, start_daemon, stop_daemon, wait_until

# short clocks so a dead worker is noticed in seconds: tick 1 s, beat 1 s, stalled after 3 s
TIMING = "cluster: {tick: 1s, heartbeat: 1s, stalled_after: 3s}"
STALLED_AFTER = 3.0


def text_of(slug: str) -> str:
    """Words of the article's own, so no two articles are one story."""
    pick = random.Random(slug)
    return " ".join("".join(pick.choices(string.ascii_lowercase, k=7)) for _ in range(150))


class NewsSite:
    """One site: `/feed.xml` listing `articles`, and their pages. Every request is logged with
    its start and end; `hold()` keeps the next feed request open until `release()`, then
    answers it with `held_status`."""

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.articles: list[str] = []
        self.requests: list[tuple[str, float, float]] = []
        self.held_status = HTTPStatus.OK
        self._gate = threading.Event()
        self._armed = False
        self.holding = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, slug: str) -> None:
        with self._lock:
            self.articles.insert(0, slug)

    def hold(self) -> None:
        self._armed = True

    def release(self) -> None:
        self._gate.set()

    def fetches(self, path: str) -> list[tuple[float, float]]:
        with self._lock:
            return [(start, end) for got, start, end in self.requests if got == path]

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/feed.xml":
            with self._lock:
                held, self._armed = self._armed, False
            if held:
                self.holding.set()
                self._gate.wait(HANG)
                if self.held_status != HTTPStatus.OK:
                    return self.held_status, "text/plain", b"broken"
            return HTTPStatus.OK, "application/rss+xml", self._feed()
        slug = path.removeprefix("/a/").removesuffix(".html")
        if slug not in self.articles:
            return HTTPStatus.NOT_FOUND, "text/plain", b"no such page"
        title = f"{self.name} report {slug}"
        body = f"<p>{text_of(slug)}.</p><p>{text_of(slug + '+')}.</p>"
        page = f"<html lang='en'><head><title>{title}</title></head><body><article><h1>"
        page += f"{title}</h1>{body}</article></body></html>"
        return HTTPStatus.OK, "text/html; charset=utf-8", page.encode()

    def _feed(self) -> bytes:
        with self._lock:
            items = "".join(
                f"<item><title>{self.name} report {slug}</title>"
                f"<link>{self.url}/a/{slug}.html</link><guid>{slug}</guid>"
                "<pubDate>Sat, 28 Nov 2026 12:00:00 +0000</pubDate></item>"
                for slug in self.articles
            )
        return (
            f"<?xml version='1.0'?><rss version='2.0'><channel><title>{self.name}</title>"
            f"<link>{self.url}/</link>{items}</channel></rss>"
        ).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                started = time.monotonic()
                time.sleep(site.delay)
                status, kind, body = site._answer(self.path)
                with site._lock:
                    site.requests.append((self.path, started, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self._gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites() -> Iterator[list[NewsSite]]:
    made: list[NewsSite] = []
    yield made
    for site in made:
        site.close()


def cluster_config(
    folder: Path, url: str, sites: list[NewsSite], *, name: str = "config", more: str = ""
) -> Path:
    listed = "\n".join(
        f"  - {{name: {site.name}, url: '{site.url}/feed.xml', kind: feed}}" for site in sites
    )
    path = folder / f"{name}.yaml"
    path.write_text(
        f"database: '{url}'\n{TIMING}\nschedule: {{interval: 2s, jitter: 0}}\n"
        "crawl: {download_timeout: 60s}\n"
        f"sources:\n{listed}\n{more}",
        encoding="utf-8",
    )
    return path


class Worker:
    """A `newswatch run` worker whose log goes to a file (a pipe nobody reads would fill)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.process = start_daemon(config, stderr=self._log)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def stop(self) -> int:
        code, _, _ = stop_daemon(self.process)
        self._log.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def article_count(url: str) -> int:
    rows = query(url, "SELECT count(*) FROM articles") if _has_table(url, "articles") else [(0,)]
    return int(rows[0][0])


def _has_table(url: str, table: str) -> bool:
    """Whether the first worker has made the schema yet."""
    return query(url, "SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]


def polled(url: str, source: str, column: str = "last_success_at") -> bool:
    """Whether a poll of `source` was committed (`last_polled_at`), or succeeded."""
    if not _has_table(url, "sources"):
        return False
    rows = query(url, f"SELECT {column} FROM sources WHERE name = %s", (source,))
    return bool(rows and rows[0][0])


def polls_started(url: str, source: str) -> int:
    """The source's fencing token: one more for every poll that started."""
    return query(url, "SELECT fence FROM source_schedule WHERE name = %s", (source,))[0][0]


def overlapping(spans: list[tuple[float, float]]) -> bool:
    ordered = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))


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
        paused.process.send_signal(signal.SIGCONT)
        wait_until(lambda: "stale poll discarded" in paused.log(), HANG, "the stale poll")
    finally:
        paused.process.send_signal(signal.SIGCONT)
        codes = [paused.stop(), other.stop() if other else 0]
    assert codes == [0, 0], paused.log()
    row = query(
        pg_url,
        "SELECT last_error, consecutive_failures FROM sources WHERE name = 'paused'",
    )
    assert row == [(None, 0)]


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


def test_workers_carry_on_after_postgresql_restarts(
    tmp_path: Path, pg_url: str, sites: list[NewsSite], postgres_server: Any
) -> None:
    site = NewsSite("steady")
    sites.append(site)
    config = cluster_config(tmp_path, pg_url, sites)
    worker = Worker(config, tmp_path / "worker.log")
    try:
        wait_until(lambda: polled(pg_url, "steady", "last_polled_at"), HANG, "a first poll")
        # its log file named again, or the new server keeps pg_ctl's output pipe open
        postgres_server.pg_ctl("restart", "-m", "fast", "-w", "-l", postgres_server.log)
        restarted = time.monotonic()
        fence = polls_started(pg_url, "steady")
        wait_until(
            lambda: polls_started(pg_url, "steady") >= fence + 2,
            HANG,
            "polls after the restart",
        )
        assert time.monotonic() - restarted < 30
        assert worker.process.poll() is None
    finally:
        assert worker.stop() == 0, worker.log()


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
