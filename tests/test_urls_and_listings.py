"""Which URLs count as the same article, and what each kind of listing yields."""

from __future__ import annotations

import pytest

from alerts.times import timestamp
from crawler import store
from crawler.entries import ListingError
from crawler.listings import detect_kind, parse_listing
from crawler.urls import canonical_url
from tests.support import database_at, schema_version_with


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://News.Example.ORG:443/a?utm_source=rss&b=2&a=1#top",
            "https://news.example.org/a?a=1&b=2",
        ),
        ("http://example.org:80/x?fbclid=abc&gclid=1&mc_cid=2", "http://example.org/x"),
        ("http://example.org:8080/x", "http://example.org:8080/x"),
        ("https://example.org", "https://example.org/"),
        (
            "https://example.org/news/2026/story-1/?utm_campaign=x",
            "https://example.org/news/2026/story-1",
        ),
    ],
)
def test_canonical_url(url, canonical):
    assert canonical_url(url) == canonical


def test_urls_stored_under_an_older_canonical_form_stay_known(tmp_path):
    """A database written before trailing slashes were dropped: opening it migrates, and the
    article its feed links again is recognised instead of fetched and stored twice."""
    path = tmp_path / "news.db"
    # the release that brought stories and versions still kept trailing slashes
    db = database_at(path, schema_version_with(lambda db: "article_versions" in db.table_names()))
    old_form = "https://example.org/news/2026/story-1/"
    with db.atomic():
        article_id = store.insert_article(
            db,
            {
                "url": old_form,
                "canonical_url": old_form,
                "source": "example",
                "title": "Story",
                "text": "Text.",
                "fetched_at": timestamp(),
                "content_hash": "h",
                "story_id": "st-1",
            },
        )
        store.remember_urls(db, article_id, {old_form})
    db.close()

    db = store.open_db(path)
    known = store.known_article(db, canonical_url(old_form + "?utm_source=rss"))
    db.close()
    assert known is not None and known["id"] == article_id


def test_same_article_with_and_without_tracking_is_one_url():
    assert canonical_url("https://h.ma/n/1.html?utm_medium=feed") == canonical_url(
        "https://h.ma/n/1.html"
    )


NEWS_SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://h.ma/a/1.html</loc>
    <news:news><news:publication><news:name>H</news:name><news:language>ar</news:language>
    </news:publication><news:publication_date>2026-11-28T10:00:00+00:00</news:publication_date>
    <news:title>المغرب وفرنسا</news:title></news:news></url>
  <url><loc>https://h.ma/a/2.html</loc><lastmod>2026-11-27</lastmod></url>
</urlset>""".encode()


def test_news_sitemap_keeps_titles_and_dates():
    listing = parse_listing(None, NEWS_SITEMAP, "https://h.ma/sitemap.xml")
    assert listing.kind == "sitemap"
    first, second = listing.entries
    assert (first.url, first.title, first.published_at) == (
        "https://h.ma/a/1.html",
        "المغرب وفرنسا",
        "2026-11-28T10:00:00Z",
    )
    assert second.published_at == "2026-11-27T00:00:00Z"


def test_sitemap_index_lists_newest_children_first():
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://h.ma/s-old.xml</loc><lastmod>2026-01-01</lastmod></sitemap>
      <sitemap><loc>https://h.ma/s-new.xml</loc><lastmod>2026-11-28</lastmod></sitemap>
    </sitemapindex>"""
    listing = parse_listing("sitemap", index, "https://h.ma/index.xml")
    assert listing.child_sitemaps == ["https://h.ma/s-new.xml", "https://h.ma/s-old.xml"]


SECTION = b"""<html><body><nav><a href="/tag/maroc">Maroc</a><a href="/category/monde/">Monde</a>
<a href="/author/x">X</a><a href="https://other.org/2026/11/28/story">elsewhere</a></nav>
<main><a href="/2026/11/28/le-maroc-extrade-un-suspect">Le Maroc extrade un suspect</a>
<a href="/2026/11/28/le-maroc-extrade-un-suspect#comments">commentaires</a>
<a href="/maghreb/la-france-et-le-maroc-signent.html">La France et le Maroc signent</a></main>
</body></html>"""


def test_section_page_follows_article_links_not_navigation():
    listing = parse_listing("page", SECTION, "https://news.example.org/maghreb/")
    assert [e.url for e in listing.entries] == [
        "https://news.example.org/2026/11/28/le-maroc-extrade-un-suspect",
        "https://news.example.org/maghreb/la-france-et-le-maroc-signent.html",
    ]
    assert listing.entries[0].title == "Le Maroc extrade un suspect"


def test_section_page_follow_regexes_decide_when_given():
    listing = parse_listing(
        "page", SECTION, "https://news.example.org/", follow=[r"/\d{4}/\d{2}/\d{2}/"]
    )
    assert [e.url for e in listing.entries] == [
        "https://news.example.org/2026/11/28/le-maroc-extrade-un-suspect"
    ]


def test_kind_is_detected_from_the_body():
    assert detect_kind(b"<?xml version='1.0'?><rss version='2.0'>") == "feed"
    assert detect_kind(b"<feed xmlns='http://www.w3.org/2005/Atom'>") == "feed"
    assert detect_kind(NEWS_SITEMAP) == "sitemap"
    assert detect_kind(SECTION) == "page"


def test_a_broken_feed_is_an_error_not_an_empty_poll():
    with pytest.raises(ListingError, match="not a readable feed"):
        parse_listing("feed", b"<html><body>502 Bad Gateway</body></html>", "https://h.ma/feed")


def test_sitemap_declaring_entities_is_refused():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">
    <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://h.ma/&c;</loc>
    </url></urlset>"""
    with pytest.raises(ListingError, match="declares XML entities"):
        parse_listing("sitemap", bomb, "https://h.ma/s.xml")
