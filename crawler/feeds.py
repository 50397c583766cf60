"""RSS 0.9x/1.0/2.0 and Atom, parsed by feedparser from the response bytes (it sniffs encodings)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import feedparser
import lxml.html


@dataclass(frozen=True)
class FeedEntry:
    url: str
    title: str
    summary: str
    published_at: str | None
    # when the listing says the entry last changed (feed `updated`, sitemap `lastmod`): a stored
    # article is fetched again only when this moves
    updated: str | None = None


class FeedError(Exception):
    """The body is not a feed feedparser can read anything from."""


def _timestamp(
    entry: feedparser.FeedParserDict, keys: tuple[str, ...] = ("published_parsed", "updated_parsed")
) -> str | None:
    parsed = next((entry[key] for key in keys if entry.get(key)), None)
    if not parsed:
        return None
    moment = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def html_to_text(fragment: str) -> str:
    """Feed summaries are often HTML; the fallback article needs their words, not their tags."""
    if "<" not in fragment:
        return fragment.strip()
    try:
        return lxml.html.fromstring(fragment).text_content().strip()
    except (lxml.etree.ParserError, ValueError):
        return fragment.strip()


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> list[FeedEntry]:
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(body, response_headers=headers)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        reason = parsed.get("bozo_exception") or "no feed entries found"
        raise FeedError(f"not a readable feed: {reason}")
    entries = []
    for entry in parsed.entries:
        link = entry.get("link") or entry.get("id")
        if not link:
            continue
        entries.append(
            FeedEntry(
                url=urljoin(url, link),
                title=html_to_text(entry.get("title", "")),
                summary=html_to_text(entry.get("summary", "")),
                published_at=_timestamp(entry),
                updated=_timestamp(entry, ("updated_parsed",)),
            )
        )
    return entries
