"""RSS 0.9x/1.0/2.0 and Atom, parsed by feedparser from the response bytes (it sniffs encodings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import feedparser
import lxml.html

from crawler.instants import from_struct
from crawler.urls import canonical_url, listed_url

# how much of a skipped entry's URL a log line shows: a 50 KB URL must not become a 50 KB line
_URL_SHOWN = 200


@dataclass(frozen=True)
class ListingEntry:
    url: str
    title: str
    summary: str
    # UTC instants in `crawler.instants` form (None when absent or not a real date)
    published_at: str | None
    # when the listing says the entry last changed (Atom `updated`, sitemap `lastmod`; never a
    # bare publication date): a stored article is fetched again only when this moves forward
    updated: str | None = None
    # computed where the entry is made (the listing parser's thread), not on the event loop
    # for every lookup and claim
    canonical: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "canonical", canonical_url(self.url))


@dataclass(frozen=True)
class Skipped:
    """A listing entry left out, and why: its position (1-based, in document order) and URL let
    an operator find it in the listing."""

    position: int
    url: str | None
    reason: str

    def describe(self) -> str:
        where = f"entry {self.position}"
        if self.url:
            shown = self.url if len(self.url) <= _URL_SHOWN else f"{self.url[:_URL_SHOWN]}…"
            where += f" ({shown})"
        return f"{where} skipped: {self.reason}"


class FeedError(Exception):
    """The body is not a feed feedparser can read anything from."""


def html_to_text(fragment: str) -> str:
    """Feed summaries are often HTML; the fallback article needs their words, not their tags."""
    if "<" not in fragment:
        return fragment.strip()
    try:
        return lxml.html.fromstring(fragment).text_content().strip()
    except (lxml.etree.ParserError, ValueError):
        return fragment.strip()


def parse_feed(
    body: bytes, url: str, content_type: str | None = None
) -> tuple[list[ListingEntry], list[Skipped]]:
    """The feed's entries, each read on its own: one with a link that cannot be an article URL
    is returned among the skipped, and the others are still taken."""
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(body, response_headers=headers)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        reason = parsed.get("bozo_exception") or "no feed entries found"
        raise FeedError(f"not a readable feed: {reason}")
    entries, skipped = [], []
    for position, entry in enumerate(parsed.entries, 1):
        link = entry.get("link") or entry.get("id")
        if not link:
            continue
        try:
            entries.append(_feed_entry(entry, url, link))
        except ValueError as exc:
            skipped.append(Skipped(position, link, str(exc)))
    return entries, skipped


def _feed_entry(entry: feedparser.FeedParserDict, base: str, link: str) -> ListingEntry:
    """RSS has only a publication date; Atom's `updated` is the entry's own "last changed".
    feedparser's `get("updated_parsed")` falls back to the publication date (its issue 310):
    read without the fallback, or every RSS `pubDate` would pass for a modification."""
    updated = from_struct(dict.get(entry, "updated_parsed"))
    return ListingEntry(
        url=listed_url(base, link),
        title=html_to_text(entry.get("title", "")),
        summary=html_to_text(entry.get("summary", "")),
        published_at=from_struct(entry.get("published_parsed")) or updated,
        updated=updated,
    )
