"""The ingest: one fetched article through its stages, in order.

extract (in the worker processes, `crawler.workers`) → match (`alerts/`, on the record alone, so
before the write transaction) → story, event and store (`crawler.stories`) → enqueue
(`crawler.enqueue`). Storing and enqueueing share one transaction: a crash leaves either the
whole article with its alerts, or nothing. Which entries of a listing need fetching at all is
decided here too, before the spider fetches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import sqlite_utils

from alerts.document import Document
from alerts.matcher import WatchlistMatch
from alerts.times import timestamp
from alerts.watchlists import Watchlists
from crawler import dedup, refetch, store
from crawler.articles import Fetched, Prepared, Record, Stored, page_html
from crawler.config import DedupConfig, EventsConfig
from crawler.enqueue import AlertQueue
from crawler.entries import ListingEntry
from crawler.event_terms import Terms
from crawler.events import Events
from crawler.stories import Filed, Stories
from crawler.workers import Extractor, PoolClosed, WorkerLost

log = logging.getLogger("newswatch.ingest")


class Ingest:
    """Takes each fetched article from extraction to the outbox, for the spiders of one daemon
    (or one `newswatch demo`), and says which listed entries need fetching."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        watchlists: Watchlists,
        extractor: Extractor,
        *,
        store_html: bool = False,
        dedup_config: DedupConfig | None = None,
        events_config: EventsConfig | None = None,
        guard: Callable[[str], bool] | None = None,
    ) -> None:
        """`guard(source)` runs first in each transaction that stores an article: in a cluster
        it is False once a later poll of the source started, and the stale poll writes
        nothing."""
        self.db = db
        self.guard = guard
        self.watchlists = watchlists
        self.extractor = extractor
        self.store_html = store_html
        dedup_config = dedup_config or DedupConfig()
        events_config = events_config or EventsConfig()
        events = Events(db, events_config.window, events_config.threshold)
        if read := events.warm_up(datetime.now(UTC)):
            log.info("events: terms weighed and recent stories profiled from %d stored", read)
        self.stories = Stories(db, dedup_config, events)
        self.alerts = AlertQueue(db, watchlists, dedup_config.update_interval)
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
        now = timestamp()
        wanted = []
        for entry, canonical in zip(entries, canonicals, strict=True):
            why = refetch.why_fetch(
                entry.updated, known.get(canonical), failures.get(canonical), now
            )
            if why is not None:
                wanted.append((entry, canonical, why))
        return wanted

    async def process(self, fetched: Fetched) -> Stored | None:
        """Extract, then store and queue; None when nothing was stored (no text, unchanged, or
        the daemon is stopping)."""
        try:
            prepared = await self._extract(fetched)
        except (PoolClosed, WorkerLost) as exc:
            # the daemon is stopping (its poll is cut, so the feed is read in full next time),
            # or the entry's own fallback lost its worker too
            log.warning("source=%s url=%s: not stored: %s", fetched.source, fetched.entry.url, exc)
            return None
        record, fingerprint, terms = prepared.record, prepared.fingerprint, prepared.terms
        if record is None or fingerprint is None or terms is None:
            log.warning(
                "source=%s url=%s: no title or text, skipped", fetched.source, fetched.entry.url
            )
            return None
        html = page_html(fetched, record) if self.store_html else None
        return self.store(record, fingerprint, terms, html)

    async def _extract(self, fetched: Fetched) -> Prepared:
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
        elif fetched.html is not None and _from_entry(prepared):
            log.info(
                "source=%s url=%s: no article text found; using the feed entry", fetched.source, url
            )
        return prepared

    def store(
        self,
        record: Record,
        fingerprint: dedup.Fingerprint,
        terms: Terms,
        html: str | None = None,
    ) -> Stored | None:
        """Match the record, then store it (a new article in its story, or a new version of a
        stored one) and queue what it sends, in one transaction; None when a stored article's
        text had not changed. Matching needs only the record, so it runs before the
        transaction: the write lock is held for writes alone."""
        matches = self.match(record)
        with self.db.atomic():
            if self.guard is not None and not self.guard(record.source):
                log.warning(
                    "source=%s url=%s: not stored: a later poll of this source started",
                    record.source,
                    record.url,
                )
                return None
            filed = self._file(record, fingerprint, terms, html)
            if filed is None:
                return None
            enqueued = self.alerts.queue(filed, matches)
        self.stories.index_article(filed.article_id, fingerprint.signature)
        log.info(
            "source=%s url=%s: %s article %d, story %s (%s, %s),"
            " %d watchlist(s) matched, %d alert(s)",
            record.source,
            record.url,
            "new version of" if filed.revised else "stored",
            filed.article_id,
            filed.story_id,
            record.language or "language unknown",
            record.extraction,
            len(matches),
            enqueued,
        )
        return Stored(filed.article_id, filed.story_id, record.title, record.url, matches, enqueued)

    def match(self, record: Record) -> tuple[WatchlistMatch, ...]:
        doc = Document(record.title, record.paragraphs, record.language)
        return tuple(self.watchlists.match(doc, record.source))

    def _file(
        self,
        record: Record,
        fingerprint: dedup.Fingerprint,
        terms: Terms,
        html: str | None,
    ) -> Filed | None:
        """A new article, or a new version of the stored one any of its URLs led to."""
        known = store.first_known(self.db, record.aliases)
        if known is None:
            return self.stories.add(record, fingerprint, html, terms)
        return self.stories.revise(known, record, fingerprint)


def _from_entry(prepared: Prepared) -> bool:
    return prepared.record is None or prepared.record.extraction != "page"
