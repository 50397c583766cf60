"""A source URL may carry an API key (`?apikey=${KEY}`) or a password (`user:pass@`): polls use
it, but logs, the database and `newswatch sources` show it redacted."""

from __future__ import annotations

from crawler.urls import redact
from tests.hostile_site import HostileSite, Reply
from tests.support import change, newswatch, rows, value, write_config

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
        sources = {
            "keyed": {"url": f"{site.url}/feed.xml?apikey=${{NW_KEY}}", "kind": "feed"},
            "gone": {"url": f"{private}/gone.xml?q=${{NW_KEY}}", "kind": "feed"},
        }
        config = write_config(tmp_path, sources, crawl="{download_timeout: 3s}")
        env = {"NW_KEY": KEY}
        run = newswatch("run", "--once", "--config", str(config), env=env)
        listing = newswatch("sources", "--config", str(config), env=env)
        listing_json = newswatch("sources", "--json", "--config", str(config), env=env)
    assert run.returncode == 0, run.stderr
    stored = [str(row) for row in rows(config, "SELECT * FROM sources")]
    assert value(config, "SELECT count(*) FROM articles") == 1
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
        sources = {"keyed": f"{site.url}/feed.xml?apikey=${{NW_KEY}}"}
        config = write_config(tmp_path, sources, crawl="{download_timeout: 3s}")
        newswatch("run", "--once", "--config", str(config), env={"NW_KEY": KEY})
        change(config, "UPDATE sources SET etag = NULL, listing_hash = NULL")
        change(config, "DROP TABLE seen_urls")
        run = newswatch("run", "--once", "--config", str(config), env={"NW_KEY": KEY})

    assert "Spider error processing" in run.stderr, run.stderr
    assert KEY not in run.stderr
