"""The stages an article goes through once fetched: extract → dedup → store → match → enqueue.

Extraction runs in the workers; matching needs only the record, so it runs before the write
transaction; dedup, store and enqueue happen in one transaction, so a crash leaves either the
whole article with its alerts, or nothing.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import sqlite_utils

from alerts import outbox
from alerts.document import PARAGRAPH_SEPARATOR, Document
from alerts.matcher import WatchlistMatch
from alerts.watchlists import Watchlists
from crawler import dedup, language, refetch, store
from crawler.config import EXTRACTION_TIMEOUT, DedupConfig
from crawler.entries import ListingEntry
from crawler.extract import ExtractedArticle, extract_article
from crawler.language import detect_language
from crawler.stories import (
    Stories,
    notify_updates,
    story_outlets,
    story_summary,
    watchlist_alert,
)
from crawler.urls import canonical_url
from crawler.workers import PoolClosed, WorkerLost, WorkerPool

log = logging.getLogger("newswatch.pipeline")


class Extractor:
    """trafilatura costs 20–40 ms of CPU a page: it runs in worker processes, off the event loop,
    each page under a deadline (`crawl.extraction_timeout`).

    Workers are forked when the extractor is made, before the reactor starts and before any
    thread exists: they inherit the parent's imports and the language model instead of paying
    seconds of start-up each, and forking a process without threads is safe. The daemon then
    drops its reference to the model (75 MB): it never detects a language itself. A page over
    the deadline has its worker killed; a worker that dies (killed, out of memory) loses only its
    own page; either way the page falls back to its feed entry and a replacement starts (see
    `crawler.workers`).
    """

    def __init__(self, workers: int | None = None, deadline: float = EXTRACTION_TIMEOUT) -> None:
        self.workers = workers or os.cpu_count() or 1
        _warm_up()
        # Objects that exist now are never garbage: frozen, the collector stops walking (and, in
        # the workers, copying) them.
        gc.freeze()
        self._pool = WorkerPool(self.workers, _warm_up, deadline)
        language.forget_model()

    async def prepare(self, fetched: Fetched) -> Prepared:
        return await self._pool.run(prepare, fetched)

    def close(self) -> None:
        """Kill the workers now; pages in flight are handed back (fetched again next poll)."""
        self._pool.close()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _warm_up() -> None:
    """Load the language model before the first article: in the daemon before it forks, in a
    worker started from the fork server."""
    language.model()


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
    source: str
    url: str
    canonical_url: str
    aliases: frozenset[str]
    title: str
    paragraphs: tuple[str, ...]
    language: str | None
    published_at: str | None
    extraction: str
    html: bytes | None
    # the listing's "last changed" for this entry (feed `updated`, sitemap `lastmod`)
    updated: str | None = None

    @property
    def text(self) -> str:
        """The body as stored: paragraphs apart as the matcher and the backtest read them."""
        return PARAGRAPH_SEPARATOR.join(self.paragraphs)


@dataclass(frozen=True)
class Stored:
    article_id: int
    story_id: str
    title: str
    url: str
    matches: tuple[WatchlistMatch, ...]
    alerts_enqueued: int


def _same_site(url: str, other: str) -> bool:
    return urlsplit(url).hostname == urlsplit(other).hostname


@dataclass(frozen=True)
class Prepared:
    """What the extraction workers make of a fetched page, in one trip: the article (None when
    the page gave none), the language of the feed entry when it has to stand in, and the
    fingerprint of the text that will be stored."""

    extracted: ExtractedArticle | None
    summary_language: str | None
    fingerprint: dedup.Fingerprint | None
    # why extraction failed, when it did
    error: str | None = None


def prepare(fetched: Fetched) -> Prepared:
    """Runs in a worker: extraction, the entry's language when the page gives no text, and the
    fingerprint of the record `build_record` will make of them."""
    extracted, error = None, None
    if fetched.html is not None:
        url = fetched.final_url or fetched.entry.url
        try:
            extracted = extract_article(fetched.html, url, fetched.source_language)
        except Exception as exc:  # a page that breaks the extractor falls back to its entry
            error = f"{type(exc).__name__}: {exc}"
    summary_language = None
    if not (extracted and extracted.paragraphs) and not fetched.source_language:
        summary_language = detect_language(f"{fetched.entry.title}\n{fetched.entry.summary}")
    record = build_record(fetched, extracted, summary_language)
    fingerprint = dedup.fingerprint(record.title, record.paragraphs) if record else None
    return Prepared(extracted, summary_language, fingerprint, error)


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
        html=fetched.html if extraction == "page" else None,
        updated=entry.updated,
    )


class ArticlePipeline:
    def __init__(
        self,
        db: sqlite_utils.Database,
        watchlists: Watchlists,
        extractor: Extractor,
        *,
        store_html: bool = False,
        dedup_config: DedupConfig | None = None,
    ) -> None:
        self.db = db
        self.watchlists = watchlists
        self.extractor = extractor
        self.store_html = store_html
        self.dedup_config = dedup_config or DedupConfig()
        self.stories = Stories(db, self.dedup_config)
        # canonical URLs some poll is fetching now: sources listing the same article and polled
        # at the same time fetch it once
        self.claimed: set[str] = set()

    def needs_fetch(self, entries: list[ListingEntry]) -> list[tuple[ListingEntry, str, str]]:
        """(entry, canonical URL, why) for the entries of a listing to fetch (`refetch.why_fetch`:
        new, changed since, or a failed fetch due for retry), with two queries for the whole
        listing however long it is."""
        canonicals = [entry.canonical for entry in entries]
        known = store.known_articles(self.db, canonicals)
        failures = store.fetch_failures(self.db, canonicals)
        now = store.utcnow()
        wanted = []
        for entry, canonical in zip(entries, canonicals, strict=True):
            why = refetch.why_fetch(
                entry.updated, known.get(canonical), failures.get(canonical), now
            )
            if why is not None:
                wanted.append((entry, canonical, why))
        return wanted

    async def process(self, fetched: Fetched) -> Stored | None:
        try:
            prepared = await self._prepare(fetched)
        except (PoolClosed, WorkerLost) as exc:
            # the daemon is stopping (its poll is cut, so the feed is read in full next time),
            # or the entry's own fallback lost its worker too
            log.warning("source=%s url=%s: not stored: %s", fetched.source, fetched.entry.url, exc)
            return None
        record = build_record(fetched, prepared.extracted, prepared.summary_language)
        if record is None or prepared.fingerprint is None:
            log.warning(
                "source=%s url=%s: no title or text, skipped", fetched.source, fetched.entry.url
            )
            return None
        return self.store(record, prepared.fingerprint)

    async def _prepare(self, fetched: Fetched) -> Prepared:
        """The workers' part, in one trip; when the page breaks the extractor, runs over the
        deadline or kills its worker, the feed entry stands in."""
        url = fetched.final_url or fetched.entry.url
        try:
            prepared = await self.extractor.prepare(fetched)
        except WorkerLost as lost:
            entry_only = await self.extractor.prepare(replace(fetched, html=None))
            prepared = replace(entry_only, error=str(lost))
        if prepared.error:
            log.warning(
                "source=%s url=%s: extraction failed (%s); using the feed entry",
                fetched.source,
                url,
                prepared.error,
            )
        elif fetched.html is not None and prepared.extracted is None:
            log.info(
                "source=%s url=%s: no article text found; using the feed entry", fetched.source, url
            )
        return prepared

    def store(self, record: Record, fingerprint: dedup.Fingerprint) -> Stored | None:
        """Store a new article in its story, or a new version of a stored one, then match it.

        A watchlist already alerted on the story is not alerted again (the outbox key is the
        story); `notify_updates` watchlists hear when the story reached a new outlet or an
        article's text changed materially. Matching needs only the record, so it runs before
        the transaction: the write lock is held for writes alone."""
        doc = Document(record.title, record.paragraphs, record.language)
        matches = tuple(self.watchlists.match(doc, record.source))
        with self.db.atomic():
            known = _first_known(self.db, record.aliases)
            if known is None:
                article_id, story_id, change = self._insert(record, fingerprint)
            else:
                article_id, story_id = known["id"], known["story_id"]
                change = self._revise(known, record, fingerprint)
                if change is None:
                    return None
            enqueued = 0
            if matches or change:
                article = self.db["articles"].get(article_id)
                story = story_summary(self.db, story_id)
                enqueued = sum(self._enqueue(article, story, m) for m in matches)
            if change:
                enqueued += notify_updates(
                    self.db, self.watchlists, self.dedup_config, article, story, matches, change
                )
        self.stories.index_article(article_id, fingerprint.signature)
        log.info(
            "source=%s url=%s: %s article %d, story %s (%s, %s),"
            " %d watchlist(s) matched, %d alert(s)",
            record.source,
            record.url,
            "stored" if known is None else "new version of",
            article_id,
            story_id,
            record.language or "language unknown",
            record.extraction,
            len(matches),
            enqueued,
        )
        return Stored(article_id, story_id, record.title, record.url, matches, enqueued)

    def _insert(self, record: Record, fingerprint: dedup.Fingerprint) -> tuple[int, str, str]:
        """Returns the article id, its story and, when it took the story to a new outlet, that
        change in words."""
        text = record.text
        digest, signature = fingerprint.content_hash, fingerprint.signature
        assignment = self.stories.assign(record.canonical_url, digest, signature)
        story_id = assignment.story_id
        outlets = story_outlets(self.db, story_id)
        article_id = store.insert_article(
            self.db,
            {
                "url": record.url,
                "canonical_url": record.canonical_url,
                "source": record.source,
                "title": record.title,
                "text": text,
                "language": record.language,
                "published_at": record.published_at,
                "fetched_at": store.utcnow(),
                "last_fetched_at": store.utcnow(),
                "content_hash": digest,
                "extraction": record.extraction,
                "story_id": story_id,
                "html": _html_text(record.html) if self.store_html else None,
                "source_updated_at": record.updated,
            },
        )
        store.remember_urls(self.db, article_id, set(record.aliases))
        self.stories.save_signature(article_id, signature)
        if assignment.how != "new":
            log.info(
                "source=%s url=%s: joins story %s (%s, similarity %.2f)",
                record.source,
                record.url,
                story_id,
                assignment.how,
                assignment.similarity,
            )
        grew = bool(outlets) and record.source not in outlets
        return article_id, story_id, f"reached a new outlet ({record.source})" if grew else ""

    def _revise(self, known: dict, record: Record, fingerprint: dedup.Fingerprint) -> str | None:
        """The listing said a stored article changed: keep the old text as a version and store
        the new one, unless the text is the same (or only the feed summary could be had this
        time). Returns None when nothing changed, else the change in words ("" if minor)."""
        text = record.text
        digest, signature = fingerprint.content_hash, fingerprint.signature
        worse = record.extraction != "page" and known["extraction"] == "page"
        if digest == known["content_hash"] or worse:
            store.note_listing_update(self.db, known["id"], record.updated)
            log.info(
                "source=%s url=%s: listed as updated, text unchanged", record.source, record.url
            )
            return None
        previous = self.stories.signature(known["id"])
        store.replace_text(
            self.db,
            known["id"],
            {
                "title": record.title,
                "text": text,
                "content_hash": digest,
                "language": record.language,
                "extraction": record.extraction,
                "source_updated_at": record.updated or known["source_updated_at"],
                "last_fetched_at": store.utcnow(),
            },
        )
        self.stories.save_signature(known["id"], signature)
        self.db["matches"].delete_where("article_id = ?", [known["id"]])
        material = self.stories.is_material(previous, signature)
        return "text changed materially" if material else ""

    def _enqueue(self, article: dict, story: dict, match: WatchlistMatch) -> int:
        hits = [hit.to_dict() for hit in match.hits]
        self.db["matches"].insert(
            {
                "article_id": article["id"],
                "watchlist": match.watchlist,
                "hits": json.dumps(hits, ensure_ascii=False),
                "snippet": match.snippet,
                "matched_at": store.utcnow(),
            },
            replace=True,
        )
        added = 0
        for channel in self.watchlists.configs[match.watchlist].notify:
            alert = watchlist_alert(article, story, match.watchlist, channel, match)
            added += outbox.enqueue(self.db, alert, channel, article["id"])
        return added


def _first_known(db: sqlite_utils.Database, aliases: frozenset[str]) -> dict | None:
    """The stored article any of the record's URLs (feed link, final URL, rel=canonical) led to."""
    for alias in sorted(aliases):
        known = store.known_article(db, alias)
        if known is not None:
            return known
    return None


def _html_text(html: bytes | None) -> str | None:
    return html.decode("utf-8", "replace") if html is not None else None
