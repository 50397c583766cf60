"""`newswatch add URL`: find what a site offers to poll, so a user need not know which URL to give.

Candidates come from the page itself (it may already be a feed or sitemap), its
`<link rel=alternate>` feeds, robots.txt `Sitemap:` lines and the usual paths. Each is fetched
and read with the daemon's own listing parser, so what `add` shows is what a poll would get.
A home page that fails (404, or 403 as bot-protected home pages answer) says nothing about the
site's feeds and sitemaps: they are looked for all the same, and the failure is reported.
"""

from __future__ import annotations

import logging
import re
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import lxml.html

from crawler.encodings import to_utf8
from crawler.entries import ListingError
from crawler.fetching import BoundedClient, FetchError
from crawler.listings import Listing, detect_kind, parse_listing
from crawler.urls import listed_url

COMMON_PATHS = (
    "/feed",
    "/rss",
    "/rss.xml",
    "/feed.xml",
    "/atom.xml",
    "/index.xml",
    "/sitemap-news.xml",
    "/news-sitemap.xml",
    "/sitemap_news.xml",
    "/sitemap.xml",
    "/sitemap_index.xml",
)
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+xml")
_SITEMAP_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
log = logging.getLogger("newswatch.add")
_KIND_RANK = {"news-sitemap": 3, "feed": 2, "sitemap": 1, "page": 0}


@dataclass(frozen=True)
class Candidate:
    url: str
    kind: str
    entries: int
    titled: int
    newest: str | None
    found_by: str

    @property
    def label(self) -> str:
        """A sitemap whose entries carry news:title is a news sitemap: the best source there is
        (every article, titled and dated, as soon as it is published)."""
        return "news-sitemap" if self.kind == "sitemap" and self.titled else self.kind

    @property
    def rank(self) -> tuple[int, int]:
        return (_KIND_RANK[self.label], self.entries)


@dataclass
class Discovery:
    url: str
    answer: str | None
    """Why the URL itself gave nothing usable (`HTTP 403`…), None when it answered."""
    candidates: list[Candidate] = field(default_factory=list)


class Fetcher:
    """`discover`'s view of the bounded client: a lead that cannot be read is no candidate."""

    def __init__(self, client: BoundedClient) -> None:
        self.client = client
        self.max_size = client.max_size
        # why each URL that gave nothing gave nothing (`HTTP 403`…), for the report
        self.failures: dict[str, str] = {}

    def get(self, url: str) -> tuple[bytes, str | None, str] | None:
        """(body, content type, final URL), or None when there is nothing usable there."""
        try:
            page = self.client.get(url)
        except FetchError as exc:
            (log.warning if exc.refused else log.debug)("url=%s: not read (%s)", url, exc)
            self.failures[url] = str(exc)
            return None
        return page.body, page.content_type, page.url

    def close(self) -> None:
        self.client.close()


def discover(url: str, fetcher: Fetcher) -> Discovery:
    """Every listing found on the URL's site, best first, whatever the URL itself answered."""
    first = fetcher.get(url)
    final = first[2] if first else url
    leads = []
    if first is not None:
        leads.append((final, "the URL given"))
        if detect_kind(first[0]) == "page":
            leads += [(link, "<link rel=alternate>") for link in alternate_links(first[0], final)]
    root = "{0.scheme}://{0.netloc}".format(urlsplit(final))
    robots = fetcher.get(root + "/robots.txt")
    if robots is not None:
        leads += [(link, "robots.txt Sitemap:") for link in robots_sitemaps(robots[0])]
    leads += [(root + path, "common path") for path in COMMON_PATHS]
    found: dict[str, Candidate] = {}
    for lead, how in leads:
        if lead in found:
            continue
        fetched = first if first is not None and lead == final else fetcher.get(lead)
        candidate = _evaluate(lead, how, fetched, fetcher) if fetched else None
        if candidate is not None and candidate.url not in found:
            found[candidate.url] = candidate
    answer = None if first is not None else fetcher.failures.get(url, "no usable answer")
    return Discovery(url, answer, sorted(found.values(), key=lambda c: c.rank, reverse=True))


def alternate_links(body: bytes, url: str) -> list[str]:
    try:
        document = lxml.html.fromstring(to_utf8(body))
    except (lxml.etree.ParserError, ValueError):
        return []
    links = []
    for link in document.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower()
        if "alternate" in rel and kind in FEED_TYPES and link.get("href"):
            with suppress(ValueError):  # a link that is no URL (`http://[::1/x`) is no lead
                links.append(listed_url(url, link.get("href")))
    return links


def robots_sitemaps(body: bytes) -> list[str]:
    return _SITEMAP_LINE.findall(body.decode("utf-8", "replace"))


def _evaluate(
    url: str, how: str, fetched: tuple[bytes, str | None, str], fetcher: Fetcher
) -> Candidate | None:
    body, content_type, final = fetched
    try:
        listing = parse_listing(None, body, final, content_type, max_size=fetcher.max_size)
    except ListingError:
        return None
    if listing.child_sitemaps:
        child = fetcher.get(listing.child_sitemaps[0])
        if child is not None:
            try:
                listing = parse_listing("sitemap", child[0], child[2], max_size=fetcher.max_size)
            except ListingError:
                return None
    if not listing.entries or (listing.kind == "page" and how != "the URL given"):
        return None
    return _candidate(final, how, listing)


def _candidate(url: str, how: str, listing: Listing) -> Candidate:
    dates = [e.published_at for e in listing.entries if e.published_at]
    return Candidate(
        url=url,
        kind=listing.kind,
        entries=len(listing.entries),
        titled=sum(1 for e in listing.entries if e.title),
        newest=max(dates) if dates else None,
        found_by=how,
    )


def source_name(url: str) -> str:
    host = (urlsplit(url).hostname or "site").removeprefix("www.")
    return re.sub(r"[^A-Za-z0-9]+", "-", host).strip("-") or "site"


def report(found: Discovery) -> str:
    """What the URL answered when it failed, what each listing would yield, then the entry to
    paste under `sources:`."""
    url, candidates = found.url, found.candidates
    answered = f"{url}: answered {found.answer}; " if found.answer else f"{url}: "
    if not candidates:
        elsewhere = " on the site either" if found.answer else ""
        return f"{answered}no feed, sitemap or article links found{elsewhere}"
    lines = [f"{answered}{len(candidates)} listing(s) found, best first"]
    for c in candidates:
        newest = f", newest {c.newest}" if c.newest else ""
        lines.append(f"  {c.label:<12} {c.entries:>4} entries{newest}  {c.url}  ({c.found_by})")
    best = candidates[0]
    lines += [
        "",
        "# paste under `sources:` in config.yaml",
        f"  - name: {source_name(url)}",
        f'    url: "{best.url}"',
        f"    kind: {best.kind}",
    ]
    return "\n".join(lines)
