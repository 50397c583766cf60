"""The shapes an article takes on its way: `Fetched` (what a spider hands over), `Record` (what
will be stored and matched, made in an extraction worker), `Prepared` (the worker's answer) and
`Stored` (what the ingest did with it)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from alerts.document import PARAGRAPH_SEPARATOR
from alerts.matcher import WatchlistMatch
from crawler import dedup
from crawler.entries import ListingEntry
from crawler.event_terms import Terms
from crawler.extract import ExtractedArticle
from crawler.urls import canonical_url


@dataclass(frozen=True)
class Fetched:
    """What a spider hands over: the feed entry, and the page when it could be fetched."""

    source: str
    source_language: str | None
    entry: ListingEntry
    final_url: str | None = None
    html: bytes | None = None


@dataclass(frozen=True)
class Record:
    """The article as it will be stored and matched: the extracted page, or its listing entry
    standing in."""

    source: str
    url: str
    canonical_url: str
    aliases: frozenset[str]
    title: str
    paragraphs: tuple[str, ...]
    language: str | None
    published_at: str | None
    # "page" or "feed-summary"
    extraction: str
    # the listing's "last changed" for this entry (feed `updated`, sitemap `lastmod`)
    updated: str | None = None

    @property
    def text(self) -> str:
        """The body as stored: paragraphs apart as the matcher and the backtest read them."""
        return PARAGRAPH_SEPARATOR.join(self.paragraphs)


@dataclass(frozen=True)
class Prepared:
    """What the extraction workers make of a fetched page, in one trip: the record (None when
    neither the page nor its entry gave a title or text), the fingerprint of its text and its
    event terms."""

    record: Record | None
    fingerprint: dedup.Fingerprint | None
    # why extraction failed, when it did (the entry stands in)
    error: str | None = None
    # what the text gives to find the other reports of its event
    terms: Terms | None = None


@dataclass(frozen=True)
class Stored:
    """What storing an article did: where it went, and what it matched and queued."""

    article_id: int
    story_id: str
    title: str
    url: str
    matches: tuple[WatchlistMatch, ...]
    alerts_enqueued: int


def build_record(
    fetched: Fetched, extracted: ExtractedArticle | None, summary_language: str | None = None
) -> Record | None:
    """Prefer the extracted page; fall back to the feed entry's title and summary, marked so
    (in the language detected from them, `summary_language`, unless the source names one)."""
    entry = fetched.entry
    url = fetched.final_url or entry.url
    aliases = {entry.canonical, canonical_url(url)}
    declared = extracted.canonical_url if extracted else None
    canonical = canonical_url(declared) if declared and _same_site(declared, url) else None
    if extracted and extracted.paragraphs:
        title = extracted.title or entry.title
        paragraphs = extracted.paragraphs
        language = fetched.source_language or extracted.language
        published = extracted.published_at or entry.published_at
        extraction = "page"
    else:
        title = entry.title
        paragraphs = (entry.summary,) if entry.summary else ()
        language = fetched.source_language or summary_language
        published = entry.published_at
        extraction = "feed-summary"
    if not title and not paragraphs:
        return None
    canonical = canonical or canonical_url(url)
    return Record(
        source=fetched.source,
        url=url,
        canonical_url=canonical,
        aliases=frozenset(aliases | {canonical}),
        title=title,
        paragraphs=tuple(paragraphs),
        language=language,
        published_at=published,
        extraction=extraction,
        updated=entry.updated,
    )


def page_html(fetched: Fetched, record: Record) -> str | None:
    """The page kept beside the article (`crawl.store_html`): only when the text came from it."""
    if fetched.html is None or record.extraction != "page":
        return None
    return fetched.html.decode("utf-8", "replace")


def _same_site(url: str, other: str) -> bool:
    return urlsplit(url).hostname == urlsplit(other).hostname
