"""What a source's listing says is new: feed entries, news-sitemap URLs, or section-page links.

Every kind yields the same `FeedEntry`, so everything after the listing is the same code. A source
without `kind` is recognised from the body it returns.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html

from alerts.message import parse_time
from crawler.encodings import to_utf8
from crawler.feeds import FeedEntry, FeedError, parse_feed

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
_NS = {"sm": SITEMAP_NS, "news": NEWS_NS}
_XML_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, recover=True
)
_HTML_PARSER = lxml.html.HTMLParser(encoding="utf-8")
_GZIP_MAGIC = b"\x1f\x8b"
_ENTITY_DECLARATIONS = tuple(
    "<!ENTITY".encode(codec)
    for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
DEFAULT_MAX_SIZE = 5 * 1024**2
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
    max_size: int = DEFAULT_MAX_SIZE,
    not_before: datetime | None = None,
) -> Listing:
    """Sitemap entries and child sitemaps dated before `not_before` (lastmod, publication date)
    are left out: a first poll of a site's sitemap must not fetch its archive. Feeds are short
    lists of recent items and are taken whole."""
    body = gunzip(body, max_size)
    kind = kind or detect_kind(body)
    if kind == "feed":
        refuse_entities(body)
        listing = Listing(kind, parse_feed(body, url, content_type), [])
    elif kind == "sitemap":
        refuse_entities(body)
        listing = parse_sitemap(body, url, not_before)
    else:
        listing = Listing(kind, page_links(body, url, follow, content_type), [])
    listing = _web_only(listing)
    if not_before is None or listing.kind != "sitemap":
        return listing
    recent = [e for e in listing.entries if not _older(e.published_at, not_before)]
    return Listing(listing.kind, recent, listing.child_sitemaps)


def _older(stamp: str | None, not_before: datetime) -> bool:
    """True only for a date that parses and is older; an undated entry is never skipped."""
    moment = parse_time(stamp)
    return moment is not None and moment < not_before


def _web_only(listing: Listing) -> Listing:
    """A listing may name `file:`, `ftp:` or `data:` URLs; only http(s) ones are ever fetched."""
    return Listing(
        listing.kind,
        [entry for entry in listing.entries if _is_web(entry.url)],
        [child for child in listing.child_sitemaps if _is_web(child)],
    )


def _is_web(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def gunzip(body: bytes, max_size: int) -> bytes:
    """Sitemaps are often served as `.xml.gz` files (not Content-Encoding, which Scrapy decodes
    within the page-size limit): inflate them here under the same limit, so a gzip bomb stops
    at `max_size` decompressed bytes instead of filling memory."""
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        inflated = inflater.decompress(body, max_size + 1)
    except zlib.error as exc:
        raise FeedError(f"not a readable gzip file: {exc}") from None
    if len(inflated) > max_size:
        raise FeedError(f"refused: more than {max_size} bytes once decompressed (gzip bomb?)")
    return inflated


def refuse_entities(body: bytes) -> None:
    """A feed or sitemap declaring XML entities is refused before any parser sees it: no news
    format needs them, and they are how entity-expansion bombs ("billion laughs") and external
    entities reading local files or internal URLs work. Checked on the raw bytes in every
    encoding a parser could pick, so a UTF-16 document cannot slip through."""
    if any(marker in body for marker in _ENTITY_DECLARATIONS):
        raise FeedError(
            "refused: the document declares XML entities (entity expansion or file read)"
        )


def parse_sitemap(body: bytes, url: str, not_before: datetime | None = None) -> Listing:
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
        newest = sorted(
            (c for c in children if c[1] and not (not_before and _older(c[0], not_before))),
            reverse=True,
        )
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
                updated=node.findtext("sm:lastmod", None, _NS),
            )
        )
    return Listing("sitemap", entries, [])


def page_links(
    body: bytes, url: str, follow: Sequence[str], content_type: str | None = None
) -> list[FeedEntry]:
    """Article links of a section page: those matching `follow`, or when none is given, links on
    the same site whose path looks like an article (deep enough, not a tag/category page)."""
    try:
        document = lxml.html.fromstring(
            to_utf8(body, content_type), parser=_HTML_PARSER, base_url=url
        )
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
