"""The daemon's extraction workers under a deadline, on loopback: a page too long to extract,
workers killed with pages in flight and a stop while a worker is stuck never hold a poll or the
daemon's exit, and every page the listing gave is stored (from its feed entry if need be)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.hostile_site import HostileSite, Reply
from tests.support import (
    HANG,
    newswatch,
    rows,
    run_once,
    start_daemon,
    wait_until,
    write_config,
)

HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = {"Content-Type": "application/rss+xml"}
PARAGRAPH = (
    "<p>Moroccan and French magistrates met in Rabat on Friday to review an extradition request"
    " under the judicial cooperation agreement signed by the two countries last year.</p>\n"
)


def page(title: str, megabytes: float = 0) -> bytes:
    """An article page; with `megabytes`, that much of article text, which takes trafilatura
    seconds of CPU a megabyte."""
    paragraphs = max(3, int(megabytes * 1024 * 1024 / len(PARAGRAPH)))
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"{PARAGRAPH * paragraphs}</article></body></html>"
    ).encode()


def site(pages: dict[str, Reply]) -> HostileSite:
    items = "".join(
        f"<item><title>Entry {path}</title><link>{{BASE}}{path}</link>"
        f"<description>Feed summary of {path}</description></item>"
        for path in pages
    )
    feed = f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()
    return HostileSite({"/feed.xml": Reply(feed, headers=RSS), **pages})


def config_for(folder: Path, base: str, crawl: str) -> Path:
    return write_config(
        folder, {"wire": {"url": f"{base}/feed.xml", "language": "en"}}, crawl=crawl
    )


def stored(config: Path) -> dict[str, str]:
    """How each stored article was had ("page" or "feed-summary"), by path."""
    articles = rows(config, "SELECT url, extraction FROM articles")
    return {"/" + row["url"].split("/", 3)[3]: row["extraction"] for row in articles}


def workers(process: subprocess.Popen[str]) -> list[int]:
    """The daemon's extraction workers: its children forked from it (same command line)."""
    proc = Path("/proc")
    command = (proc / str(process.pid) / "cmdline").read_bytes()
    children = []
    for task in (proc / str(process.pid) / "task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    return [pid for pid in children if _command(pid) == command]


def _command(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def state(pid: int) -> str | None:
    """The process's state letter in /proc (R running, S sleeping, Z zombie), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def alive(pid: int) -> bool:
    return state(pid) not in (None, "Z", "X")


def wait_for_extraction(process: subprocess.Popen[str], host: HostileSite, paths: set[str]) -> None:
    """Until every page in `paths` was sent in full and the daemon's workers are all at work
    (running, not waiting for a task), each on one of them for seconds."""
    wait_until(lambda: paths <= set(host.paths()), HANG, "the pages to be served")
    wait_until(lambda: busy(workers(process)), HANG, "the workers to take the pages")


def busy(pids: list[int]) -> bool:
    return bool(pids) and all(state(pid) == "R" for pid in pids)


def test_a_page_over_the_deadline_is_stored_from_its_feed_entry(tmp_path: Path) -> None:
    pages = {
        "/slow.html": Reply(page("A page too long to extract", megabytes=4), headers=HTML),
        "/first.html": Reply(page("Rabat and Paris sign an accord"), headers=HTML),
        "/second.html": Reply(page("A French suspect is extradited"), headers=HTML),
    }
    with site(pages) as host:
        config = config_for(tmp_path, host.url, "{extraction_timeout: 1s}")
        result = run_once(config)

    assert stored(config) == {
        "/slow.html": "feed-summary",
        "/first.html": "page",
        "/second.html": "page",
    }
    [line] = [line for line in result.stderr.splitlines() if "deadline" in line]
    assert "source=wire" in line and "/slow.html" in line and "using the feed entry" in line


def test_workers_killed_with_two_pages_in_flight_the_poll_finishes(tmp_path: Path) -> None:
    """Both workers SIGKILLed while each extracts a page (this hung `run --once` for ever): the
    two pages are stored from their entries, the pages that come later are extracted."""
    late = {f"/late-{n}.html": f"Late story {n} on the extradition accord" for n in (1, 2)}
    pages = {
        "/big-1.html": Reply(page("Big story one", megabytes=4), headers=HTML),
        "/big-2.html": Reply(page("Big story two", megabytes=4), headers=HTML),
        **{path: Reply(page(title), headers=HTML, delay=6) for path, title in late.items()},
    }
    with site(pages) as host:
        crawl = "{extraction_timeout: 10m, per_domain_concurrency: 8}"
        config = config_for(tmp_path, host.url, crawl)
        process = start_daemon(config, "--once")
        try:
            wait_for_extraction(process, host, {"/big-1.html", "/big-2.html"})
            killed = workers(process)
            assert len(killed) == 2
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            _, log = process.communicate(timeout=HANG)
        finally:
            if process.poll() is None:
                process.kill()

    assert process.returncode == 0, log
    assert "Traceback" not in log
    assert stored(config) == {
        "/big-1.html": "feed-summary",
        "/big-2.html": "feed-summary",
        "/late-1.html": "page",
        "/late-2.html": "page",
    }
    died = [line for line in log.splitlines() if "extraction failed (its worker died (" in line]
    assert all("source=wire" in line for line in died), log
    assert {path for path in ("/big-1.html", "/big-2.html") for line in died if path in line} == {
        "/big-1.html",
        "/big-2.html",
    }, log
    assert any("(killed by signal 9)" in line for line in died), log


def test_sigterm_while_workers_are_stuck_exits_0_within_10_s(tmp_path: Path) -> None:
    pages = {
        f"/huge-{n}.html": Reply(page(f"Huge story {n}", megabytes=12), headers=HTML)
        for n in (1, 2)
    }
    with site(pages) as host:
        crawl = "{extraction_timeout: 10m, max_page_size: 20MB}"
        config = config_for(tmp_path, host.url, crawl)
        process = start_daemon(config)
        try:
            wait_for_extraction(process, host, set(pages))
            stuck = workers(process)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            _, log = process.communicate(timeout=10)
            stopped_in = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()

    assert process.returncode == 0, log
    assert stopped_in < 10
    assert "Traceback" not in log
    assert "daemon stopped" in log
    assert stuck and not any(alive(pid) for pid in stuck)
    assert stored(config) == {}


def test_extraction_timeout_is_checked_at_load(tmp_path: Path) -> None:
    for value, problem in (("soon", "is not a duration"), ("1h", "less than or equal to 600")):
        config = config_for(tmp_path, "http://127.0.0.1:9", f"{{extraction_timeout: {value}}}")

        result = newswatch("check", "--config", str(config))

        assert result.returncode == 2
        assert "crawl.extraction_timeout" in result.stderr and problem in result.stderr
