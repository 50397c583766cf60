"""Polling cheaply and politely: unchanged listings cost one request, failing sources back off,
robots.txt Crawl-delay and per-site concurrency hold across sources, `add` finds listings,
`interval: auto` shares a request budget by publication rate."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.config import ConfigError, parse_config
from crawler.scheduling import auto_intervals, backoff_delay, publication_rate
from tests.hostile_site import HostileSite, Reply
from tests.support import change, newswatch, rows, run_once, write_config

PAGE = (
    "<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
    "<p>The court in Rabat approved the extradition of a French national wanted in Paris for "
    "fraud, the prosecutor said on Saturday after a hearing that lasted several hours.</p>"
    "</article></body></html>"
)
HTML = {"Content-Type": "text/html; charset=utf-8"}


def rss(paths: list[str]) -> bytes:
    items = "".join(
        f"<item><title>{p}</title><link>{{BASE}}{p}</link><description>d</description></item>"
        for p in paths
    )
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()


def articles(paths: list[str], delay: float = 0.0) -> dict[str, Reply]:
    return {p: Reply(PAGE.format(title=p).encode(), headers=HTML, delay=delay) for p in paths}


def source_row(config: Path, name: str) -> dict:
    [row] = rows(config, "SELECT * FROM sources WHERE name = ?", (name,))
    return row


def test_unchanged_listing_without_validators_costs_one_request(tmp_path):
    """No ETag, no Last-Modified: the body hash still tells an idle poll to stop."""
    paths = ["/a/1.html", "/a/2.html"]
    with HostileSite({"/feed.xml": Reply(rss(paths)), **articles(paths)}) as site:
        config = write_config(tmp_path, {"plain": f"{site.url}/feed.xml"})
        run_once(config)
        before = len(site.hits)
        log = run_once(config).stderr
        second = [p for p in site.paths()[before:] if p != "/robots.txt"]
    assert second == ["/feed.xml"]
    assert "source=plain" in log and "not modified" in log


def test_failing_source_backs_off_then_recovers(tmp_path):
    state = {"up": False}

    def feed() -> Reply:
        return Reply(rss([])) if state["up"] else Reply(b"down", status=500)

    with HostileSite({"/feed.xml": feed}) as site:
        config = write_config(tmp_path, {"flaky": f"{site.url}/feed.xml"})
        run_once(config)
        run_once(config)
        assert source_row(config, "flaky")["consecutive_failures"] == 2
        before = len(site.hits)
        log = run_once(config).stderr
        assert "/feed.xml" not in site.paths()[before:]
        assert "source=flaky" in log and "backing off" in log
        an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        change(config, "UPDATE sources SET last_polled_at = ?", (an_hour_ago,))
        state["up"] = True
        run_once(config)
    row = source_row(config, "flaky")
    assert row["consecutive_failures"] == 0 and row["last_error"] is None


def test_crawl_delay_and_per_site_concurrency_hold_across_sources(tmp_path):
    """Two sources on a site asking for Crawl-delay: 1, three on a slow site with
    per_domain_concurrency 1: each site sees the limits as if one crawler were polling it."""
    delayed = ["/d/1.html", "/d/2.html"]
    slow = [f"/s/{n}.html" for n in range(6)]
    polite = {
        "/robots.txt": Reply(b"User-agent: *\nCrawl-delay: 1\n"),
        "/one.xml": Reply(rss(delayed[:1])),
        "/two.xml": Reply(rss(delayed[1:])),
        **articles(delayed),
    }
    busy = {f"/f{n}.xml": Reply(rss(slow[2 * n : 2 * n + 2])) for n in range(3)}
    with HostileSite(polite) as site, HostileSite({**busy, **articles(slow, 0.3)}) as other:
        sources = {"one": f"{site.url}/one.xml", "two": f"{site.url}/two.xml"}
        sources |= {f"busy{n}": f"{other.url}/f{n}.xml" for n in range(3)}
        config = write_config(tmp_path, sources, crawl="{per_domain_concurrency: 1}")
        log = run_once(config).stderr
    starts = sorted(hit.at for hit in site.hits if hit.path != "/robots.txt")
    assert len(starts) == 4
    # spaced by the 1 s Crawl-delay (arrival times jitter a little on a loaded machine)
    assert all(b - a >= 0.8 for a, b in itertools.pairwise(starts))
    assert "robots.txt asks for 1.0 s between requests; honoured" in log
    assert max(hit.in_flight for hit in other.hits) == 1
    assert {hit.path for hit in other.hits} >= set(slow)


def test_add_finds_the_news_sitemap_and_prints_a_source_entry(tmp_path, demo_site):
    base = demo_site.base_url
    result = newswatch("add", "--config", str(tmp_path / "none.yaml"), f"{base}/")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{base}/feed.xml" in out and "<link rel=alternate>" in out
    assert "news-sitemap" in out and "robots.txt Sitemap:" in out
    entry = out.split("# paste under `sources:` in config.yaml\n", 1)[1]
    assert f'url: "{base}/sitemap-news.xml"' in entry and "kind: sitemap" in entry
    config = tmp_path / "config.yaml"
    config.write_text("sources:\n" + entry, encoding="utf-8")
    assert newswatch("check", "--config", str(config)).returncode == 0


def test_auto_intervals_poll_busy_sources_more_within_the_same_budget():
    now = datetime(2026, 11, 29, tzinfo=UTC)
    busy = [now - timedelta(minutes=10 * n) for n in range(1000)]
    quiet = [now - timedelta(days=2)]
    rates = {
        "busy": publication_rate(busy, now),
        "quiet": publication_rate(quiet, now),
        "silent": publication_rate([], now),
    }
    intervals = auto_intervals(rates, 600.0, dict.fromkeys(rates, (60.0, 86400.0)))
    assert intervals["busy"] < 600 < intervals["quiet"] < intervals["silent"]
    assert sum(1 / t for t in intervals.values()) == pytest.approx(3 / 600)


def test_backoff_doubles_from_the_second_failure_and_is_capped():
    assert [backoff_delay(60, n, 600) for n in range(6)] == [0, 0, 120, 240, 480, 600]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{name: a, url: 'http://x.org/', interval: auto, min_interval: 1m}", None),
        (
            "{name: a, url: 'http://x.org/', interval: 5m, min_interval: 1m}",
            "go with interval: auto",
        ),
        ("{name: a, url: 'http://x.org/', interval: sometimes}", "sources[0].interval"),
    ],
)
def test_interval_auto_config(tmp_path, source, problem):
    text = f"sources: [{source}]\n"
    if problem is None:
        assert parse_config(text, "config.yaml", tmp_path).sources[0].interval == "auto"
        return
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "config.yaml", tmp_path)
    assert problem in raised.value.report()
