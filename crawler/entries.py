"""What every kind of listing yields (feeds, sitemaps, section pages), so everything after the
listing stage is the same code: the entries to consider, the entries left out and why, and the
error of a listing that cannot be read at all."""

from __future__ import annotations

from dataclasses import dataclass, field

from crawler.urls import canonical_url

# how much of a skipped entry's URL a log line shows: a 50 KB URL must not become a 50 KB line
_URL_SHOWN = 200


@dataclass(frozen=True)
class ListingEntry:
    """One article a listing names, with what the listing says of it: the fallback article when
    its page cannot be fetched or extracted, and the dates that decide whether to fetch it."""

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


class ListingError(Exception):
    """The listing cannot be read at all (not a feed, not a sitemap, not an HTML page, a gzip or
    entity bomb): the poll fails with this message, unlike an entry that skips itself."""
