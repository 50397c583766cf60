"""RSS 0.9x/1.0/2.0 and Atom, parsed by feedparser from the response bytes (it sniffs encodings)."""

from __future__ import annotations

import feedparser
import lxml.html

from crawler.entries import ListingEntry, ListingError, Skipped
from crawler.instants import from_struct
from crawler.urls import listed_url


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
        raise ListingError(f"not a readable feed: {reason}")
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
