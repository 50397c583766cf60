"""The daemon's life: a stop request in the middle of a poll is a clean stop, not a crash."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crawler.daemon import START_RATE
from crawler.poller import IDLE_CONNECTION
from crawler.scheduling import first_poll_at
from tests.hostile_site import HostileSite, Reply
from tests.support import (
    newswatch,
    start_daemon,
    stop_daemon,
    value,
    wait_until,
    write_config,
)
from tests.test_polling import articles, rss


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
        daemon = start_daemon(config)
        try:
            assert arrived.wait(timeout=60)
        finally:
            code, took, log = stop_daemon(daemon)
        requested = site.paths()
    assert code == 0, log
    assert took < 10, log
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log
    assert len([p for p in requested if p.startswith("/feed")]) == 1, requested
    assert value(config, "SELECT count(*) FROM articles") == 1


def test_sigterm_during_a_slow_poll_stops_cleanly(tmp_path):
    """The listing answers quickly, its articles drip in slower than the stop grace: the stop
    cancels the poll, and that is no error (exit 0, no traceback, no ERROR line)."""
    paths = [f"/slow/{n}.html" for n in range(3)]
    routes = {"/feed.xml": Reply(rss(paths)), **articles(paths, delay=30.0)}
    with HostileSite(routes) as site:
        config = write_config(
            tmp_path, {"slow": f"{site.url}/feed.xml"}, crawl="{download_timeout: 60s}"
        )
        daemon = start_daemon(config)
        try:
            wait_until(lambda: "/feed.xml" in site.paths() and site.in_flight, timeout=60)
        finally:
            code, took, log = stop_daemon(daemon)
    assert code == 0, log
    assert took < 10, log
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log
    assert "daemon stopped" in log
    assert "stopping 1 unfinished poll(s)" in log


def news_sitemap(paths: list[str]) -> bytes:
    urls = "".join(
        f"<url><loc>{{BASE}}{p}</loc><news:news><news:publication><news:name>N</news:name>"
        "<news:language>fr</news:language></news:publication>"
        "<news:publication_date>2026-11-28T10:00:00Z</news:publication_date>"
        f"<news:title>{p}</news:title></news:news></url>"
        for p in paths
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'"
        " xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>"
        f"{urls}</urlset>"
    ).encode()


def test_add_looks_past_a_forbidden_home_page(tmp_path):
    """A bot-protected home page answers 403: robots.txt still names the news sitemap and
    /feed.xml still exists; `add` finds both and says what the home page answered."""
    paths = ["/a/1.html", "/a/2.html"]
    routes = {
        "/": Reply(b"<html>denied</html>", status=403, headers={"Content-Type": "text/html"}),
        "/robots.txt": Reply(b"User-agent: *\nSitemap: {BASE}/news/sitemap.xml\n"),
        "/news/sitemap.xml": Reply(news_sitemap(paths)),
        "/feed.xml": Reply(rss(paths)),
    }
    with HostileSite(routes) as site:
        result = newswatch("add", "--config", str(tmp_path / "none.yaml"), f"{site.url}/")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"{site.url}/: answered HTTP 403; 2 listing(s) found"), out
    assert f"{site.url}/news/sitemap.xml  (robots.txt Sitemap:)" in out
    assert f"{site.url}/feed.xml  (common path)" in out
    assert f'url: "{site.url}/news/sitemap.xml"' in out


def test_add_skips_leads_that_are_no_urls(tmp_path):
    """A home page and robots.txt naming `http://[::1/…` (a malformed host): those leads are
    skipped, the feed at the common path is still found."""
    home = (
        b"<html><head><link rel='alternate' type='application/rss+xml' href='http://[::1/rss'>"
        b"</head><body>home</body></html>"
    )
    routes = {
        "/": Reply(home, headers={"Content-Type": "text/html"}),
        "/robots.txt": Reply(b"User-agent: *\nSitemap: http://[::1/sitemap.xml\n"),
        "/feed.xml": Reply(rss(["/a/1.html"])),
    }
    with HostileSite(routes) as site:
        result = newswatch("add", "--config", str(tmp_path / "none.yaml"), f"{site.url}/")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{site.url}/feed.xml  (common path)" in result.stdout


def test_match_on_a_malformed_url_says_so(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("concepts: {m: {en: [Morocco]}}\nwatchlists: [{name: w, rule: m}]\n")
    result = newswatch("match", "--config", str(config), "http://[::1/x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "http://[::1/x" in result.stderr


def test_add_on_a_dead_site_says_what_the_url_answered(tmp_path):
    """Nothing anywhere (every path 404, robots.txt a 500 with junk): a clear answer, exit 1."""
    routes = {"/robots.txt": Reply(b"Sitemap: \x00\xff<<<", status=500)}
    with HostileSite(routes) as site:
        result = newswatch("add", "--config", str(tmp_path / "none.yaml"), f"{site.url}/home")
        requested = site.paths()
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        f"newswatch: {site.url}/home: answered HTTP 404;"
        " no feed, sitemap or article links found on the site either"
    )
    assert "Traceback" not in result.stderr
    assert "/feed.xml" in requested and "/sitemap.xml" in requested


def test_a_poll_ends_with_its_last_answer_while_other_polls_run(tmp_path):
    """Polls share one crawl. A feed listing a 3,000-character URL (Scrapy drops it unasked)
    and a page: its poll is over once the page is stored, while another source's article is
    still on the wire, not when the crawl falls idle."""
    long_path = "/a/" + "x" * 3000 + ".html"
    routes = {
        "/hostile.xml": Reply(rss([long_path, "/a/ok.html"])),
        "/busy.xml": Reply(rss(["/b/slow.html"])),
        **articles(["/a/ok.html", long_path]),
        **articles(["/b/slow.html"], delay=30.0),
    }
    with HostileSite(routes) as site:
        sources = {"busy": f"{site.url}/busy.xml", "hostile": f"{site.url}/hostile.xml"}
        config = write_config(tmp_path, sources, crawl="{download_timeout: 60s}")
        daemon = start_daemon(config)
        lines: list[str] = []
        try:
            assert daemon.stderr is not None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = daemon.stderr.readline()
                lines.append(line)
                if "source=hostile" in line and "entries" in line:
                    break
        finally:
            code, _, rest = stop_daemon(daemon)
        requested = site.paths()
    log = "".join(lines) + rest
    assert "source=hostile url=" in log and "2 entries, 1 fetched, 1 new article(s)" in log, log
    assert "/b/slow.html" not in requested
    assert long_path not in requested
    assert code == 0, log


class KeepAliveSite:
    """An HTTP/1.1 server that keeps connections open as long as the client does, and counts
    the connections open at any moment."""

    def __init__(self, body: bytes) -> None:
        self.open = 0
        self.requests = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                site.open += 1

            def finish(self) -> None:
                site.open -= 1
                super().finish()

            def do_GET(self) -> None:
                site.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_daemon_holds_no_connection_open_between_polls(tmp_path):
    """The crawl lives as long as the daemon: a site that keeps connections alive must not get
    one held open by each source for minutes between polls."""
    site = KeepAliveSite(rss([]).replace(b"{BASE}", b""))
    try:
        config = write_config(tmp_path, {"kept": f"{site.url}/feed.xml"})
        daemon = start_daemon(config)
        try:
            wait_until(lambda: site.requests >= 2, timeout=60)
            wait_until(lambda: site.open == 0, timeout=IDLE_CONNECTION + 5)
        finally:
            code, _, log = stop_daemon(daemon)
    finally:
        site.close()
    assert code == 0, log


def test_many_sources_start_spread_out_a_few_at_once():
    """2,000 sources: first polls spread over 100 s (20 a second), evenly enough that no second
    gets a burst, each at the same point at every start; 3 sources all start within 0.15 s."""
    many = [f"s{n}" for n in range(2000)]
    start = datetime.now(UTC)
    offsets = [
        (first_poll_at(s, len(many) / START_RATE, start) - start).total_seconds() for s in many
    ]
    assert min(offsets) >= 0 and max(offsets) <= 100.5
    per_second = Counter(int(o) for o in offsets)
    assert len(per_second) >= 95 and max(per_second.values()) <= 3 * 20
    later = datetime.now(UTC)
    again = (first_poll_at(many[7], 100.0, later) - later).total_seconds()
    assert abs(again - offsets[7]) < 1.0
    few = [(first_poll_at(s, 3 / START_RATE, start) - start).total_seconds() for s in many[:3]]
    assert max(few) < 0.5


def test_a_big_poll_on_a_slow_site_does_not_hold_up_other_polls(tmp_path):
    """40 new articles on a slow site (one request at a time, 5 s each) and, a moment later, a
    small poll of another site: as when each poll was its own crawl, the small one is done
    before the big one's first page, not once the big one frees a download slot."""
    big = [f"/big/{n}.html" for n in range(40)]
    small = ["/small/1.html", "/small/2.html"]
    with (
        HostileSite({"/big.xml": Reply(rss(big)), **articles(big, delay=5.0)}) as slow,
        HostileSite({"/small.xml": Reply(rss(small), delay=0.5), **articles(small)}) as other,
    ):
        sources = {"big": f"{slow.url}/big.xml", "small": f"{other.url}/small.xml"}
        config = write_config(
            tmp_path, sources, crawl="{per_domain_concurrency: 1, max_concurrent_polls: 2}"
        )
        daemon = start_daemon(config)
        try:
            wait_until(lambda: set(small) <= set(other.paths()), timeout=60)
            served = [p for p in slow.paths() if p.startswith("/big/")]
        finally:
            stop_daemon(daemon)
    assert served == [], served
