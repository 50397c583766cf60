"""Event grouping (issue 14): prints its figures, asserts nothing.

1. Labelled pairs (bench/event_labels.tsv, drawn by bench/event_pairs.py from
   ../shared/data/saudinewsnet): precision and recall of "same event" for the daemon's score
   (`crawler.events.score`, profiles weighted by the document frequencies of the articles crawled
   before each, as the daemon weighs them) beside a plain TF-IDF cosine; the same model refitted
   on 4/5 of the pairs and scored on the fifth (out-of-fold, 5 folds × 3 seeds), since the
   shipped weights were fitted on all of them.
2. Stream: every article of the corpus stored in crawl order through the daemon's stories and
   events (`crawler.stories.Stories` with `crawler.events.Events` on a SQLite file), the country
   presets as watchlists: alerts (watchlist, channel = 1) with and without event grouping; the
   labelled "same" pairs the inverted index finds as candidates; merges written to `--merges` for
   reading by hand.
3. Cost: time to place one new story with `--window-stories` stories in the window (median of
   `--placements`), and the database's size per story.

Usage: python bench/events.py [--data DIR] [--merges FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlite_utils
from event_pairs import (
    DATA,
    DIFFERENT,
    SAME,
    Article,
    LabelledPair,
    load_articles,
    load_labels,
    tfidf,
)
from scipy.optimize import minimize

from alerts.concepts import ConceptSpec
from alerts.document import Document
from alerts.presets import country_codes
from alerts.times import timestamp
from alerts.watchlists import WatchlistConfig, Watchlists
from crawler import dedup, store
from crawler.articles import Record
from crawler.config import DedupConfig, EventsConfig
from crawler.event_terms import terms_of
from crawler.events import WEIGHTS, Events, Profile, profile_of, score, signals
from crawler.stories import Stories

FOLDS, SEEDS = 5, 3


@dataclass(frozen=True)
class Curve:
    precision_at_60: float
    recall_at_90: float
    points: list[tuple[float, float, float]]


def curve(scores: list[float], truth: list[bool]) -> Curve:
    """Precision/recall at every threshold, from the highest score down."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.cumsum(np.asarray(truth)[order])
    precision = hits / np.arange(1, len(order) + 1)
    recall = hits / max(1, sum(truth))
    points = [(scores[order[i]], precision[i], recall[i]) for i in range(len(order))]
    at_60 = max((p for _, p, r in points if r >= 0.6), default=0.0)
    at_90 = max((r for _, p, r in points if p >= 0.9), default=0.0)
    return Curve(at_60, at_90, points)


def operating_point(
    scores: list[float], truth: list[bool], threshold: float
) -> tuple[float, float]:
    chosen = [t for s, t in zip(scores, truth, strict=True) if s >= threshold]
    precision = sum(chosen) / len(chosen) if chosen else 0.0
    return precision, sum(chosen) / max(1, sum(truth))


def profiles_in_crawl_order(articles: list[Article], wanted: set[str]) -> dict[str, Profile]:
    """The profile each wanted article gets when stored: weighted by the frequencies of the
    articles crawled before it."""
    frequencies: Counter[str] = Counter()
    found = {}
    for count, article in enumerate(articles):
        terms = terms_of(article.title, article.paragraphs)
        if article.id in wanted:
            found[article.id] = profile_of(terms, frequencies, count)
        frequencies.update(terms.counts.keys())
    return found


def fit(features: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Logistic regression (L2 0.1) by likelihood: the weights the daemon ships."""
    design = np.c_[features, np.ones(len(features))]

    def loss(weights: np.ndarray) -> float:
        z = design @ weights
        return float(np.sum(np.logaddexp(0, z) - truth * z) + 0.1 * np.sum(weights[:-1] ** 2))

    return minimize(loss, np.zeros(design.shape[1])).x


def out_of_fold(features: np.ndarray, truth: np.ndarray, seed: int) -> list[float]:
    folds = np.random.RandomState(seed).randint(0, FOLDS, len(truth))
    scores = np.zeros(len(truth))
    for fold in range(FOLDS):
        weights = fit(features[folds != fold], truth[folds != fold])
        held = features[folds == fold]
        scores[folds == fold] = 1 / (1 + np.exp(-(np.c_[held, np.ones(len(held))] @ weights)))
    return list(scores)


def hours(pair: LabelledPair) -> float:
    return abs((pair.a.at - pair.b.at).total_seconds()) / 3600


def labelled(articles: list[Article], threshold: float) -> None:
    every = load_labels(articles)
    pairs = [pair for pair in every if pair.label in (SAME, DIFFERENT)]
    labels = Counter(pair.label for pair in every)
    truth = [pair.label == SAME for pair in pairs]
    print(f"# Labelled pairs: {sum(labels.values())} ({dict(labels)}); scored: {len(pairs)}")
    profiles = profiles_in_crawl_order(articles, {p.a.id for p in pairs} | {p.b.id for p in pairs})
    shipped = [score(profiles[p.a.id], profiles[p.b.id], hours(p)) for p in pairs]
    matrix = tfidf(articles)
    row = {article.id: number for number, article in enumerate(articles)}
    cosine = [float(matrix[row[p.a.id]].multiply(matrix[row[p.b.id]]).sum()) for p in pairs]
    features = np.array([signals(profiles[p.a.id], profiles[p.b.id], hours(p)) for p in pairs])
    refit = fit(features, np.asarray(truth, dtype=float))
    print(f"weights (body, title, days, bias): shipped {WEIGHTS}, refitted {np.round(refit, 2)}")
    folds = [curve(out_of_fold(features, np.asarray(truth, float), s), truth) for s in range(SEEDS)]
    rows: list[tuple[str, Callable[[Curve], float]]] = [
        ("precision at recall ≥ 0.60", lambda c: c.precision_at_60),
        ("recall at precision ≥ 0.90", lambda c: c.recall_at_90),
    ]
    baseline, ours = curve(cosine, truth), curve(shipped, truth)
    print("figure | TF-IDF cosine | events score (fitted on all) | out-of-fold (median of 3)")
    for name, take in rows:
        held = statistics.median(take(c) for c in folds)
        print(f"{name} | {take(baseline):.2f} | {take(ours):.2f} | {held:.2f}")
    print("recall | precision: TF-IDF cosine | events score")
    for wanted in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        best = [
            max((p for _, p, r in c.points if r >= wanted), default=0) for c in (baseline, ours)
        ]
        print(f"{wanted:.1f} | {best[0]:.2f} | {best[1]:.2f}")
    precision, recall = operating_point(shipped, truth, threshold)
    print(
        f"operating point (events.threshold {threshold}):"
        f" precision {precision:.2f}, recall {recall:.2f}"
    )


def record_of(article: Article) -> Record:
    return Record(
        source=article.source,
        url=article.url,
        canonical_url=article.url,
        aliases=frozenset({article.url}),
        title=article.title,
        paragraphs=article.paragraphs,
        language="ar",
        published_at=article.at.replace(tzinfo=UTC).isoformat(),
        extraction="page",
    )


def stream(articles: list[Article], config: EventsConfig, merges: Path | None) -> None:
    """Every article through stories and events, in crawl order; alerts counted per watchlist."""
    codes = country_codes()
    concepts = {c: ConceptSpec.model_validate({"preset": f"country/{c}"}) for c in codes}
    watchlists = Watchlists(concepts, [WatchlistConfig(name=c, rule=c) for c in codes])
    with tempfile.TemporaryDirectory() as folder:
        db = store.open_db(Path(folder) / "events.db")
        events = Events(db, config.window, config.threshold)
        # stories without events, each new one placed here as `Stories.add` places it, but at
        # the time the corpus crawled it rather than now
        stories = Stories(db, DedupConfig())
        story_event: dict[str, str] = {}
        by_story: set[tuple[str, str]] = set()
        by_event: set[tuple[str, str]] = set()
        joined = []
        event_of: dict[str, str] = {}
        spent = 0.0
        for article in articles:
            record = record_of(article)
            fingerprint = dedup.fingerprint(record.title, record.paragraphs)
            terms = terms_of(record.title, record.paragraphs)
            start = time.perf_counter()
            with db.atomic():
                filed = stories.add(record, fingerprint, None, terms)
                if filed.story_id not in story_event:
                    crawled = article.at.replace(tzinfo=UTC)
                    placed = events.place(filed.story_id, "ar", terms, record.published_at, crawled)
                    story_event[filed.story_id] = placed.event_id
                    if placed.joined:
                        joined.append((article, placed.event_id))
            spent += time.perf_counter() - start
            stories.index_article(filed.article_id, fingerprint.signature)
            event = story_event[filed.story_id]
            event_of[article.id] = event
            for match in watchlists.match(Document(record.title, record.paragraphs, "ar")):
                by_story.add((match.watchlist, filed.story_id))
                by_event.add((match.watchlist, event))
        story_count = len(story_event)
        event_count = len(set(event_of.values()))
        days = (articles[-1].at - articles[0].at).days + 1
        print(f"# Stream: {len(articles)} articles over {days} days (crawl order)")
        print(
            f"stories {story_count}, events {event_count};"
            f" new stories joining an event: {len(joined)}"
        )
        print(
            f"store an article with its story and event: {1000 * spent / len(articles):.2f} ms mean"
        )
        alerts_story, alerts_event = (
            Counter(w for w, _ in by_story),
            Counter(w for w, _ in by_event),
        )
        print(
            f"alerts, all country watchlists: {sum(alerts_story.values())} per story, "
            f"{sum(alerts_event.values())} per event "
            f"({1 - sum(alerts_event.values()) / max(1, sum(alerts_story.values())):.1%} fewer)"
        )
        print("watchlist | alerts per story | per event")
        for code, count in alerts_story.most_common(10):
            print(f"{code} | {count} | {alerts_event[code]}")
        grouped(articles, event_of)
        if merges:
            write_merges(db, joined, articles, merges)
        db.close()


def grouped(articles: list[Article], event_of: dict[str, str]) -> None:
    """The labelled pairs the stream put in one event, by label."""
    found: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for pair in load_labels(articles):
        totals[pair.label] += 1
        found[pair.label] += event_of[pair.a.id] == event_of[pair.b.id]
    shown = ", ".join(f"{label} {found[label]}/{totals[label]}" for label in sorted(totals))
    print(f"labelled pairs the stream put in one event: {shown}")


def write_merges(
    db: sqlite_utils.Database,
    joined: list[tuple[Article, str]],
    articles: list[Article],
    path: Path,
) -> None:
    """30 merges drawn at random, each beside its event's first report, for reading."""
    by_url = {article.url: article for article in articles}
    rng = random.Random(14)
    lines = []
    for article, event in rng.sample(joined, min(30, len(joined))):
        first = by_url[store.event_reports(db, event, 1)[0].url]
        for heading, shown in (("NEW", article), ("EVENT'S FIRST REPORT", first)):
            text = " ".join(shown.paragraphs)[:1500]
            lines.append(
                f"### {heading}: {shown.source}, crawled {shown.at:%Y-%m-%d %H:%M}\n"
                f"TITLE: {shown.title}\n\n{text}\n"
            )
        lines.insert(len(lines) - 2, f"## MERGE {article.id} {first.id}\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    print(f"{len(lines) // 3} merges written to {path} for reading")


def cost(
    articles: list[Article], config: EventsConfig, window_stories: int, placements: int
) -> None:
    """Placing a story among `window_stories` stories in the window: the corpus' real texts,
    stored again under new ids and spread over the window (written straight to the tables the
    daemon writes, without being placed, so the fill takes minutes, not an hour)."""
    terms = [terms_of(a.title, a.paragraphs) for a in articles]
    frequencies: Counter[str] = Counter()
    for counted in terms:
        frequencies.update(counted.counts.keys())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cost.db"
        db = store.open_db(path)
        events = Events(db, config.window, config.threshold)
        now = datetime.now(UTC)
        with db.atomic():
            for number in range(window_stories):
                at = now - timedelta(seconds=config.window * number / window_stories)
                counted = terms[number % len(terms)]
                profile = profile_of(counted, frequencies, len(terms))
                story = f"st-fill-{number}"
                store.add_to_event(
                    db,
                    story,
                    story,
                    "ar",
                    timestamp(at),
                    profile.to_json(),
                    profile.indexed(),
                    None,
                )
            store.count_terms(
                db, [list(terms[n % len(terms)].counts) for n in range(window_stories)]
            )
        times = []
        rng = random.Random(3)
        for number in range(placements):
            chosen = terms[rng.randrange(len(terms))]
            start = time.perf_counter()
            with db.atomic():
                events.place(f"st-new-{number}", "ar", chosen, None, now)
            times.append(time.perf_counter() - start)
        db.close()
        size = path.stat().st_size
    times.sort()
    print(f"# Cost: {window_stories:,} stories in the window")
    print(
        f"place one new story: median {1000 * statistics.median(times):.2f} ms,"
        f" p95 {1000 * times[int(0.95 * len(times))]:.2f} ms ({placements} placements)"
    )
    print(f"database: {size / window_stories / 1024:.1f} KiB per story (profiles, index, terms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--merges", type=Path)
    parser.add_argument("--window-stories", type=int, default=100_000)
    parser.add_argument("--placements", type=int, default=500)
    parser.add_argument("--cost-only", action="store_true", help="only part 3")
    args = parser.parse_args()
    if not (args.data / "saudinewsnet").is_dir():
        print(f"no SaudiNewsNet data under {args.data}: nothing to measure", file=sys.stderr)
        return 1
    config = EventsConfig()
    articles = load_articles(args.data)
    if not args.cost_only:
        labelled(articles, config.threshold)
        stream(articles, config, args.merges)
    cost(articles, config, args.window_stories, args.placements)
    return 0


if __name__ == "__main__":
    sys.exit(main())
