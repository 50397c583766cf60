"""The daemon's life: a stop request in the middle of a poll is a clean stop, not a crash."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.hostile_site import HostileSite, Reply
from tests.support import ROOT
from tests.test_polling import articles, rss, write_config


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "run", "--config", str(config)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(daemon: subprocess.Popen[str]) -> tuple[int, float, str]:
    """SIGTERM; (exit code, seconds to exit, stderr)."""
    started = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    try:
        code = daemon.wait(timeout=15)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    return code, time.monotonic() - started, daemon.stderr.read()


def test_sigterm_lets_the_poll_in_flight_finish_and_cancels_the_queued_ones(tmp_path):
    """One poll at a time: at SIGTERM one source's article is on the wire, two polls wait for
    their turn. The article arrives within the stop grace and is stored; the waiting polls are
    dropped without a word."""
    arrived = threading.Event()

    def article(path: str):
        def reply() -> Reply:
            arrived.set()
            return articles([path], delay=3.0)[path]

        return reply

    routes = {}
    for n in range(3):
        routes[f"/feed{n}.xml"] = Reply(rss([f"/a/{n}.html"]))
        routes[f"/a/{n}.html"] = article(f"/a/{n}.html")
    with HostileSite(routes) as site:
        sources = {f"s{n}": f"{site.url}/feed{n}.xml" for n in range(3)}
        config = write_config(tmp_path, sources, crawl="{max_concurrent_polls: 1}")
        daemon = _start(config)
        try:
            assert arrived.wait(timeout=60)
        finally:
            code, took, log = _stop(daemon)
        requested = site.paths()
    assert code == 0, log
    assert took < 10, log
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log
    assert len([p for p in requested if p.startswith("/feed")]) == 1, requested
    with sqlite3.connect(tmp_path / "news.db") as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == 1


def test_sigterm_during_a_slow_poll_stops_cleanly(tmp_path):
    """The listing answers quickly, its articles drip in slower than the stop grace: the stop
    cancels the poll, and that is no error (exit 0, no traceback, no ERROR line)."""
    paths = [f"/slow/{n}.html" for n in range(3)]
    routes = {"/feed.xml": Reply(rss(paths)), **articles(paths, delay=30.0)}
    with HostileSite(routes) as site:
        config = write_config(
            tmp_path, {"slow": f"{site.url}/feed.xml"}, crawl="{download_timeout: 60s}"
        )
        daemon = _start(config)
        try:
            _wait_for(lambda: "/feed.xml" in site.paths(), timeout=60)
            time.sleep(1.0)
        finally:
            code, took, log = _stop(daemon)
    assert code == 0, log
    assert took < 10, log
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log
    assert "daemon stopped" in log
    assert "stopping 1 unfinished poll(s)" in log
