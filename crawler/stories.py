"""Stories: which story an article belongs to, and how it changes the story when stored.

An article joins the story of an earlier one with the same normalised text (content hash), else of
the most similar earlier one sharing at least `dedup.threshold` of its shingles (MinHash LSH),
else it starts a story whose id derives from its own canonical URL, and that new story is placed
in its event (`crawler.events`). The same canonical URL is the
same article: a new version of it, kept when its text changed. What the story's watchers hear of
it is said in words (`Filed.change`): the story reached a new outlet, an article's text changed
materially (by `dedup.material_change` of its shingles), or a new story joined its event.

The near-duplicate index is one daemon's memory on SQLite, and a table of band hashes several
hosts share on PostgreSQL (`story_index`); the storing is the same on both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from alerts.database import POSTGRESQL, Database, dialect
from alerts.times import timestamp
from crawler import dedup, store
from crawler.articles import Record
from crawler.config import DedupConfig
from crawler.dedup import Banding, NearDuplicateIndex, similarity
from crawler.event_terms import Terms
from crawler.events import Events

log = logging.getLogger("newswatch.stories")


@dataclass(frozen=True)
class Assignment:
    """The story a new article joins, and why."""

    story_id: str
    # "new", "same-text" (content hash) or "near-duplicate" (MinHash LSH)
    how: str
    similarity: float | None = None


@dataclass(frozen=True)
class Filed:
    """An article stored in its story and event: the change in words ("" when none to tell),
    whether it was a new version of a stored article, and whether it is a new story that joined
    an earlier story's event (then the change is the event's alone, not the story's)."""

    article_id: int
    story_id: str
    event_id: str
    change: str
    revised: bool = False
    joined_event: bool = False


def new_story_id(canonical: str) -> str:
    return "st-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


class StoryIndex(Protocol):
    """Where the stored articles a text may be a near-copy of are found. The storing
    transaction `claim`s the text before looking it up, and the index learns of the article
    `stored` inside that transaction or `committed` after it, whichever its engine needs."""

    def claim(self, digest: str, signature: bytes | None) -> None: ...

    def candidates(self, signature: bytes) -> list[int]: ...

    def stored(self, article_id: int, signature: bytes | None) -> None: ...

    def committed(self, article_id: int, signature: bytes | None) -> None: ...


class MemoryIndex:
    """One daemon on its SQLite file: the LSH bands in memory (`NearDuplicateIndex`), rebuilt
    from the stored signatures at start; an article enters once its transaction committed, so
    a rolled-back one never does."""

    def __init__(self, db: Database, threshold: float) -> None:
        self.index = NearDuplicateIndex(threshold)
        self.index.add_all(store.all_signatures(db))
        log.info("story index rebuilt: %d article signature(s)", len(self.index))

    def claim(self, digest: str, signature: bytes | None) -> None:
        """One daemon stores one article at a time: no other can be storing a copy."""

    def candidates(self, signature: bytes) -> list[int]:
        return self.index.candidates(signature)

    def stored(self, article_id: int, signature: bytes | None) -> None:
        """Entered once committed, not before."""

    def committed(self, article_id: int, signature: bytes | None) -> None:
        if signature is not None:
            self.index.add(article_id, signature)


class BandTable:
    """Several hosts on one PostgreSQL database: the LSH bands are rows of `story_bands`,
    written with their article in its transaction, so each host finds what every other has
    committed and nothing is rebuilt at start. Before a text is looked up its transaction locks
    the text's content hash and band hashes, in sorted order: a copy or near-copy being stored
    on another host at the same moment shares at least one of them, so one transaction waits
    for the other's commit and then finds its article (sorted, two never wait on each other)."""

    def __init__(self, db: Database, threshold: float) -> None:
        self.db = db
        self.banding = Banding(threshold)

    def _hashes(self, signature: bytes) -> list[int]:
        """Band hashes as PostgreSQL's signed bigint holds them, band 0 first."""
        return self.banding.of(signature).view("<i8").tolist()

    def claim(self, digest: str, signature: bytes | None) -> None:
        keys = [int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)]
        store.lock_texts(self.db, keys + (self._hashes(signature) if signature else []))

    def candidates(self, signature: bytes) -> list[int]:
        return store.band_candidates(self.db, self._hashes(signature))

    def stored(self, article_id: int, signature: bytes | None) -> None:
        store.save_bands(self.db, article_id, self._hashes(signature) if signature else [])

    def committed(self, article_id: int, signature: bytes | None) -> None:
        """Written with the article already."""


def story_index(db: Database, threshold: float) -> StoryIndex:
    if dialect(db) == POSTGRESQL:
        return BandTable(db, threshold)
    return MemoryIndex(db, threshold)


class Stories:
    """The stories of one database: its near-duplicate index (`story_index`) and the storing
    of articles into their stories."""

    def __init__(self, db: Database, config: DedupConfig, events: Events | None = None) -> None:
        self.db = db
        self.config = config
        self.events = events
        self.index = story_index(db, config.threshold)

    def assign(self, canonical: str, digest: str, signature: bytes | None) -> Assignment:
        self.index.claim(digest, signature)
        same_text = store.story_of_text(self.db, digest)
        if same_text:
            return Assignment(same_text, "same-text", 1.0)
        near = self.nearest(signature) if signature else None
        if near:
            return Assignment(near[0], "near-duplicate", near[1])
        return Assignment(new_story_id(canonical), "new")

    def nearest(self, signature: bytes) -> tuple[str, float] | None:
        """The story of the most similar stored article at or above the threshold: LSH gives
        candidates, their stored signatures confirm (an index entry whose article was rolled
        back has no signature and drops out here)."""
        keys = self.index.candidates(signature)
        if not keys:
            return None
        rows = store.stories_and_signatures(self.db, keys)
        scored = [(story, similarity(signature, stored)) for story, stored in rows]
        best = max(scored, key=lambda pair: pair[1], default=None)
        return best if best and best[1] >= self.config.threshold else None

    def add(
        self,
        record: Record,
        fingerprint: dedup.Fingerprint,
        html: str | None,
        terms: Terms,
    ) -> Filed:
        """Store a new article in its story (a new story in its event), within the caller's
        transaction (`index_article` once it has committed)."""
        digest, signature = fingerprint.content_hash, fingerprint.signature
        assignment = self.assign(record.canonical_url, digest, signature)
        story_id = assignment.story_id
        outlets = store.story_outlets(self.db, story_id)
        fetched = datetime.now(UTC)
        now = timestamp(fetched)
        article_id = store.insert_article(
            self.db,
            {
                "url": record.url,
                "canonical_url": record.canonical_url,
                "source": record.source,
                "title": record.title,
                "text": record.text,
                "language": record.language,
                "published_at": record.published_at,
                "fetched_at": now,
                "last_fetched_at": now,
                "content_hash": digest,
                "extraction": record.extraction,
                "story_id": story_id,
                "html": html,
                "source_updated_at": record.updated,
            },
        )
        store.remember_urls(self.db, article_id, set(record.aliases))
        store.save_signature(self.db, article_id, signature)
        self.index.stored(article_id, signature)
        if assignment.how != "new":
            log.info(
                "source=%s url=%s: joins story %s (%s, similarity %.2f)",
                record.source,
                record.url,
                story_id,
                assignment.how,
                assignment.similarity,
            )
        if assignment.how == "new":
            return self._new_story(record, article_id, story_id, terms, fetched)
        grew = bool(outlets) and record.source not in outlets
        change = f"reached a new outlet ({record.source})" if grew else ""
        return Filed(article_id, story_id, store.event_of(self.db, story_id), change)

    def _new_story(
        self,
        record: Record,
        article_id: int,
        story_id: str,
        terms: Terms,
        fetched: datetime,
    ) -> Filed:
        """A new story starts an event, or joins the event of an earlier story reporting the same
        happening in other words."""
        if self.events is None:
            return Filed(article_id, story_id, story_id, "")
        placement = self.events.place(
            story_id, record.language, terms, record.published_at, fetched
        )
        if not placement.joined:
            return Filed(article_id, story_id, placement.event_id, "")
        log.info(
            "source=%s url=%s: story %s joins event %s (nearest story %s, score %.2f)",
            record.source,
            record.url,
            story_id,
            placement.event_id,
            placement.nearest,
            placement.score,
        )
        change = f"reported again, by {record.source}"
        return Filed(article_id, story_id, placement.event_id, change, joined_event=True)

    def revise(
        self, known: dict[str, Any], record: Record, fingerprint: dedup.Fingerprint
    ) -> Filed | None:
        """The listing said a stored article changed: keep the old text as a version and store
        the new one, unless the text is the same (or only the feed summary could be had this
        time). None when nothing changed."""
        digest, signature = fingerprint.content_hash, fingerprint.signature
        worse = record.extraction != "page" and known["extraction"] == "page"
        if digest == known["content_hash"] or worse:
            store.note_listing_update(self.db, known["id"], record.updated)
            log.info(
                "source=%s url=%s: listed as updated, text unchanged", record.source, record.url
            )
            return None
        self.index.claim(digest, signature)
        previous = store.article_signature(self.db, known["id"])
        store.replace_text(
            self.db,
            known["id"],
            {
                "title": record.title,
                "text": record.text,
                "content_hash": digest,
                "language": record.language,
                "extraction": record.extraction,
                "source_updated_at": record.updated or known["source_updated_at"],
                "last_fetched_at": timestamp(),
            },
        )
        store.save_signature(self.db, known["id"], signature)
        self.index.stored(known["id"], signature)
        material = self.is_material(previous, signature)
        change = "text changed materially" if material else ""
        event_id = store.event_of(self.db, known["story_id"])
        return Filed(known["id"], known["story_id"], event_id, change, revised=True)

    def index_article(self, article_id: int, signature: bytes | None) -> None:
        """The article's transaction committed."""
        self.index.committed(article_id, signature)

    def is_material(self, old: bytes | None, new: bytes | None) -> bool:
        if old is None or new is None:
            return True
        return 1.0 - similarity(old, new) >= self.config.material_change
