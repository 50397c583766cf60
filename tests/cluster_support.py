"""The cluster tests' kit: loopback news sites whose feeds a test can hold open, `newswatch run`
workers on one PostgreSQL database, and what a test reads from that database. A site is a host
and port (the poll job's lock), so each `NewsSite` is a site of its own; it may serve several
feeds, each a source."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
import string
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import HANG, start_daemon, stop_daemon

# short clocks so a dead worker is noticed in seconds: tick 1 s, beat 1 s, stalled after 3 s
TIMING = "cluster: {tick: 1s, heartbeat: 1s, stalled_after: 3s}"
STALLED_AFTER = 3.0
FEED = "feed"


def text_of(slug: str) -> str:
    """Words of the article's own, so no two articles are one story."""
    pick = random.Random(slug)
    return " ".join("".join(pick.choices(string.ascii_lowercase, k=7)) for _ in range(150))


class NewsSite:
    """One site on `host`: a feed per name in `feeds` (`/<feed>.xml`) listing what was
    published on it, and the article pages. Every request is logged with its start and end;
    `hold(feed)` keeps that feed's next request open until `release()` (`held_from` is then
    the client's address and `held_at` its start), then answers it with `held_status`."""

    def __init__(
        self, name: str, delay: float = 0.0, *, host: str = "127.0.0.1", feeds: tuple = (FEED,)
    ) -> None:
        self.name = name
        self.delay = delay
        self.entries: dict[str, list[str]] = {feed: [] for feed in feeds}
        self.texts: dict[str, str] = {}
        self.requests: list[tuple[str, float, float]] = []
        self.held_status = HTTPStatus.OK
        self.held_from: tuple[str, int] | None = None
        self.held_at: float | None = None
        self._gate = threading.Event()
        self._armed: str | None = None
        self.holding = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def articles(self) -> list[str]:
        with self._lock:
            return [slug for slugs in self.entries.values() for slug in slugs]

    def sources(self) -> dict[str, str]:
        """Source name → feed URL: the site's name for its only feed, `<site>-<feed>` else."""
        return {self.source(feed): f"{self.url}/{feed}.xml" for feed in self.entries}

    def source(self, feed: str) -> str:
        return self.name if list(self.entries) == [FEED] else f"{self.name}-{feed}"

    def publish(self, slug: str, feed: str = FEED, text: str | None = None) -> None:
        """`slug` on top of `feed`; its page reads `text`, or words of its own."""
        with self._lock:
            self.texts[slug] = text or f"{text_of(slug)}.</p><p>{text_of(slug + '+')}."
            self.entries[feed].insert(0, slug)

    def hold(self, feed: str = FEED) -> None:
        self._armed = feed

    def release(self) -> None:
        self._gate.set()

    def fetches(self, path: str) -> list[tuple[float, float]]:
        with self._lock:
            return [(start, end) for got, start, end in self.requests if got == path]

    def _answer(self, path: str, client: tuple[str, int], started: float) -> tuple[int, str, bytes]:
        feed = path.removeprefix("/").removesuffix(".xml")
        if feed in self.entries:
            with self._lock:
                held = self._armed == feed
                if held:
                    self._armed, self.held_from, self.held_at = None, client, started
            if held:
                self.holding.set()
                self._gate.wait(HANG)
                if self.held_status != HTTPStatus.OK:
                    return self.held_status, "text/plain", b"broken"
            return HTTPStatus.OK, "application/rss+xml", self._feed(feed)
        slug = path.removeprefix("/a/").removesuffix(".html")
        with self._lock:
            text = self.texts.get(slug)
        if text is None:
            return HTTPStatus.NOT_FOUND, "text/plain", b"no such page"
        title = f"{self.name} report {slug}"
        page = f"<html lang='en'><head><title>{title}</title></head><body><article><h1>"
        page += f"{title}</h1><p>{text}</p></article></body></html>"
        return HTTPStatus.OK, "text/html; charset=utf-8", page.encode()

    def _feed(self, feed: str) -> bytes:
        with self._lock:
            items = "".join(
                f"<item><title>{self.name} report {slug}</title>"
                f"<link>{self.url}/a/{slug}.html</link><guid>{slug}</guid>"
                "<pubDate>Sat, 28 Nov 2026 12:00:00 +0000</pubDate></item>"
                for slug in self.entries[feed]
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
                status, kind, body = site._answer(self.path, self.client_address[:2], started)
                with site._lock:
                    site.requests.append((self.path, started, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle(self) -> None:
                """A worker killed while its request was held has gone: nothing to answer."""
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self._gate.set()
        self.server.shutdown()
        self.server.server_close()


def cluster_config(
    folder: Path,
    url: str,
    sites: list[NewsSite],
    *,
    name: str = "config",
    interval: str = "2s",
    crawl: str = "{download_timeout: 60s}",
    more: str = "",
) -> Path:
    """A worker's config polling every feed of `sites` every `interval`, with no jitter."""
    listed = "\n".join(
        f"  - {{name: {source}, url: '{feed}', kind: feed}}"
        for site in sites
        for source, feed in site.sources().items()
    )
    path = folder / f"{name}.yaml"
    path.write_text(
        f"database: '{url}'\n{TIMING}\nschedule: {{interval: {interval}, jitter: 0}}\n"
        f"crawl: {crawl}\nsources:\n{listed}\n{more}",
        encoding="utf-8",
    )
    return path


class Worker:
    """A `newswatch run` worker whose log goes to a file (a pipe nobody reads would fill)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.process = start_daemon(config, stderr=self._log)

    @property
    def sender(self) -> str:
        """How the outbox names this worker in `claimed_by`."""
        return f"{socket.gethostname()}:{self.process.pid}"

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

    def holds_connection(self, client: tuple[str, int]) -> bool:
        """Whether this worker's process has the TCP connection whose local end is `client`."""
        inode = _socket_inode(client)
        folder = Path(f"/proc/{self.process.pid}/fd")
        return inode is not None and any(
            os.readlink(fd) == f"socket:[{inode}]" for fd in folder.iterdir() if fd.is_symlink()
        )


def _socket_inode(local: tuple[str, int]) -> str | None:
    """The inode of the IPv4 TCP socket bound to `local`, as the kernel lists it."""
    host, port = local
    wanted = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted:
            return fields[9]
    return None


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def article_count(url: str) -> int:
    rows = query(url, "SELECT count(*) FROM articles") if has_table(url, "articles") else [(0,)]
    return int(rows[0][0])


def has_table(url: str, table: str) -> bool:
    """Whether the first worker has made the schema yet."""
    return query(url, "SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]


def polled(url: str, source: str, column: str = "last_success_at") -> bool:
    """Whether a poll of `source` was committed (`last_polled_at`), or succeeded."""
    if not has_table(url, "sources"):
        return False
    rows = query(url, f"SELECT {column} FROM sources WHERE name = %s", (source,))
    return bool(rows and rows[0][0])


def polls_started(url: str, source: str) -> int:
    """The source's fencing token: one more for every poll that started."""
    return query(url, "SELECT fence FROM source_schedule WHERE name = %s", (source,))[0][0]


def overlapping(spans: list[tuple[float, float]]) -> bool:
    ordered = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))
