"""Events: independently written reports of one happening, grouped above stories.

Stories group copies of one text; an event groups the stories that report the same happening in
their own words (an extradition agreed in Rabat, written by four newsrooms). A new story is
compared with the stories of the same language published (or, undated, stored) within
`events.window` of it, and joins the event of the most similar one scoring `events.threshold` or
more, if that event began within the window too; otherwise it starts an event, whose id is its
own story id (so a story alone in its event keeps the alert ids it always had).

What is compared is in the text alone, counted in the extraction workers (`crawler.event_terms`):
TF-IDF weights over the terms, their rarity counted over the stories seen so far (the counts
kept in the database), the title's terms apart, and the time between the two stories (`score`).
Candidates come from an inverted index on each story's most distinctive terms, so a new story is
compared with a few dozen stories, not all of them. The operating point is chosen for precision
(bench/events.py): a wrong merge hides an alert, a missed merge only repeats one.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from alerts.document import PARAGRAPH_SEPARATOR
from alerts.times import parse_time, timestamp
from crawler import store
from crawler.event_terms import Terms, terms_of

# terms of a story's profile (by weight), and the most distinctive of them in the index
PROFILE_TERMS = 80
INDEXED_TERMS = 15
# stories read back and scored for each new story, at most
CANDIDATES = 20
# stories an archive from before events is read for at the first start
WARM_UP_STORIES = 5000


@dataclass(frozen=True)
class Profile:
    """A story as events compare it: its heaviest terms' TF-IDF weights (L2-normalised) and the
    rarity of its title's terms."""

    weights: dict[str, float]
    title: dict[str, float]

    def to_json(self) -> str:
        return json.dumps(
            {
                "w": {term: round(weight, 4) for term, weight in self.weights.items()},
                "t": {term: round(rarity, 3) for term, rarity in self.title.items()},
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Profile:
        data = json.loads(text)
        return cls(data["w"], data["t"])

    def indexed(self) -> list[str]:
        """The most distinctive terms: the ones a similar story is found by."""
        return sorted(self.weights, key=lambda term: -self.weights[term])[:INDEXED_TERMS]


def idf(frequency: int, stories: int) -> float:
    return math.log((stories + 1) / (frequency + 1)) + 1.0


def profile_of(terms: Terms, frequencies: dict[str, int], stories: int) -> Profile:
    """Weights from the document frequencies of the stories seen so far (`stories` of them)."""
    raw = {
        term: (1.0 + math.log(count)) * idf(frequencies.get(term, 0), stories)
        for term, count in terms.counts.items()
    }
    top = sorted(raw.items(), key=lambda item: -item[1])[:PROFILE_TERMS]
    norm = math.sqrt(sum(weight * weight for _, weight in top)) or 1.0
    title = {term: idf(frequencies.get(term, 0), stories) for term in terms.title}
    return Profile({term: weight / norm for term, weight in top}, title)


def signals(a: Profile, b: Profile, hours_apart: float) -> tuple[float, float, float]:
    """What two stories are compared by: their texts' TF-IDF cosine, the rarity-weighted share
    of title terms in common, and the days between them (up to one)."""
    body = sum(weight * b.weights.get(term, 0.0) for term, weight in a.weights.items())
    shared = a.title.keys() & b.title.keys()
    title_weight = min(sum(a.title.values()), sum(b.title.values())) or 1.0
    title = sum(min(a.title[term], b.title[term]) for term in shared) / title_weight
    return body, title, min(abs(hours_apart), 24.0) / 24.0


# A logistic model over the signals (body, title, days, bias), fitted on the labelled pairs
# (bench/events.py prints the fit and its out-of-fold figures): a day apart, a report of the
# same subject is likelier a follow-up.
WEIGHTS = (6.58, 2.77, -1.32, -3.34)


def score(a: Profile, b: Profile, hours_apart: float) -> float:
    """How likely two stories report one happening, 0 to 1."""
    *weights, bias = WEIGHTS
    z = bias + sum(w * x for w, x in zip(weights, signals(a, b, hours_apart), strict=True))
    return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class Placement:
    """The event a new story went to: `joined` when it was an earlier story's event, with the
    story it was found most similar to."""

    event_id: str
    joined: bool
    score: float | None = None
    nearest: str | None = None


class Events:
    """Places each new story of one database in its event (within the story's transaction)."""

    def __init__(self, db: sqlite_utils.Database, window: float, threshold: float) -> None:
        self.db = db
        self.window = window
        self.threshold = threshold

    def place(
        self,
        story_id: str,
        language: str | None,
        terms: Terms,
        published_at: str | None,
        fetched: datetime,
    ) -> Placement:
        """The story's event. A story published more than a window before it was fetched (a
        backlog, a stale or made-up date) starts its own: what it reported is not what the
        stories of the window report, and an old event already alerted would swallow it."""
        at = story_time(published_at, fetched)
        frequencies, stories = store.term_frequencies(self.db, list(terms.counts))
        profile = profile_of(terms, frequencies, stories)
        fresh = fetched - at <= timedelta(seconds=self.window)
        best = self.nearest(profile, language, at) if fresh else None
        placement = (
            Placement(best[0], True, best[1], best[2])
            if best and best[1] >= self.threshold
            else Placement(story_id, False)
        )
        store.add_to_event(
            self.db,
            story_id,
            placement.event_id,
            language or "",
            timestamp(at),
            profile.to_json(),
            profile.indexed(),
            placement.score,
        )
        store.count_terms(self.db, [list(terms.counts)])
        return placement

    def warm_up(self, now: datetime) -> int:
        """A database from before events (or with none yet): its last `WARM_UP_STORIES` stories
        give the terms their rarity, and those of the window get profiles, so the first new
        stories are weighed by what the archive says (not every word alike) and can join the
        events of the stories stored just before the upgrade. Once: returns how many stories
        were read, 0 when the terms were counted already."""
        if store.profiled_stories(self.db) or not (
            rows := store.recent_first_articles(self.db, WARM_UP_STORIES)
        ):
            return 0
        texts = [
            (row, terms_of(row["title"] or "", row["text"].split(PARAGRAPH_SEPARATOR)))
            for row in rows
        ]
        frequencies = Counter(term for _, terms in texts for term in terms.counts)
        window = timedelta(seconds=self.window)
        with self.db.atomic():
            store.count_terms(self.db, [list(terms.counts) for _, terms in texts])
            for row, terms in texts:
                fetched = parse_time(row["fetched_at"]) or now
                at = story_time(row["published_at"], fetched)
                if now - at <= window:
                    profile = profile_of(terms, frequencies, len(texts))
                    store.add_to_event(
                        self.db,
                        row["story_id"],
                        row["story_id"],
                        row["language"] or "",
                        timestamp(at),
                        profile.to_json(),
                        profile.indexed(),
                        None,
                    )
        return len(texts)

    def nearest(
        self, profile: Profile, language: str | None, at: datetime
    ) -> tuple[str, float, str] | None:
        """(event, score, story) of the most similar story within a window of it, if any, whose
        event began within that window too: an event does not grow for as long as its subject
        recurs (three shellings of one town on three days are three events)."""
        window = timedelta(seconds=self.window)
        rows = store.event_candidates(
            self.db,
            profile.indexed(),
            language or "",
            timestamp(at - window),
            timestamp(at + window),
            CANDIDATES,
        )
        scored = [
            (
                row["event_id"],
                score(profile, Profile.from_json(row["profile"]), _hours(at, row["at"])),
                row["story_id"],
            )
            for row in rows
        ]
        return max(scored, key=lambda item: item[1], default=None)


def story_time(published_at: str | None, fetched_at: datetime) -> datetime:
    """When a story happened, as far as the window goes: its publication time when that parses
    and is not later than its fetch (a site's date is not trusted past that), else its fetch."""
    published = parse_time(published_at) if published_at else None
    return published if published is not None and published <= fetched_at else fetched_at


def _hours(at: datetime, stored: str) -> float:
    other = parse_time(stored)
    return abs((at - other).total_seconds()) / 3600 if other else 24.0
