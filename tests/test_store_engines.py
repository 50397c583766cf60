"""The crawler's store on both engines: every public store call the daemon, the CLI and the web
app make answers the same on the SQLite file and on PostgreSQL for the same inputs, and what
PostgreSQL stores comes back byte for byte, hostile text included."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.database import POSTGRESQL, Database, dialect
from alerts.times import parse_time, timestamp
from crawler import retention, store
from crawler.config import StorageConfig
from crawler.store.articles import READ_PAGE

OLD = "2025-03-01T08:00:00Z"
LATER = "2025-03-02T09:30:00Z"


def _article(number: int, **fields: Any) -> dict[str, Any]:
    url = f"https://example.org/news/{number}"
    return {
        "url": url,
        "canonical_url": url,
        "source": f"outlet-{number % 3}",
        "title": f"Story {number}",
        "text": f"Paragraph one of {number}.\n\nParagraph two.",
        "language": "en",
        "published_at": OLD,
        "fetched_at": OLD,
        "content_hash": f"hash-{number}",
        "story_id": f"st-{number // 2}",
        **fields,
    }


def _store(db: Database, article: dict[str, Any]) -> int:
    with db.atomic():
        article_id = store.insert_article(db, article)
        store.remember_urls(db, article_id, {article["canonical_url"], article["url"] + "?amp"})
    return article_id


def articles_and_urls(db: Database) -> dict[str, Any]:
    """Stored articles found again by any URL, an update kept as a version, matches replaced,
    failed fetches counted and forgotten."""
    first = _store(db, _article(1))
    second = _store(db, _article(2, fetched_at=LATER))
    store.remember_urls(db, first, {"https://example.org/news/1"})  # already known: ignored
    version = store.replace_text(db, first, {"title": "Story 1, updated", "text": "New text."})
    store.record_match(db, second, "mfe", [{"concept": "morocco", "offset": 1}], "first snippet")
    store.record_match(db, second, "mfe", [{"concept": "france", "offset": 9}], "second snippet")
    store.note_listing_update(db, second, LATER)
    for _ in range(2):
        store.record_fetch_failure(
            db,
            "https://example.org/broken#top",
            "HTTP 503",
            permanent=False,
            listed_updated_at=OLD,
            retry_at=lambda attempts: f"2025-04-0{attempts}T00:00:00Z",
        )
    store.record_fetch_failure(
        db,
        "https://example.org/gone",
        "HTTP 404",
        permanent=True,
        listed_updated_at=None,
        retry_at=lambda _: OLD,
    )
    failures = store.fetch_failures(
        db, ["https://example.org/broken", "https://example.org/gone", "https://example.org/x"]
    )
    store.forget_fetch_failure(db, "https://example.org/gone")
    return {
        "ids": [first, second],
        "version": version,
        "known": store.known_article(db, "https://example.org/news/2?amp"),
        "first_known": store.first_known(
            db, frozenset({"https://example.org/none", "https://example.org/news/1"})
        ),
        "unknown": store.first_known(db, frozenset({"https://example.org/none"})),
        "listing": store.known_articles(
            db, ["https://example.org/news/1", "https://example.org/news/2", "nowhere"]
        ),
        "row": store.article_row(db, first),
        "versions": store.story_versions(db, "st-0"),
        "matches": store.article_matches(db, second),
        "failures": failures,
        "failures_left": store.fetch_failures(
            db, ["https://example.org/broken", "https://example.org/gone"]
        ),
        "read": list(store.read_articles(db, LATER)),
    }


def sources_and_heartbeats(db: Database) -> dict[str, Any]:
    _store(db, _article(3, source="wire"))
    _store(db, _article(4, source="wire", fetched_at=LATER, published_at=None))
    validators = store.SourceState(
        etag='W/"abc"', last_modified="Sun, 01 Mar 2025", listing_hash="h"
    )
    store.record_poll(db, "wire", "https://example.org/feed", "feed", validators=validators)
    store.record_poll(db, "wire", "https://example.org/feed", None, error="HTTP 500")
    store.record_poll(db, "wire", "https://example.org/feed", None, error="timeout")
    store.record_poll(db, "quiet", "https://example.org/q", "sitemap")
    store.record_heartbeat(db, "host-a", 11, OLD, OLD)
    store.record_heartbeat(db, "host-b", 12, OLD, LATER)
    store.record_heartbeat(db, "host-a", 11, OLD, "2025-03-01T09:00:00Z")
    latest = store.latest_heartbeat(db)
    store.forget_heartbeats(db, "2025-03-02T00:00:00Z")
    return {
        "row": store.source_row(db, "wire"),
        "state": store.source_state(store.source_row(db, "wire")),
        "none": store.source_state(store.source_row(db, "never-polled")),
        "health": store.source_health(db, "wire", "https://example.org/feed"),
        "health_unknown": store.source_health(db, "nobody", "https://example.org/n"),
        "since": store.articles_since(db, "wire", "2025-03-02T00:00:00Z"),
        "dates": store.article_dates(db, "wire", OLD),
        "counters": store.source_counters(db),
        "latest": latest,
        "after_forget": store.latest_heartbeat(db),
    }


def events(db: Database) -> dict[str, Any]:
    for number in (10, 11, 12, 14):
        _store(db, _article(number, source=f"outlet-{number}"))
    day = "2025-03-01T08:00:00Z"
    with db.atomic():
        store.add_to_event(db, "st-5", "st-5", "en", day, "p5", ["court", "rabat", "judge"], None)
        store.add_to_event(db, "st-6", "st-5", "en", day, "p6", ["court", "rabat", "paris"], 0.8)
        store.add_to_event(db, "st-7", "st-7", "en", LATER, "p7", ["weather"], None)
        store.count_terms(db, [["court", "rabat", "judge"], ["court", "rabat", "paris"]])
        store.count_terms(db, [["weather"]])
    candidates = store.event_candidates(
        db, ["court", "rabat", "lyon"], "en", "2025-02-28T00:00:00Z", LATER, 10
    )
    frequencies = store.term_frequencies(db, ["court", "weather", "absent"])
    forgotten = store.forget_event_profiles(db, "2025-03-02T00:00:00Z", 1)
    return {
        "frequencies": frequencies,
        "profiled": store.profiled_stories(db),
        "candidates": candidates,
        "event_of": [store.event_of(db, "st-6"), store.event_of(db, "st-99")],
        "reports": store.event_reports(db, "st-5"),
        "first_report": store.event_reports(db, "st-5", limit=1),
        "own_event": store.event_reports(db, "st-7"),
        "story_count": [store.event_story_count(db, "st-5"), store.event_story_count(db, "st-9")],
        "events": store.list_events(db),
        "recent_events": store.list_events(db, "2025-03-02T00:00:00Z"),
        "recent_first": store.recent_first_articles(db, 2),
        "forgotten": forgotten,
        "index_left": db.execute("SELECT count(*) FROM event_index").fetchone()[0],
    }


def reading(db: Database) -> dict[str, Any]:
    ids = [_store(db, _article(number)) for number in range(20, 26)]
    for article_id, watchlist in zip(ids, ["mfe", "mfe", "mfe", "fr", "mfe", "fr"], strict=True):
        store.record_match(db, article_id, watchlist, [], f"snippet {article_id}")
    db.execute("UPDATE matches SET matched_at = ? WHERE article_id = ?", [OLD, ids[0]])
    store.replace_text(db, ids[1], {"title": "Changed", "text": "Changed text."})
    return {
        "counts": store.watchlist_counts(db, "2025-03-02T00:00:00Z", "2025-01-01T00:00:00Z"),
        "per_day": sorted(store.hits_per_day(db, "2025-01-01T00:00:00Z").values()),
        "stories": store.watchlist_stories(db, "mfe", 2, 0),
        "next_page": store.watchlist_stories(db, "mfe", 2, 2),
        "story": store.story_articles(db, "st-10"),
        "updates": sorted(store.story_updates(db, ["st-10", "st-11", "st-99"])),
        "article": store.article(db, ids[2]),
        "missing": store.article(db, 999),
        "candidates": [row["id"] for row in store.search_candidates(db, None, 3)],
        "overview": store.article_overview(db),
    }


SCENARIOS: list[Callable[[Database], dict[str, Any]]] = [
    articles_and_urls,
    sources_and_heartbeats,
    events,
    reading,
]


def _stamped_now(value: Any) -> bool:
    moment = parse_time(value) if isinstance(value, str) and value[:2] == "20" else None
    return moment is not None and abs(datetime.now(UTC) - moment) < timedelta(hours=1)


def _comparable(value: Any) -> Any:
    """The answer with the times the store stamped as it ran (they differ between two runs)
    replaced, and the aggregates' joined lists (in no particular order) sorted."""
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_comparable(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return _comparable(value.__dict__)
    if _stamped_now(value):
        return "<now>"
    if isinstance(value, str) and "," in value and " " not in value:
        return sorted(value.split(","))
    return value


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_both_engines_give_the_same_answers(scenario, tmp_path: Path, pg_url: str):
    answers = []
    for where in (tmp_path / "news.db", pg_url):
        db = store.open_db(where)
        try:
            answers.append(_comparable(scenario(db)))
        finally:
            db.close()
    on_sqlite, on_postgres = answers
    assert on_postgres == on_sqlite


def test_articles_are_found_by_every_url_and_updates_keep_versions(db):
    found = articles_and_urls(db)
    first, second = found["ids"]
    assert found["version"] == 2
    assert found["known"]["id"] == second
    assert found["first_known"]["id"] == first
    assert found["unknown"] is None
    assert set(found["listing"]) == {"https://example.org/news/1", "https://example.org/news/2"}
    assert found["listing"]["https://example.org/news/2"]["source_updated_at"] == LATER
    assert (found["row"]["title"], found["row"]["text"], found["row"]["version"]) == (
        "Story 1, updated",
        "New text.",
        2,
    )
    assert [(v["article_id"], v["version"], v["title"]) for v in found["versions"]] == [
        (first, 1, "Story 1")
    ]
    assert [(m["watchlist"], m["snippet"]) for m in found["matches"]] == [("mfe", "second snippet")]
    broken = found["failures"]["https://example.org/broken"]
    assert (broken["attempts"], broken["retry_at"], broken["permanent"]) == (
        2,
        "2025-04-02T00:00:00Z",
        0,
    )
    assert found["failures"]["https://example.org/gone"]["retry_at"] is None
    assert list(found["failures_left"]) == ["https://example.org/broken"]
    assert [row["id"] for row in found["read"]] == [second]


def test_sources_keep_validators_failures_and_heartbeats(db):
    found = sources_and_heartbeats(db)
    assert found["state"] == store.SourceState('W/"abc"', "Sun, 01 Mar 2025", "h")
    assert found["none"] == store.SourceState()
    assert (found["row"]["kind"], found["row"]["consecutive_failures"]) == ("feed", 2)
    assert found["health"].last_error == "timeout"
    assert found["health"].last_article_at == LATER
    assert found["health_unknown"].consecutive_failures == 0
    assert found["since"] == 1
    assert found["dates"] == [(None, LATER), (OLD, OLD)]
    assert found["counters"]["wire"]["failures"] == 2
    assert found["counters"]["wire"]["articles"] == 2
    assert found["counters"]["quiet"]["articles"] == 0
    assert (found["latest"]["host"], found["latest"]["beat_at"]) == ("host-b", LATER)
    assert found["after_forget"]["host"] == "host-b"


def test_events_are_joined_listed_and_forgotten(db):
    found = events(db)
    assert found["frequencies"] == ({"court": 2, "weather": 1}, 3)
    assert found["profiled"] == 3
    assert sorted(c["story_id"] for c in found["candidates"]) == ["st-5", "st-6"]
    assert found["event_of"] == ["st-5", "st-99"]
    assert [(r.story_id, r.outlets) for r in found["reports"]] == [
        ("st-5", ["outlet-10", "outlet-11"]),
        ("st-6", ["outlet-12"]),
    ]
    assert [r.story_id for r in found["first_report"]] == ["st-5"]
    assert [r.story_id for r in found["own_event"]] == ["st-7"]
    assert found["story_count"] == [2, 1]
    by_id = {event.id: event for event in found["events"]}
    assert by_id["st-5"].stories == ["st-5", "st-6"]
    assert by_id["st-5"].outlets == ["outlet-10", "outlet-11", "outlet-12"]
    assert by_id["st-5"].title == "Story 10"
    assert found["recent_events"] == []
    assert [row["story_id"] for row in found["recent_first"]] == ["st-7", "st-6"]
    assert found["forgotten"] == 1
    assert found["index_left"] == 4


def test_reading_calls_answer_the_web_and_cli_questions(db):
    found = reading(db)
    assert found["counts"] == {"mfe": (2, 3), "fr": (2, 2)}
    assert found["per_day"] == [1, 2]
    assert [row["story_id"] for row in found["stories"] + found["next_page"]] == [
        "st-12",
        "st-11",
        "st-10",
    ]
    assert found["stories"][0]["copies"] == 2
    assert [row["id"] for row in found["story"]] == [1, 2]
    assert found["updates"] == ["st-10", "st-11"]
    assert found["article"]["text"].startswith("Paragraph one of 22")
    assert found["missing"] is None
    assert found["candidates"] == [6, 5, 4]
    assert [row["hits"] for row in found["overview"]] == ["mfe", None, "mfe", "fr", "mfe", "fr"]


def test_a_backtest_reads_every_article_once_across_pages(db):
    """More articles than one read, several stored in the same second: none skipped or twice."""
    with db.atomic():
        for number in range(READ_PAGE + 7):
            store.insert_article(
                db, _article(number, fetched_at=f"2025-03-01T08:00:{number % 3:02}Z")
            )
    read = list(store.read_articles(db, None))
    assert sorted(row["id"] for row in read) == list(range(1, READ_PAGE + 8))
    assert [(row["fetched_at"], row["id"]) for row in read] == sorted(
        (row["fetched_at"], row["id"]) for row in read
    )
    assert len(list(store.read_articles(db, "2025-03-01T08:00:02Z"))) == (READ_PAGE + 7) // 3


HOSTILE = (
    "100% sure? :name and :1, %s %(x)s ?? 'quoted' \"double\" `tick` \\back; -- DROP TABLE\n"
    "المغرب يسلّم فرنسا مطلوبًا في قضية «اتجار» — الرباط\n"
)


def test_hostile_text_comes_back_identical(db):
    """Parameter marks, quotes and Arabic in every field, and a 1 MB text: stored and read back
    as they were, never taken for SQL or for parameters."""
    big = (HOSTILE * (1024 * 1024 // len(HOSTILE.encode()) + 1))[: 1024 * 1024]
    hostile = _article(
        1, title=HOSTILE, text=big, url="https://example.org/?q=100%&a=:b", source="عربي %s"
    )
    article_id = _store(db, hostile)
    store.record_match(db, article_id, "w %s :w ?", [{"text": HOSTILE}], HOSTILE)
    assert store.known_article(db, "https://example.org/?q=100%&a=:b?amp")["id"] == article_id
    stored = store.article(db, article_id)
    assert (stored["title"], stored["text"], stored["source"]) == (HOSTILE, big, "عربي %s")
    assert [row["text"] for row in store.read_articles(db, None)] == [big]
    [matched] = store.article_matches(db, article_id)
    assert (matched["watchlist"], matched["snippet"]) == ("w %s :w ?", HOSTILE)
    assert json.loads(matched["hits"]) == [{"text": HOSTILE}]
    store.replace_text(db, article_id, {"title": HOSTILE[::-1], "text": big[::-1]})
    assert store.article(db, article_id)["text"] == big[::-1]
    assert store.story_versions(db, hostile["story_id"])[0]["title"] == HOSTILE


def test_retention_prunes_the_same_rows_on_both_engines(db, caplog):
    """Old texts become tombstones still known by their URLs, old pages, versions, failed
    fetches and event profiles go, recent ones stay; on PostgreSQL the SQLite file's steps
    (full-text merge, vacuum, checkpoint) are skipped without a warning."""
    recent = timestamp()
    old_id = _store(db, _article(1, html="<p>old page</p>"))
    new_id = _store(db, _article(2, fetched_at=recent, html="<p>new page</p>"))
    ten_days = timestamp(datetime.now(UTC) - timedelta(days=10))
    page_id = _store(db, _article(4, fetched_at=ten_days, html="<p>page</p>"))
    store.replace_text(db, new_id, {"title": "Updated", "text": "Updated text."})
    db.execute("UPDATE article_versions SET replaced_at = ?", [OLD])
    for article_id in (old_id, new_id):
        store.save_signature(db, article_id, b"\x00\x01signature")
        store.record_match(db, article_id, "mfe", [], "snippet")
    store.record_fetch_failure(
        db,
        "https://example.org/old",
        "HTTP 404",
        permanent=True,
        listed_updated_at=None,
        retry_at=lambda _: None,
    )
    db.execute("UPDATE fetch_failures SET failed_at = ?", [OLD])
    with db.atomic():
        store.add_to_event(db, "st-0", "st-0", "en", OLD, "profile", ["court", "rabat"], None)

    with caplog.at_level(logging.INFO, logger="newswatch"):
        done = retention.prune(db, StorageConfig(keep_articles="30d", keep_html="7d"))

    rows = {
        "article text(s)": 1,
        "stored page(s)": 1,
        "old version(s)": 1,
        "failed fetch(es)": 1,
        "event profile(s)": 1,
    }
    assert {what: done[what] for what in rows} == rows
    if dialect(db) == POSTGRESQL:
        assert set(done) == set(rows)
    tombstone = store.article_row(db, old_id)
    assert (tombstone["text"], tombstone["html"], tombstone["title"]) == (None, None, "Story 1")
    assert tombstone["pruned_at"] is not None
    assert store.known_article(db, "https://example.org/news/1")["pruned_at"] is not None
    assert store.article_row(db, new_id)["html"] == "<p>new page</p>"
    kept_text = store.article_row(db, page_id)
    assert (kept_text["html"], kept_text["pruned_at"]) == (None, None)
    assert kept_text["text"].startswith("Paragraph one of 4")
    assert store.article_matches(db, old_id) == []
    assert [article_id for article_id, _ in store.all_signatures(db)] == [new_id]
    assert store.fetch_failures(db, ["https://example.org/old"]) == {}
    assert retention.next_run(db) > datetime.now(UTC) + timedelta(hours=23)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert (
        retention.prune(db, StorageConfig(keep_articles="30d", keep_html="7d")).get(
            "article text(s)", 0
        )
        == 0
    )
