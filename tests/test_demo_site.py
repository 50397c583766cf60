"""The bundled offline news site and the loopback server that serves it to `newswatch demo`."""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import html as lxml_html

from crawler.demo.site import DemoSite, RequestRecord, xml_content_type
from tests.support import DEMO_SITE, ROOT

SEED_TXT = ROOT / "tests" / "data" / "seed_article.txt"
SEED_PAGE = "/articles/rabat-paris-security-declaration.html"
FEED = "/feed.xml"

Response = tuple[int, dict[str, str], bytes]


@pytest.fixture
def site_dir(site: DemoSite) -> Path:
    """The folder the `site` fixture serves (a copy of the demo site)."""
    return Path(site.root)


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
    """urllib raises on 304/404; tests want the status either way."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_get(site: DemoSite, path: str) -> Response:
    """http.client sends the path exactly as written, which traversal attempts need."""
    port = urlsplit(site.base_url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def parse_seed_txt(path: Path) -> tuple[str, list[str], list[str]]:
    """Same plain-text convention as the matcher: a line holding only '-' precedes a teaser."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    body, teasers = [], []
    after_dash = False
    for line in lines[1:]:
        if line == "-":
            after_dash = True
        elif line and after_dash:
            teasers.append(line)
            after_dash = False
        elif line:
            body.append(line)
    return lines[0], body, teasers


def feed_links(site: DemoSite, path: str) -> list[str]:
    status, _, body = fetch(site.base_url + path)
    assert status == 200
    return [entry.link for entry in feedparser.parse(body).entries]


def test_rss_feed_parses_with_absolute_loopback_links(site: DemoSite) -> None:
    status, headers, body = fetch(site.base_url + FEED)
    assert status == 200
    assert headers["Content-Type"].startswith("application/rss+xml")
    assert b"{{BASE_URL}}" not in body
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "rss20"
    assert feed.feed.get("updated_parsed") is not None
    assert len(feed.entries) >= 10
    for entry in feed.entries:
        assert entry.link.startswith(site.base_url + "/articles/")
        assert entry.title and entry.summary and entry.id and entry.tags
    published = [entry.published_parsed for entry in feed.entries]
    assert published == sorted(published, reverse=True), "newest first"
    assert all(p.tm_year == 2026 and p.tm_mon == 11 for p in published)


def test_atom_feed_lists_only_the_french_articles(site: DemoSite) -> None:
    status, headers, body = fetch(site.base_url + "/fr/atom.xml")
    assert status == 200
    assert headers["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(body)
    assert not feed.bozo and feed.version == "atom10"
    assert len(feed.entries) >= 2
    for entry in feed.entries:
        _, _, page = fetch(entry.link)
        assert lxml_html.fromstring(page).get("lang") == "fr"
    rss_paths = {urlsplit(link).path for link in feed_links(site, FEED)}
    assert {urlsplit(entry.link).path for entry in feed.entries} <= rss_paths


@pytest.mark.parametrize("feed_path", [FEED, "/fr/atom.xml"])
def test_every_feed_item_link_resolves_to_a_page(site: DemoSite, feed_path: str) -> None:
    for link in feed_links(site, feed_path):
        status, headers, body = fetch(link)
        assert status == 200, link
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"<article" in body


def test_article_page_has_placeholder_replaced(site: DemoSite) -> None:
    status, headers, body = fetch(site.base_url + SEED_PAGE)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"{{BASE_URL}}" not in body
    canonical = lxml_html.fromstring(body).xpath('//link[@rel="canonical"]/@href')
    assert canonical == [site.base_url + SEED_PAGE]


def test_seed_article_body_and_teasers_are_kept_apart(site: DemoSite) -> None:
    title, body, teasers = parse_seed_txt(SEED_TXT)
    _, _, page = fetch(site.base_url + SEED_PAGE)
    doc = lxml_html.fromstring(page.decode("utf-8"))
    article = doc.xpath("//article")[0]
    assert article.xpath("string(h1)") == title
    assert [p.text_content() for p in article.xpath('.//div[@class="article-body"]/p')] == body
    assert [a.text_content() for a in article.xpath('.//aside[@class="related"]//li/a')] == teasers
    assert "الجزائر" not in " ".join(body)
    assert "الملطلوبين" in " ".join(body)


def test_every_article_page_has_news_site_markup(site: DemoSite, site_dir: Path) -> None:
    pages = sorted((site_dir / "articles").glob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        url = f"{site.base_url}/articles/{page.name}"
        _, _, body = fetch(url)
        doc = lxml_html.fromstring(body.decode("utf-8"))
        assert doc.get("lang") in {"ar", "fr", "en"}, page.name
        assert doc.get("dir") == ("rtl" if doc.get("lang") == "ar" else "ltr"), page.name
        assert doc.xpath('//link[@rel="canonical"]/@href') == [url]
        published = doc.xpath('//meta[@property="article:published_time"]/@content')
        assert published and published[0].startswith("2026-11-"), page.name
        assert doc.xpath("//article/h1") and doc.xpath("//article//time/@datetime") == published
        assert len(doc.xpath('//article//div[@class="article-body"]/p')) >= 3, page.name
        assert doc.xpath('//aside[@class="related"]/h2') and doc.xpath("//aside//a/@href")
        assert doc.xpath("//header//nav//a") and doc.xpath("//footer")


def test_titles_are_distinct(site: DemoSite) -> None:
    titles = [entry.title for entry in feedparser.parse(fetch(site.base_url + FEED)[2]).entries]
    assert len(set(titles)) == len(titles)


def test_etag_revalidation_and_change(site: DemoSite, site_dir: Path) -> None:
    url = site.base_url + FEED
    status, headers, first = fetch(url)
    etag = headers["ETag"]
    assert status == 200 and etag.startswith('"') and "Last-Modified" in headers
    status, headers, body = fetch(url, {"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    feed_file = site_dir / "feed.xml"
    item = "<item><title>Breaking</title><link>{{BASE_URL}}/articles/new.html</link></item>"
    feed_file.write_text(
        feed_file.read_text(encoding="utf-8").replace("</channel>", item + "</channel>"),
        encoding="utf-8",
    )
    status, headers, body = fetch(url, {"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag
    entries = feedparser.parse(body).entries
    assert len(entries) == len(feedparser.parse(first).entries) + 1
    assert entries[-1].link == site.base_url + "/articles/new.html"


def test_last_modified_revalidation_and_change(site: DemoSite, site_dir: Path) -> None:
    url = site.base_url + SEED_PAGE
    _, headers, _ = fetch(url)
    last_modified = headers["Last-Modified"]
    status, _, body = fetch(url, {"If-Modified-Since": last_modified})
    assert (status, body) == (304, b"")
    page = site_dir / SEED_PAGE.lstrip("/")
    later = page.stat().st_mtime + 60
    os.utime(page, (later, later))
    status, headers, body = fetch(url, {"If-Modified-Since": last_modified})
    assert status == 200 and body and headers["Last-Modified"] != last_modified


def test_stale_etag_wins_over_fresh_date(site: DemoSite) -> None:
    url = site.base_url + SEED_PAGE
    _, headers, _ = fetch(url)
    both = {"If-None-Match": '"stale"', "If-Modified-Since": headers["Last-Modified"]}
    assert fetch(url, both)[0] == 200


def test_head_sends_headers_without_body(site: DemoSite) -> None:
    status, headers, body = fetch(site.base_url + SEED_PAGE, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    assert site.requests[-1].bytes_sent == 0


def test_missing_files_and_directories(site: DemoSite) -> None:
    assert fetch(site.base_url + "/articles/no-such-story.html")[0] == 404
    assert fetch(site.base_url + "/archive/2026/11/teaser-01.html")[0] == 404
    status, _, body = fetch(site.base_url + "/articles/")
    assert status == 404 and b"rabat-paris" not in body
    status, headers, _ = raw_get(site, "/fr")
    assert (status, headers["Location"]) == (301, "/fr/")
    assert fetch(site.base_url + "/fr/")[0] == 200


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/../secret.txt", 403),
        ("/articles/../../secret.txt", 403),
        ("/%2e%2e/secret.txt", 403),
        ("/..%2Fsecret.txt", 403),
        ("//secret.txt", 404),  # the site's own /secret.txt, which does not exist
        ("/escape/secret.txt", 403),
        ("/%00index.html", 403),
    ],
)
def test_traversal_is_refused(site: DemoSite, site_dir: Path, path: str, answer: int) -> None:
    (site_dir.parent / "secret.txt").write_text("TOP SECRET", encoding="utf-8")
    (site_dir / "escape").symlink_to(site_dir.parent)
    status, _, body = raw_get(site, path)
    assert status == answer
    assert b"TOP SECRET" not in body


def test_request_log_records_conditional_flags(site: DemoSite) -> None:
    url = site.base_url + FEED
    _, headers, body = fetch(url)
    site.reset_log()
    fetch(url, {"If-None-Match": headers["ETag"]})
    fetch(url, {"If-Modified-Since": headers["Last-Modified"]})
    fetch(url)
    fetch(site.base_url + "/missing.html")
    assert site.requests == [
        RequestRecord("GET", FEED, 304, True, 0),
        RequestRecord("GET", FEED, 304, True, 0),
        RequestRecord("GET", FEED, 200, False, len(body)),
        RequestRecord("GET", "/missing.html", 404, False, site.requests[-1].bytes_sent),
    ]


def test_text_files_are_templated_and_typed(site: DemoSite) -> None:
    status, headers, body = fetch(site.base_url + "/robots.txt")
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"Disallow: /admin/" in body
    assert f"Sitemap: {site.base_url}/sitemap-news.xml".encode() in body
    status, headers, body = fetch(site.base_url + "/sitemap-news.xml")
    assert status == 200 and headers["Content-Type"].startswith("application/xml")
    assert site.base_url.encode() + b"/articles/" in body
    status, headers, _ = fetch(site.base_url + "/assets/style.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'<?xml version="1.0"?>\n<!-- <feed> --><rss version="2.0"/>', "application/rss+xml"),
        (
            b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>',
            "application/atom+xml",
        ),
        (b"<atom:feed xmlns:atom='http://www.w3.org/2005/Atom'/>", "application/atom+xml"),
        (b"<urlset/>", "application/xml"),
        (b"", "application/xml"),
    ],
)
def test_xml_media_type_follows_the_root_element(data: bytes, expected: str) -> None:
    assert xml_content_type(data).split(";")[0] == expected


def test_server_is_quiet_and_stops(capfd: pytest.CaptureFixture[str]) -> None:
    server = DemoSite(DEMO_SITE)
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        base_url = server.base_url
        fetch(base_url + FEED)
        fetch(base_url + "/missing.html")
        raw_get(server, "/../secret.txt")
    assert capfd.readouterr().err == ""
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base_url + FEED, timeout=2)
