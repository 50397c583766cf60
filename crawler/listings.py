"""What a source's listing says is new: feed entries, news-sitemap URLs, or section-page links.

Every kind yields the same shapes (`crawler.entries`), so everything after the listing is the
same code; RSS and Atom are read by `crawler.feeds`, sitemaps and section pages here. A source
without `kind` is recognised from the body it returns.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

import lxml.etree
import lxml.html

from crawler.encodings import to_utf8
from crawler.entries import ListingEntry, ListingError, Skipped
from crawler.feeds import parse_feed
from crawler.instants import format_instant, parse_instant
from crawler.urls import listed_url

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
    """What one listing gave a poll: its entries (the newest, up to the cap), the child sitemaps
    an index names, and the entries it skipped, each with why."""

    kind: str
    entries: list[ListingEntry]
    child_sitemaps: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    # entries the listing held before the cap on entries per listing
    listed: int = 0


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
    max_entries: int | None = None,
) -> Listing:
    """Sitemap entries and child sitemaps dated before `not_before` (lastmod, publication date)
    are left out: a first poll of a site's sitemap must not fetch its archive. Feeds are short
    lists of recent items and are taken whole, up to `max_entries`, like every listing: the
    newest ones where dates allow, so a 100,000-entry listing costs what its newest entries cost.

    Pure CPU work on bytes and no I/O: callers run it off the event loop."""
    body = gunzip(body, max_size)
    kind = kind or detect_kind(body)
    if kind == "feed":
        refuse_entities(body)
        entries, skipped = parse_feed(body, url, content_type)
        listing = Listing(kind, entries, [], skipped)
    elif kind == "sitemap":
        refuse_entities(body)
        listing = parse_sitemap(body, url, not_before)
    else:
        entries, skipped = page_links(body, url, follow, content_type)
        listing = Listing(kind, entries, [], skipped)
    listing = _web_only(listing)
    if not_before is not None and listing.kind == "sitemap":
        recent = [e for e in listing.entries if not _older(e.published_at, not_before)]
        listing = replace(listing, entries=recent)
    return _newest(listing, max_entries)


def _newest(listing: Listing, max_entries: int | None) -> Listing:
    """At most `max_entries`, newest first by the entry's latest date; undated entries keep
    their place in the document after the dated ones (the sort is stable)."""
    entries = listing.entries
    if max_entries is not None and len(entries) > max_entries:
        entries = sorted(entries, key=_latest_date, reverse=True)[:max_entries]
    return replace(listing, entries=entries, listed=len(listing.entries))


def _latest_date(entry: ListingEntry) -> str:
    return max(entry.updated or "", entry.published_at or "")


def _older(stamp: str | None, not_before: datetime) -> bool:
    """True only for a dated entry that is older; an undated entry is never skipped. Listing
    dates are instants already (`crawler.instants`), compared as text."""
    cutoff = format_instant(not_before)
    return bool(stamp) and cutoff is not None and stamp < cutoff


def _web_only(listing: Listing) -> Listing:
    """A listing may name `file:`, `ftp:` or `data:` URLs; only http(s) ones are ever fetched."""
    return replace(
        listing,
        entries=[entry for entry in listing.entries if _is_web(entry.url)],
        child_sitemaps=[child for child in listing.child_sitemaps if _is_web(child)],
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
        raise ListingError(f"not a readable gzip file: {exc}") from None
    if len(inflated) > max_size:
        raise ListingError(f"refused: more than {max_size} bytes once decompressed (gzip bomb?)")
    return inflated


def refuse_entities(body: bytes) -> None:
    """A feed or sitemap declaring XML entities is refused before any parser sees it: no news
    format needs them, and they are how entity-expansion bombs ("billion laughs") and external
    entities reading local files or internal URLs work. Checked on the raw bytes in every
    encoding a parser could pick, so a UTF-16 document cannot slip through."""
    if any(marker in body for marker in _ENTITY_DECLARATIONS):
        raise ListingError(
            "refused: the document declares XML entities (entity expansion or file read)"
        )


def parse_sitemap(body: bytes, url: str, not_before: datetime | None = None) -> Listing:
    """News sitemaps keep title and date in `news:` children, which Scrapy's SitemapSpider
    drops; an index lists child sitemaps, newest first (by lastmod) so a poll reads few. Each
    `<url>` or `<sitemap>` is read on its own: a bad one is skipped, not the sitemap."""
    try:
        root = lxml.etree.fromstring(body, _XML_PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        raise ListingError(f"not a readable sitemap: {exc}") from None
    if root is None:
        raise ListingError("not a readable sitemap: empty document")
    if lxml.etree.QName(root).localname == "sitemapindex":
        return _sitemap_index(root, url, not_before)
    entries, skipped = [], []
    for position, node in enumerate(root.iterfind("sm:url", _NS), 1):
        loc = node.findtext("sm:loc", "", _NS).strip()
        if not loc:
            continue
        try:
            entries.append(_sitemap_entry(node, url, loc))
        except ValueError as exc:
            skipped.append(Skipped(position, loc, str(exc)))
    return Listing("sitemap", entries, [], skipped)


def _sitemap_entry(node: lxml.etree._Element, base: str, loc: str) -> ListingEntry:
    updated = parse_instant(node.findtext("sm:lastmod", None, _NS))
    published = parse_instant(node.findtext("news:news/news:publication_date", None, _NS))
    return ListingEntry(
        url=listed_url(base, loc),
        title=(node.findtext("news:news/news:title", "", _NS) or "").strip(),
        summary="",
        published_at=published or updated,
        updated=updated,
    )


def _sitemap_index(root: lxml.etree._Element, url: str, not_before: datetime | None) -> Listing:
    children, skipped = [], []
    for position, node in enumerate(root.iterfind("sm:sitemap", _NS), 1):
        loc = node.findtext("sm:loc", "", _NS).strip()
        if not loc:
            continue
        lastmod = parse_instant(node.findtext("sm:lastmod", None, _NS))
        try:
            children.append((lastmod or "", listed_url(url, loc)))
        except ValueError as exc:
            skipped.append(Skipped(position, loc, str(exc)))
    newest = sorted(
        (c for c in children if not (not_before and _older(c[0], not_before))), reverse=True
    )
    return Listing("sitemap", [], [loc for _, loc in newest], skipped)


def page_links(
    body: bytes, url: str, follow: Sequence[str], content_type: str | None = None
) -> tuple[list[ListingEntry], list[Skipped]]:
    """Article links of a section page: those matching `follow`, or when none is given, links on
    the same site whose path looks like an article (deep enough, not a tag/category page)."""
    try:
        document = lxml.html.fromstring(
            to_utf8(body, content_type), parser=_HTML_PARSER, base_url=url
        )
    except (lxml.etree.ParserError, ValueError):
        raise ListingError("not a readable HTML page") from None
    patterns = [re.compile(p) for p in follow]
    host = urlsplit(url).hostname
    seen: set[str] = set()
    entries, skipped = [], []
    for position, anchor in enumerate(document.iter("a"), 1):
        href = anchor.get("href")
        if not href:
            continue
        try:
            link = listed_url(url, href).split("#", 1)[0]
        except ValueError as exc:
            skipped.append(Skipped(position, href, str(exc)))
            continue
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or parts.hostname != host or link in seen:
            continue
        wanted = (
            any(p.search(link) for p in patterns) if patterns else _looks_like_article(parts.path)
        )
        if wanted:
            seen.add(link)
            title = " ".join(anchor.text_content().split())
            entries.append(ListingEntry(url=link, title=title, summary="", published_at=None))
    return entries, skipped


def _looks_like_article(path: str) -> bool:
    segments = [s for s in path.split("/") if s]
    if not segments or _NOT_ARTICLES.search(path):
        return False
    last = segments[-1]
    return len(segments) >= 2 or "-" in last or last.endswith((".html", ".htm")) or last.isdigit()
