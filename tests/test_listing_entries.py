"""Which listed entries a poll fetches: each entry read on its own, dates compared as instants,
every article fetched once however many listings carry it, failed pages backed off, and huge
listings capped and parsed off the loop. Real `newswatch run --once` against loopback sites."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from crawler import refetch, store
from crawler.instants import parse_instant
from crawler.listings import parse_listing
from tests.hostile_site import HostileSite, Reply
from tests.support import (
    change,
    database_at,
    newswatch,
    retries_due,
    rows,
    run_once,
    schema_version_with,
    write_config,
)

PAGE = (
    "<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
    "<p>The court in Rabat approved the extradition of a French national wanted in Paris for "
    "fraud, the prosecutor said on Saturday after a hearing that lasted several hours.</p>"
    "<p>{title} was reported by several outlets on both sides of the Mediterranean.</p>"
    "</article></body></html>"
)
HTML = {"Content-Type": "text/html; charset=utf-8"}
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def pages(paths: list[str]) -> dict[str, Reply]:
    return {p: Reply(PAGE.format(title=f"Story {p}").encode(), headers=HTML) for p in paths}


def requests_per_path(site: HostileSite) -> Counter[str]:
    return Counter(p for p in site.paths() if p != "/robots.txt")


def changing(render) -> callable:
    """A listing whose body differs at every request (a build date, a counter), as real feeds
    do: the body hash never short-cuts the poll, every entry is looked at every time."""
    counter = itertools.count()
    return lambda: render(next(counter))


# -- each entry on its own --------------------------------------------------------------------

HUGE_URL = "/a/" + "x" * 50_000


def bad_feed(_: int) -> Reply:
    items = [
        ("good one", "{BASE}/a/1.html", "Sat, 28 Nov 2026 10:00:00 +0300"),
        ("broken host", "http://[::1/x", "Sat, 28 Nov 2026 10:00:00 +0300"),
        ("zero date", "{BASE}/a/zero.html", "0000-00-00T00:00:00Z"),
        ("port", "http://127.0.0.1:99999/a/port.html", "Sat, 28 Nov 2026 10:00:00 +0300"),
        ("huge", "{BASE}" + HUGE_URL, "Sat, 28 Nov 2026 10:00:00 +0300"),
        ("good two", "{BASE}/a/2.html", "garbage"),
    ]
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><pubDate>{d}</pubDate>"
        f"<description>summary of {t}</description></item>"
        for t, link, d in items
    )
    return Reply(f"<rss version='2.0'><channel><title>t</title>{body}</channel></rss>".encode())


def test_bad_entries_skip_themselves_and_the_good_ones_are_stored(tmp_path):
    good = ["/a/1.html", "/a/zero.html", "/a/2.html"]
    with HostileSite({"/feed.xml": changing(bad_feed), **pages(good)}) as site:
        config = write_config(tmp_path, {"mixed": f"{site.url}/feed.xml"})
        log = run_once(config).stderr
        fetched = requests_per_path(site)
    assert all(fetched[p] == 1 for p in good), fetched
    stored = {r["url"].rsplit("/", 2)[-1]: r for r in rows(config, "SELECT * FROM articles")}
    assert set(stored) == {"1.html", "zero.html", "2.html"}
    assert all(r["extraction"] == "page" for r in stored.values())
    assert stored["zero.html"]["published_at"] is None
    lines = log.splitlines()
    for position, reason in [(2, "Invalid IPv6 URL"), (4, "Port out of range"), (5, "50")]:
        assert any(
            "source=mixed" in line and f"entry {position} " in line and reason in line
            for line in lines
        ), log
    assert all(len(line) < 2_000 for line in lines)
    health = rows(config, "SELECT * FROM sources")[0]
    assert health["consecutive_failures"] == 0 and health["last_error"] is None


def test_an_unexpected_error_in_a_poll_fails_it_and_keeps_no_validators(tmp_path):
    """A database damaged under the daemon (a table gone): the poll fails visibly, its ETag is
    not kept, so the listing is read again once the damage is repaired."""
    feed = (
        b"<rss version='2.0'><channel><title>t</title><item><title>one</title>"
        b"<link>{BASE}/a/1.html</link></item></channel></rss>"
    )
    routes = {"/feed.xml": Reply(feed, headers={"ETag": '"v1"'}), **pages(["/a/1.html"])}
    with HostileSite(routes) as site:
        config = write_config(tmp_path, {"damaged": f"{site.url}/feed.xml"})
        newswatch("check", "--config", str(config))
        run_once(config)
        change(config, "UPDATE sources SET etag = NULL, listing_hash = NULL")
        change(config, "DROP TABLE seen_urls")
        result = newswatch("run", "--once", "--config", str(config))
    assert result.returncode == 0
    health = rows(config, "SELECT * FROM sources")[0]
    assert health["consecutive_failures"] == 1
    assert "unexpected error" in health["last_error"] and "seen_urls" in health["last_error"]
    assert health["etag"] is None and health["listing_hash"] is None
    assert "poll failed" in result.stderr and "source=damaged" in result.stderr


def test_listing_dates_become_one_form_of_utc_instant():
    same = [
        "Sat, 28 Nov 2026 13:00:00 +0300",
        "2026-11-28T13:00:00+03:00",
        "2026-11-28T10:00:00Z",
        "2026-11-28T10:00:00.250Z",
        "2026-11-28T05:00:00-05:00",
    ]
    assert {parse_instant(stamp) for stamp in same} == {"2026-11-28T10:00:00Z"}
    assert parse_instant("2026-11-28") == "2026-11-28T00:00:00Z"
    for junk in ["0000-00-00T00:00:00Z", "0000-00-00", "garbage", "", "1" * 10_000, "0001-01-01"]:
        assert parse_instant(junk) is None


def test_dates_stored_in_the_old_forms_become_instants_when_the_database_is_opened(tmp_path):
    version = schema_version_with(lambda db: "fetch_failures" in db.table_names()) - 1
    path = tmp_path / "news.db"
    db = database_at(path, version)
    stamps = ["2026-11-28T13:00:00+03:00", "2026-11-28", "0000-00-00T00:00:00Z", None]
    with db.atomic():
        for n, stamp in enumerate(stamps):
            store.insert_article(
                db,
                {
                    "url": f"https://h.ma/{n}",
                    "canonical_url": f"https://h.ma/{n}",
                    "source": "s",
                    "title": "t",
                    "text": "x",
                    "fetched_at": "2026-11-29T08:00:00Z",
                    "content_hash": str(n),
                    "story_id": str(n),
                    "source_updated_at": stamp,
                },
            )
    db.close()

    db = store.open_db(path)
    migrated = [dict(r) for r in db.query("SELECT * FROM articles ORDER BY id")]
    db.close()
    assert [r["source_updated_at"] for r in migrated] == [
        "2026-11-28T10:00:00Z",
        "2026-11-28T00:00:00Z",
        None,
        None,
    ]
    assert {r["last_fetched_at"] for r in migrated} == {"2026-11-29T08:00:00Z"}


def test_a_listing_over_the_cap_keeps_its_newest_entries():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    items = "".join(
        f"<url><loc>https://h.ma/a/{n}</loc>"
        f"<lastmod>{(start + timedelta(hours=n * 7 % 100)).isoformat()}</lastmod></url>"
        for n in range(100)
    )
    body = f"<urlset xmlns='{SITEMAP_NS}'>{items}</urlset>".encode()
    listing = parse_listing("sitemap", body, "https://h.ma/s.xml", max_entries=10)
    newest = sorted((n * 7 % 100, n) for n in range(100))[-10:]
    assert {e.url for e in listing.entries} == {f"https://h.ma/a/{n}" for _, n in newest}
    assert listing.listed == 100


def test_an_rss_publication_date_is_never_taken_for_a_modification():
    body = (
        b"<rss version='2.0'><channel><title>t</title><item><title>one</title>"
        b"<link>https://h.ma/a/1</link><pubDate>Sat, 28 Nov 2026 13:00:00 +0300</pubDate>"
        b"</item></channel></rss>"
    )
    [entry] = parse_listing("feed", body, "https://h.ma/rss.xml").entries
    assert entry.published_at == "2026-11-28T10:00:00Z"
    assert entry.updated is None


# -- each article fetched once --------------------------------------------------------------

ARTICLES = ["/news/1.html", "/news/2.html", "/news/3.html"]
# polls in a row with nothing due in between: the first fetches, the others must not
POLLS = 3
PUBLISHED = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
OFFSET = timedelta(hours=3)


def atom(updated: dict[str, datetime]):
    def render(n: int) -> Reply:
        entries = "".join(
            f"<entry><title>Story {p}</title><link href='{{BASE}}{p}'/><id>{{BASE}}{p}</id>"
            f"<published>{(PUBLISHED + OFFSET).strftime('%Y-%m-%dT%H:%M:%S')}+03:00</published>"
            f"<updated>{(updated[p] + OFFSET).strftime('%Y-%m-%dT%H:%M:%S')}+03:00</updated>"
            f"<summary>summary {p}</summary></entry>"
            for p in ARTICLES
        )
        return Reply(
            "<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title><id>x</id>"
            f"<updated>2026-11-28T13:00:{n % 60:02d}+03:00</updated>{entries}</feed>".encode()
        )

    return render


def rss(n: int) -> Reply:
    items = "".join(
        f"<item><title>Story {p}</title><link>{{BASE}}{p}</link>"
        f"<pubDate>{(PUBLISHED + OFFSET).strftime('%a, %d %b %Y %H:%M:%S')} +0300</pubDate>"
        f"<description>summary {p}</description></item>"
        for p in ARTICLES
    )
    return Reply(
        f"<rss version='2.0'><channel><title>t</title><lastBuildDate>{n}</lastBuildDate>"
        f"{items}</channel></rss>".encode()
    )


def news_sitemap(updated: dict[str, datetime]):
    def render(n: int) -> Reply:
        urls = "".join(
            f"<url><loc>{{BASE}}{p}</loc><lastmod>{updated[p].strftime('%Y-%m-%dT%H:%M:%SZ')}"
            "</lastmod><news:news><news:title>Story</news:title><news:publication_date>"
            f"{PUBLISHED.strftime('%Y-%m-%dT%H:%M:%SZ')}</news:publication_date></news:news></url>"
            for p in ARTICLES
        )
        return Reply(
            f"<urlset xmlns='{SITEMAP_NS}' xmlns:news='http://www.google.com/schemas/"
            f"sitemap-news/0.9'>{urls}<!-- {n} --></urlset>".encode()
        )

    return render


@pytest.mark.timeout(300)
def test_an_article_in_three_listings_is_fetched_once_then_once_per_change(tmp_path):
    updated = dict.fromkeys(ARTICLES, PUBLISHED + timedelta(minutes=30))
    routes = {
        "/atom.xml": changing(atom(updated)),
        "/rss.xml": changing(rss),
        "/news-sitemap.xml": changing(news_sitemap(updated)),
        **pages(ARTICLES),
    }
    crawl = "{max_article_age: 36500d}"
    with HostileSite(routes) as site:
        config = write_config(
            tmp_path,
            {
                "atom": f"{site.url}/atom.xml",
                "rss": f"{site.url}/rss.xml",
                "sitemap": f"{site.url}/news-sitemap.xml",
            },
            crawl=crawl,
        )
        for _ in range(POLLS):
            run_once(config)
        first = requests_per_path(site)
        updated["/news/2.html"] = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        logs = [run_once(config).stderr for _ in range(POLLS)]
        second = requests_per_path(site)
    assert first["/atom.xml"] == first["/rss.xml"] == first["/news-sitemap.xml"] == POLLS
    assert {p: first[p] for p in ARTICLES} == dict.fromkeys(ARTICLES, 1)
    assert {p: second[p] - first[p] for p in ARTICLES} == {
        "/news/1.html": 0,
        "/news/2.html": 1,
        "/news/3.html": 0,
    }
    refetches = [line for log in logs for line in log.splitlines() if "fetching again" in line]
    assert len(refetches) == 1 and "/news/2.html" in refetches[0]
    when = updated["/news/2.html"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert when in refetches[0] and "last fetched" in refetches[0]
    # An article keeps the "last changed" date of the listing whose poll fetched it: none from
    # the RSS feed, 10:30 from the Atom feed or the sitemap (the three are polled at once, so
    # any may be first). A date older than the fetch is not kept: it could never bring a fetch.
    fetched_for = {"atom": "2026-11-28T10:30:00Z", "rss": None, "sitemap": "2026-11-28T10:30:00Z"}
    stored = rows(config, "SELECT url, source, source_updated_at FROM articles ORDER BY url")
    assert [r["source_updated_at"] for r in stored] == [
        fetched_for[stored[0]["source"]],
        when,
        fetched_for[stored[2]["source"]],
    ]


def test_a_listing_date_older_than_the_last_fetch_never_brings_a_fetch():
    """What the three listings above rely on, in any order of polls: a "last changed" date
    counts only when it is later than the last fetch and than the date already kept, so a page
    stored from a listing without dates is not fetched again for an older date, and a date far
    in the future (a hostile or broken CMS) brings one fetch, not one at every poll."""
    fetched = "2026-11-30T09:00:00Z"
    undated = {"source_updated_at": None, "last_fetched_at": fetched, "pruned_at": None}
    now = "2026-11-30T10:00:00Z"

    assert refetch.why_fetch("2026-11-28T10:30:00Z", undated, None, now) is None
    assert refetch.why_fetch(None, undated, None, now) is None
    assert refetch.why_fetch("2026-11-30T09:30:00Z", undated, None, now) == (
        f"listed as changed at 2026-11-30T09:30:00Z, after no date (last fetched {fetched})"
    )
    far = "9999-12-31T23:59:59Z"
    assert refetch.why_fetch(far, undated, None, now) is not None
    refetched = {**undated, "source_updated_at": far, "last_fetched_at": now}
    assert refetch.why_fetch(far, refetched, None, now) is None


# -- failed pages backed off ----------------------------------------------------------------

FAILING = {
    "/big.html": Reply(b"<p>" + b"x" * 65533, headers=HTML, stream=12 * 1024**2),
    "/gone.html": Reply(b"gone", status=404),
    "/slow.html": Reply(PAGE.format(title="slow").encode(), headers=HTML, delay=3),
    **{f"/hop/{n}": Reply(status=302, headers={"Location": f"/hop/{n + 1}"}) for n in range(8)},
    "/ok.html": Reply(PAGE.format(title="ok").encode(), headers=HTML),
    "/empty.html": Reply(b"<html><head></head><body></body></html>", headers=HTML),
}
LISTED = ["/big.html", "/gone.html", "/slow.html", "/hop/0", "/ok.html", "/empty.html"]


def plain_sitemap(lastmod: dict[str, str]):
    """No titles: an entry whose page fails has no stand-in, so nothing stored stops a refetch."""

    def render(n: int) -> Reply:
        urls = "".join(
            f"<url><loc>{{BASE}}{p}</loc><lastmod>{lastmod[p]}</lastmod></url>" for p in LISTED
        )
        return Reply(f"<urlset xmlns='{SITEMAP_NS}'>{urls}<!-- {n} --></urlset>".encode())

    return render


@pytest.mark.timeout(300)
def test_failed_pages_are_backed_off_within_the_documented_bounds(tmp_path):
    lastmod = dict.fromkeys(LISTED, "2026-11-28T10:00:00Z")
    routes = {"/sitemap.xml": changing(plain_sitemap(lastmod)), **FAILING}
    crawl = "{download_timeout: 1s, max_page_size: 1MB, max_article_age: 36500d}"
    with HostileSite(routes) as site:
        config = write_config(tmp_path, {"failing": f"{site.url}/sitemap.xml"}, crawl=crawl)
        logs = [run_once(config).stderr for _ in range(POLLS)]
        polled = requests_per_path(site)
        assert polled["/sitemap.xml"] == POLLS and polled["/ok.html"] == 1
        assert polled["/big.html"] == polled["/gone.html"] == polled["/empty.html"] == 1
        assert all(polled[f"/hop/{n}"] == 1 for n in range(6)), polled
        assert 1 <= polled["/slow.html"] <= 2  # one attempt (Scrapy retries a timeout once)
        failures = {
            r["url"].split("/", 3)[-1]: r for r in rows(config, "SELECT * FROM fetch_failures")
        }
        # time passes: every due retry of the slow page is taken (MAX_ATTEMPTS - 1 polls), and
        # no more (one poll after them)
        for _ in range(refetch.MAX_ATTEMPTS):
            retries_due(config)
            run_once(config)
        retried = requests_per_path(site)
        # the sitemap says the gone page changed after its failure: asked for once more
        lastmod["/gone.html"] = (datetime.now(UTC) + timedelta(minutes=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        run_once(config)
        run_once(config)
        changed = requests_per_path(site)
    assert {k: (f["permanent"], f["attempts"]) for k, f in failures.items()} == {
        "big.html": (1, 1),
        "empty.html": (1, 1),
        "gone.html": (1, 1),
        "hop/0": (1, 1),
        "slow.html": (0, 1),
    }
    assert "HTTP 404" in failures["gone.html"]["reason"]
    assert "timed out" in failures["slow.html"]["reason"]
    assert retried["/slow.html"] <= 2 * refetch.MAX_ATTEMPTS
    assert retried["/big.html"] == retried["/gone.html"] == 1
    assert changed["/gone.html"] == 2 and changed["/big.html"] == 1
    slow = rows(config, "SELECT * FROM fetch_failures WHERE url LIKE '%slow.html'")[0]
    assert slow["attempts"] == refetch.MAX_ATTEMPTS and slow["retry_at"] is None
    assert any("not fetched again unless a listing says it changed" in log for log in logs)


# -- huge listings --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_feed() -> bytes:
    items = "".join(
        f"<item><title>t{n}</title><link>{{BASE}}/a/{n}</link>"
        f"<pubDate>{(PUBLISHED + timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S')} GMT"
        "</pubDate></item>"
        for n in range(100_000)
    )
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()


@pytest.mark.timeout(600)
def test_a_100k_entry_feed_is_capped_and_not_read_again(tmp_path, huge_feed):
    routes = {"/huge.xml": Reply(huge_feed, headers={"ETag": '"huge-1"'})}
    crawl = "{max_page_size: 32MB, max_listing_entries: 20, max_new_articles_per_poll: 50}"
    with HostileSite(routes) as site:
        config = write_config(tmp_path, {"huge": f"{site.url}/huge.xml"}, crawl=crawl)
        first = newswatch("run", "--once", "--config", str(config), timeout=600)
        before = len(site.hits)
        second = run_once(config).stderr
        again = [p for p in site.paths()[before:] if p != "/robots.txt"]
        fetched = Counter(p for p in site.paths() if p.startswith("/a/"))
    assert first.returncode == 0, first.stderr
    assert "100000 entries, reading the newest 20" in first.stderr
    assert set(fetched) == {f"/a/{n}" for n in range(99_980, 100_000)}
    assert again == ["/huge.xml"] and "not modified" in second
