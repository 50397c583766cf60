"""Stories: which story a new article belongs to, and what a story's watchers hear when it grows.

An article joins the story of an earlier one with the same normalised text (content hash), else of
the most similar earlier one sharing at least `dedup.threshold` of its shingles (MinHash LSH),
else it starts a story whose id derives from its own canonical URL. The same canonical URL is the
same article, handled by the pipeline as an update. Alerts are keyed by story, so a later copy
of an alerted story sends nothing; watchlists with `notify_updates` get one notice, at most every
`dedup.update_interval`, when the story reaches a new outlet or its text changes materially.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from alerts import outbox
from alerts.matcher import WatchlistMatch
from alerts.message import ARTICLE_KEYS, Alert
from alerts.times import FORMAT
from alerts.watchlists import Watchlists
from crawler import store
from crawler.config import DedupConfig
from crawler.dedup import NearDuplicateIndex, similarity

log = logging.getLogger("newswatch.stories")

SNIPPET_CHARS = 300


@dataclass(frozen=True)
class Assignment:
    story_id: str
    # "new", "same-text" (content hash) or "near-duplicate" (MinHash LSH)
    how: str
    similarity: float | None = None


def new_story_id(canonical: str) -> str:
    return "st-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def _signatures(db: sqlite_utils.Database) -> Iterator[tuple[int, bytes]]:
    for row in db.execute("SELECT article_id, signature FROM article_signatures"):
        yield row[0], row[1]


class Stories:
    """The story index of one database: rebuilt from the stored signatures when created."""

    def __init__(self, db: sqlite_utils.Database, config: DedupConfig) -> None:
        self.db = db
        self.config = config
        self.index = NearDuplicateIndex(config.threshold)
        self.index.add_all(_signatures(db))
        log.info("story index rebuilt: %d article signature(s)", len(self.index))

    def assign(self, canonical: str, digest: str, signature: bytes | None) -> Assignment:
        row = self.db.execute(
            "SELECT story_id FROM articles WHERE content_hash = ? LIMIT 1", [digest]
        ).fetchone()
        if row:
            return Assignment(row[0], "same-text", 1.0)
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
        marks = ",".join("?" * len(keys))
        rows = self.db.execute(
            "SELECT a.story_id, s.signature FROM article_signatures s"
            f" JOIN articles a ON a.id = s.article_id WHERE s.article_id IN ({marks})",
            keys,
        ).fetchall()
        scored = [(story, similarity(signature, stored)) for story, stored in rows]
        best = max(scored, key=lambda pair: pair[1], default=None)
        return best if best and best[1] >= self.config.threshold else None

    def save_signature(self, article_id: int, signature: bytes | None) -> None:
        """Within the article's transaction; `index` it once that has committed."""
        if signature is None:
            self.db.execute("DELETE FROM article_signatures WHERE article_id = ?", [article_id])
        else:
            self.db["article_signatures"].upsert(
                {"article_id": article_id, "signature": signature}, pk="article_id"
            )

    def signature(self, article_id: int) -> bytes | None:
        row = self.db.execute(
            "SELECT signature FROM article_signatures WHERE article_id = ?", [article_id]
        ).fetchone()
        return row[0] if row else None

    def index_article(self, article_id: int, signature: bytes | None) -> None:
        if signature is not None:
            self.index.add(article_id, signature)

    def is_material(self, old: bytes | None, new: bytes | None) -> bool:
        if old is None or new is None:
            return True
        return 1.0 - similarity(old, new) >= self.config.material_change


def story_outlets(db: sqlite_utils.Database, story_id: str) -> set[str]:
    rows = db.execute("SELECT DISTINCT source FROM articles WHERE story_id = ?", [story_id])
    return {row[0] for row in rows}


def story_summary(db: sqlite_utils.Database, story_id: str) -> dict[str, Any]:
    """What an alert says of the story: its id and how many articles carry it so far."""
    return {"id": story_id, "articles": store.story_size(db, story_id)}


def watchlist_alert(
    article: dict[str, Any],
    story: dict[str, Any],
    watchlist: str,
    channel: str,
    match: WatchlistMatch | None,
    update: int = 0,
) -> Alert:
    """The message for a watchlist on a stored article: its alert, or with `update` ≥ 1 that
    alert's N-th update notice (same id, `:update:N`, so receivers can tell them apart). A
    notice for a watchlist the new text no longer matches shows the text's opening instead."""
    key = outbox.alert_id(watchlist, story["id"], channel)
    return Alert(
        id=f"{key}:update:{update}" if update else key,
        watchlist=watchlist,
        article={name: article[name] for name in ARTICLE_KEYS},
        story=story,
        matches=[hit.to_dict() for hit in match.hits] if match else [],
        matches_total=match.hits_total if match else 0,
        snippet=match.snippet if match else article["text"][:SNIPPET_CHARS],
    )


def notify_updates(
    db: sqlite_utils.Database,
    watchlists: Watchlists,
    config: DedupConfig,
    article: dict[str, Any],
    story: dict[str, Any],
    matches: tuple[WatchlistMatch, ...],
    reason: str,
) -> int:
    """Queue one update notice per (watchlist, channel) already alerted on this story whose
    watchlist asks for `notify_updates`; a notice still waiting absorbs this one, and none goes
    out sooner than `update_interval` after the last thing sent for that story and channel."""
    story_id = story["id"]
    alerted = outbox.alerted(db, story_id)
    hits = {match.watchlist: match for match in matches}
    queued = 0
    for watchlist, channel in alerted:
        wanted = watchlists.configs.get(watchlist)
        if wanted is None or not wanted.notify_updates:
            continue
        match = hits.get(watchlist)
        queued += _notice(db, config, article, story, match, watchlist, channel, reason)
    return queued


def _notice(
    db: sqlite_utils.Database,
    config: DedupConfig,
    article: dict[str, Any],
    story: dict[str, Any],
    match: WatchlistMatch | None,
    watchlist: str,
    channel: str,
    reason: str,
) -> int:
    story_id = story["id"]
    last_notice, waiting, last_out = outbox.notice_state(db, watchlist, story_id, channel)
    if waiting:
        return 0
    number = last_notice + 1
    not_before = _parse(last_out) + timedelta(seconds=config.update_interval)
    alert = watchlist_alert(article, story, watchlist, channel, match, update=number)
    added = outbox.enqueue(db, alert, channel, article["id"], notice=number, not_before=not_before)
    if added:
        log.info(
            "source=%s url=%s: story %s %s; update notice %d queued for %s via %s",
            article["source"],
            article["url"],
            story_id,
            reason,
            number,
            watchlist,
            channel,
        )
    return int(added)


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoryRow:
    id: str
    articles: int
    outlets: list[str]
    first_seen: str
    last_seen: str
    title: str


def list_stories(db: sqlite_utils.Database, since: str | None = None) -> list[StoryRow]:
    """Stories seen (first or last) since `since` (ISO UTC), most recently active first; the
    title is the first copy's."""
    rows = db.execute(
        "SELECT story_id, count(*), group_concat(DISTINCT source), min(fetched_at),"
        " max(coalesce(updated_at, fetched_at)),"
        " (SELECT title FROM articles f WHERE f.story_id = a.story_id ORDER BY f.id LIMIT 1)"
        " FROM articles a GROUP BY story_id"
        " HAVING max(coalesce(updated_at, fetched_at)) >= ?"
        " ORDER BY 5 DESC, 1",
        [since or ""],
    ).fetchall()
    return [
        StoryRow(story, count, sorted((outlets or "").split(",")), first, last, title or "")
        for story, count, outlets, first, last, title in rows
    ]
