"""A source URL may carry an API key (`?apikey=${KEY}`) or a password (`user:pass@`): polls use
it, but logs, the database and `newswatch sources` show it redacted."""

from __future__ import annotations

import sqlite3

from crawler.urls import redact
from tests.hostile_site import HostileSite, Reply
from tests.support import newswatch

KEY = "k3y-from-the-environment-42"
PASSWORD = "pa55-w0rd-in-the-url"
ARTICLE = (
    "<html><head><title>Extradition</title></head><body><article><h1>Extradition</h1>"
    + "<p>The court in Rabat approved the extradition of a French national to Paris.</p>" * 5
    + "</article></body></html>"
).encode()


def test_secrets_in_source_urls_are_never_shown(tmp_path):
    routes = {
        "/feed.xml": Reply(
            b"<rss version='2.0'><channel><title>t</title><item><title>Extradition</title>"
            b"<link>{BASE}/a.html</link></item></channel></rss>",
            headers={"Content-Type": "application/rss+xml"},
        ),
        "/a.html": Reply(ARTICLE, headers={"Content-Type": "text/html"}),
    }
    with HostileSite(routes) as site:
        private = site.url.replace("http://", f"http://reader:{PASSWORD}@")
        config = tmp_path / "config.yaml"
        config.write_text(
            "database: news.db\ncrawl: {download_timeout: 3s}\nschedule: {jitter: 0}\n"
            "sources:\n"
            f"  - {{name: keyed, url: '{site.url}/feed.xml?apikey=${{NW_KEY}}', kind: feed}}\n"
            f"  - {{name: gone, url: '{private}/gone.xml?q=${{NW_KEY}}', kind: feed}}\n",
            encoding="utf-8",
        )
        env = {"NW_KEY": KEY}
        run = newswatch("run", "--once", "--config", str(config), env=env)
        listing = newswatch("sources", "--config", str(config), env=env)
        listing_json = newswatch("sources", "--json", "--config", str(config), env=env)
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(tmp_path / "news.db") as conn:
        stored = [str(row) for row in conn.execute("SELECT * FROM sources")]
        articles = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert articles == 1
    shown = [run.stderr, listing.stdout, listing_json.stdout, *stored]
    for text in shown:
        for line in text.splitlines():
            assert KEY not in line and PASSWORD not in line, line
    assert "apikey=REDACTED" in run.stderr
    assert "reader:REDACTED@" in listing.stdout + listing_json.stdout + "".join(stored)


def test_redact_keeps_ordinary_urls_and_hides_secret_looking_values():
    assert redact("https://site.example/feed?lang=fr&page=2") == (
        "https://site.example/feed?lang=fr&page=2"
    )
    assert redact("https://site.example/feed?access_token=abc&lang=fr") == (
        "https://site.example/feed?access_token=REDACTED&lang=fr"
    )
    assert redact("https://TOKEN42@site.example/x/TOKEN42/feed", {"TOKEN42"}) == (
        "https://REDACTED@site.example/x/REDACTED/feed"
    )


def test_library_log_lines_quoting_a_source_url_hide_its_secret(tmp_path):
    """Scrapy logs a callback that raised with its request's full URL ("Spider error processing
    <GET …>"): here a table dropped under the daemon."""
    routes = {
        "/feed.xml": Reply(
            b"<rss version='2.0'><channel><title>t</title><item><title>Extradition</title>"
            b"<link>{BASE}/a.html</link></item></channel></rss>",
            headers={"Content-Type": "application/rss+xml"},
        )
    }
    with HostileSite(routes) as site:
        config = tmp_path / "config.yaml"
        config.write_text(
            "database: news.db\ncrawl: {download_timeout: 3s}\nschedule: {jitter: 0}\n"
            f"sources:\n  - {{name: keyed, url: '{site.url}/feed.xml?apikey=${{NW_KEY}}'}}\n",
            encoding="utf-8",
        )
        newswatch("run", "--once", "--config", str(config), env={"NW_KEY": KEY})
        with sqlite3.connect(tmp_path / "news.db") as conn:
            conn.execute("UPDATE sources SET etag = NULL, listing_hash = NULL")
            conn.execute("DROP TABLE seen_urls")
        run = newswatch("run", "--once", "--config", str(config), env={"NW_KEY": KEY})

    assert "Spider error processing" in run.stderr, run.stderr
    assert KEY not in run.stderr
