"""Events: which event each story is in, the profiles recent stories are compared by, the
inverted index that finds them, and the document frequencies their terms are weighted by."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from alerts.database import Database
from crawler.store.database import chunks, execute_many, joined

# The `event_terms` row of this (empty) term counts the stories profiled: no term is empty, and
# the count moves in the same statement as the terms' own.
STORIES = ""


def term_frequencies(db: Database, terms: list[str]) -> tuple[dict[str, int], int]:
    """How many profiled stories have each term, and how many stories were profiled."""
    found: dict[str, int] = {}
    for chunk, marks in chunks(terms):
        found.update(
            db.execute(
                f"SELECT term, stories FROM event_terms WHERE term IN ({marks})", chunk
            ).fetchall()
        )
    return found, profiled_stories(db)


def profiled_stories(db: Database) -> int:
    """How many stories have had their terms counted (0: none yet, a new or upgraded file)."""
    row = db.execute("SELECT stories FROM event_terms WHERE term = ?", [STORIES]).fetchone()
    return row[0] if row else 0


def add_to_event(
    db: Database,
    story_id: str,
    event_id: str,
    language: str,
    at: str,
    profile: str,
    indexed: list[str],
    score: float | None,
) -> None:
    """A story placed in its event: its profile and its index entries."""
    db.execute(
        "INSERT INTO story_events (story_id, event_id, language, at, score, profile)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [story_id, event_id, language, at, score, profile],
    )
    execute_many(
        db,
        "INSERT INTO event_index (term, language, at, story_id) VALUES (?, ?, ?, ?)",
        [(term, language, at, story_id) for term in indexed],
    )


def count_terms(db: Database, stories: list[list[str]]) -> None:
    """Each story's distinct terms counted once, and the stories counted."""
    counts = Counter(term for terms in stories for term in terms)
    counts[STORIES] = len(stories)
    execute_many(
        db,
        "INSERT INTO event_terms (term, stories) VALUES (?, ?)"
        " ON CONFLICT (term) DO UPDATE SET stories = event_terms.stories + excluded.stories",
        list(counts.items()),
    )


def recent_first_articles(db: Database, limit: int) -> list[dict[str, Any]]:
    """The first article of each of the `limit` stories stored last that still have a text:
    what a database from before events weighs its terms and profiles its recent stories by."""
    return list(
        db.query(
            "SELECT story_id, title, text, language, published_at, fetched_at FROM articles"
            " WHERE pruned_at IS NULL AND id IN (SELECT min(id) FROM articles GROUP BY story_id)"
            " ORDER BY id DESC LIMIT ?",
            [limit],
        )
    )


# Reports of one happening share several of their most distinctive terms: every labelled pair
# the score joins shares two or more (bench/events.py), and a story sharing one is not scored.
MIN_SHARED = 2


def event_candidates(
    db: Database,
    terms: list[str],
    language: str,
    since: str,
    until: str,
    limit: int,
) -> list[dict[str, Any]]:
    """Stories of `language` between `since` and `until` sharing the most index terms with
    `terms` (two at least), whose event's first story is no older than `since`, with their
    event and profile."""
    marks = ",".join("?" * len(terms))
    return list(
        db.query(
            "SELECT s.story_id, s.event_id, s.at, s.profile FROM story_events s JOIN ("
            "  SELECT story_id, count(*) AS shared FROM event_index"
            f"  WHERE term IN ({marks}) AND language = ? AND at >= ? AND at <= ?"
            "  GROUP BY story_id HAVING count(*) >= ? ORDER BY shared DESC, story_id LIMIT ?"
            ") c ON c.story_id = s.story_id"
            " JOIN story_events first ON first.story_id = s.event_id AND first.at >= ?"
            " WHERE s.profile IS NOT NULL",
            [*terms, language, since, until, MIN_SHARED, limit, since],
        )
    )


def event_of(db: Database, story_id: str) -> str:
    """A story's event; a story stored before events were kept is an event of its own."""
    row = db.execute("SELECT event_id FROM story_events WHERE story_id = ?", [story_id]).fetchone()
    return row[0] if row else story_id


def forget_event_profiles(db: Database, before: str, limit: int) -> int:
    """One batch of at most `limit` stories older than `before` (older than any window compares
    with) losing their profile and index entries, in one transaction: their events stay, the
    means of joining them go. Returns how many."""
    stories = [
        row[0]
        for row in db.execute(
            "SELECT story_id FROM story_events WHERE at < ? AND profile IS NOT NULL LIMIT ?",
            [before, limit],
        )
    ]
    if not stories:
        return 0
    marks = ",".join("?" * len(stories))
    with db.atomic():
        db.execute(f"DELETE FROM event_index WHERE story_id IN ({marks})", stories)
        db.execute(f"UPDATE story_events SET profile = NULL WHERE story_id IN ({marks})", stories)
    return len(stories)


@dataclass(frozen=True)
class EventReport:
    """One story of an event: its first article's outlet, title, URL and time."""

    story_id: str
    source: str
    title: str
    url: str
    fetched_at: str
    articles: int
    outlets: list[str]


def event_reports(db: Database, event_id: str, limit: int | None = None) -> list[EventReport]:
    """The stories of an event, first reported first, at most `limit` of them, read by their
    ids first so a long event is read no further than asked (a story that predates events is
    its own event's one report)."""
    bound = " LIMIT ?" if limit is not None else ""
    rows = db.execute(
        "SELECT s.story_id, s.articles, s.outlets, f.source, coalesce(f.title, ''), f.url,"
        " f.fetched_at FROM (SELECT story_id, count(*) AS articles,"
        f"  {joined(db, 'DISTINCT source')} AS outlets, min(id) AS first FROM articles"
        "  WHERE story_id IN (SELECT story_id FROM (SELECT story_id FROM story_events"
        f"   WHERE event_id = ? ORDER BY at, story_id{bound}) listed UNION SELECT ?)"
        "  GROUP BY story_id) s JOIN articles f ON f.id = s.first ORDER BY s.first" + bound,
        [event_id, *([limit] if limit is not None else []), event_id]
        + ([limit] if limit is not None else []),
    ).fetchall()
    return [
        EventReport(story, source, title, url, fetched, count, sorted(outlets.split(",")))
        for story, count, outlets, source, title, url, fetched in rows
    ]


def event_story_count(db: Database, event_id: str) -> int:
    """How many stories an event has; an event of a story that predates events has one."""
    row = db.execute("SELECT count(*) FROM story_events WHERE event_id = ?", [event_id]).fetchone()
    return max(1, row[0])


@dataclass(frozen=True)
class EventRow:
    """An event as `newswatch events` shows it."""

    id: str
    stories: list[str]
    outlets: list[str]
    first_seen: str
    last_seen: str
    title: str


def list_events(db: Database, since: str | None = None) -> list[EventRow]:
    """Events with a story seen since `since` (ISO UTC), most recently active first; the title
    is the first report's (looked up once the events are grouped: PostgreSQL refuses a
    subquery on the grouping expression's columns)."""
    rows = db.execute(
        "SELECT g.event, g.stories, g.outlets, g.first_seen, g.last_seen,"
        " (SELECT title FROM articles f WHERE f.story_id = g.event ORDER BY f.id LIMIT 1)"
        " FROM (SELECT coalesce(e.event_id, a.story_id) AS event,"
        f"  {joined(db, 'DISTINCT a.story_id')} AS stories,"
        f"  {joined(db, 'DISTINCT a.source')} AS outlets, min(a.fetched_at) AS first_seen,"
        "  max(coalesce(a.updated_at, a.fetched_at)) AS last_seen"
        "  FROM articles a LEFT JOIN story_events e ON e.story_id = a.story_id"
        "  GROUP BY coalesce(e.event_id, a.story_id)"
        "  HAVING max(coalesce(a.updated_at, a.fetched_at)) >= ?) g"
        " ORDER BY g.last_seen DESC, g.event",
        [since or ""],
    ).fetchall()
    return [
        EventRow(
            event, sorted(stories.split(",")), sorted(outlets.split(",")), first, last, title or ""
        )
        for event, stories, outlets, first, last, title in rows
    ]
