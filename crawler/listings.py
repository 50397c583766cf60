"""What a source's listing says is new: feed entries, news-sitemap URLs, or section-page links.

Every kind yields the same `FeedEntry`, so everything after the listing is the same code. A source
without `kind` is recognised from the body it returns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html

from crawler.feeds import FeedEntry, FeedError, parse_feed

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
_NS = {"sm": SITEMAP_NS, "news": NEWS_NS}
_XML_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, recover=True
)
_NOT_ARTICLES = re.compile(
    r"/(tag|tags|category|categories|categorie|author|auteur|page|search|login|account|about|"
    r"contact|video|videos|live|wp-admin|feed)(/|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Listing:
    kind: str
    entries: list[FeedEntry]
    child_sitemaps: list[str]


def detect_kind(body: bytes) -> str:
    head = body[:2048].lstrip().lower()
    if b"<urlset" in head or b"<sitemapindex" in head:
        return "sitemap"
    if b"<rss" in head or b"<feed" in head or b"<rdf:rdf" in head:
        return "feed"
    return "page"


def parse_listing(
    kind: str | None,
    body: bytes,
    url: str,
    content_type: str | None = None,
    follow: Sequence[str] = (),
) -> Listing:
    kind = kind or detect_kind(body)
    if kind == "feed":
        return Listing(kind, parse_feed(body, url, content_type), [])
    if kind == "sitemap":
        return parse_sitemap(body, url)
    return Listing(kind, page_links(body, url, follow), [])


def parse_sitemap(body: bytes, url: str) -> Listing:
    """News sitemaps keep title and date in `news:` children, which Scrapy's SitemapSpider
    drops; an index lists child sitemaps, newest first (by lastmod) so a poll reads few."""
    try:
        root = lxml.etree.fromstring(body, _XML_PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        raise FeedError(f"not a readable sitemap: {exc}") from None
    if root is None:
        raise FeedError("not a readable sitemap: empty document")
    if lxml.etree.QName(root).localname == "sitemapindex":
        children = [
            (node.findtext("sm:lastmod", "", _NS), node.findtext("sm:loc", "", _NS).strip())
            for node in root.iterfind("sm:sitemap", _NS)
        ]
        newest = sorted((c for c in children if c[1]), reverse=True)
        return Listing("sitemap", [], [urljoin(url, loc) for _, loc in newest])
    entries = []
    for node in root.iterfind("sm:url", _NS):
        loc = node.findtext("sm:loc", "", _NS).strip()
        if not loc:
            continue
        published = node.findtext("news:news/news:publication_date", None, _NS)
        entries.append(
            FeedEntry(
                url=urljoin(url, loc),
                title=(node.findtext("news:news/news:title", "", _NS) or "").strip(),
                summary="",
                published_at=published or node.findtext("sm:lastmod", None, _NS),
            )
        )
    return Listing("sitemap", entries, [])


def page_links(body: bytes, url: str, follow: Sequence[str]) -> list[FeedEntry]:
    """Article links of a section page: those matching `follow`, or when none is given, links on
    the same site whose path looks like an article (deep enough, not a tag/category page)."""
    try:
        document = lxml.html.fromstring(body, base_url=url)
    except (lxml.etree.ParserError, ValueError):
        raise FeedError("not a readable HTML page") from None
    patterns = [re.compile(p) for p in follow]
    host = urlsplit(url).hostname
    seen: set[str] = set()
    entries = []
    for anchor in document.iter("a"):
        href = anchor.get("href")
        if not href:
            continue
        link = urljoin(url, href).split("#", 1)[0]
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or parts.hostname != host or link in seen:
            continue
        wanted = (
            any(p.search(link) for p in patterns) if patterns else _looks_like_article(parts.path)
        )
        if wanted:
            seen.add(link)
            title = " ".join(anchor.text_content().split())
            entries.append(FeedEntry(url=link, title=title, summary="", published_at=None))
    return entries


def _looks_like_article(path: str) -> bool:
    segments = [s for s in path.split("/") if s]
    if not segments or _NOT_ARTICLES.search(path):
        return False
    last = segments[-1]
    return len(segments) >= 2 or "-" in last or last.endswith((".html", ".htm")) or last.isdigit()
