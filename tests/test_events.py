"""One event, one alert: two newsrooms writing the same extradition in their own words, end to end
through `newswatch run --once` against outlets served from tmp dirs on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.times import timestamp
from crawler import store
from crawler.event_terms import MAX_TERM_CHARS, MAX_TERMS, MAX_TITLE_TERMS, terms_of
from crawler.events import INDEXED_TERMS, Events
from tests.support import change, newswatch, rows, run_once, value, write_config

CONCEPTS = """
concepts:
  morocco: {en: [Morocco, Moroccan, Rabat]}
  france: {en: [France, French, Paris]}
  extradition: {en: [{term: extradition, mode: stem}, {term: extradite, mode: stem}]}
"""

# Two newsrooms, one happening: the same names, places and figures, in other sentences.
FIRST = (
    "Morocco extradites Karim Belhaj to France over Lyon jewellery heist",
    [
        "Moroccan authorities on Friday extradited Karim Belhaj, 41, to France, where he is wanted"
        " over the armed robbery of a Lyon jewellery store, the justice ministry in Rabat said.",
        "Belhaj was arrested in Agadir in August. The Court of Cassation approved the French"
        " extradition request last month, dismissing the argument of his lawyers.",
        "He was handed to French police at Rabat-Sale airport and flown to Paris.",
    ],
)
SECOND = (
    "Karim Belhaj, wanted over the Lyon jewellery heist, extradited by Morocco",
    [
        "Karim Belhaj, the suspect in the Lyon jewellery store robbery, was flown to Paris on"
        " Friday after Morocco granted France's extradition request, French prosecutors said.",
        "The 41-year-old had been held in Agadir since August; Morocco's Court of Cassation"
        " cleared his transfer last month over the objections of his lawyers.",
        "French officers escorted Belhaj on the flight from Rabat-Sale airport.",
    ],
)
# The same subject and countries, another happening.
OTHER = (
    "France asks Morocco to extradite a drug trafficker arrested in Tangier",
    [
        "France has filed a request with Morocco for the extradition of a drug trafficker"
        " arrested in Tangier last week with two tonnes of cannabis resin, police said.",
        "The Marseille prosecutor's office said the man ran a network supplying southern France.",
    ],
)


def page(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"{body}</article></body></html>"
    )


def publish(root: Path, outlet: str, articles: dict[str, tuple[str, list[str]]]) -> None:
    (root / outlet).mkdir(parents=True, exist_ok=True)
    items = ""
    for slug, (title, paragraphs) in articles.items():
        (root / outlet / f"{slug}.html").write_text(page(title, paragraphs), encoding="utf-8")
        items += (
            f"<item><title>{title}</title><link>{{{{BASE_URL}}}}/{outlet}/{slug}.html</link></item>"
        )
    feed = f"<rss version='2.0'><channel><title>{outlet}</title>{items}</channel></rss>"
    (root / outlet / "feed.xml").write_text(feed, encoding="utf-8")


def config(tmp: Path, base: str, hook: str, outlets: list[str]) -> Path:
    sources = {
        outlet: {"url": f"{base}/{outlet}/feed.xml", "kind": "feed", "language": "en"}
        for outlet in outlets
    }
    watchlists = (
        "watchlists:\n"
        "  - {name: grouped, rule: 'morocco AND france AND extradition', notify: [hook],"
        " notify_updates: true}\n"
        "  - {name: each, rule: 'morocco AND france AND extradition', notify: [hook],"
        " group: story}\n"
    )
    return write_config(
        tmp,
        sources,
        crawl="{download_timeout: 5s, obey_robots_txt: false}",
        more=f"dedup: {{update_interval: 1ms}}\n{CONCEPTS}\n{watchlists}"
        f"channels:\n  hook: {{type: webhook, url: '{hook}'}}",
    )


def test_two_newsrooms_one_event_alert_a_grouped_watchlist_once(tmp_path, blank_site, hook):
    root = Path(blank_site.root)
    publish(root, "a", {"belhaj": FIRST, "tangier": OTHER})
    publish(root, "b", {})
    path = config(tmp_path, blank_site.base_url, hook.url, ["a", "b"])
    run_once(path)
    publish(root, "b", {"belhaj-extradited": SECOND})
    run_once(path)

    assert value(path, "SELECT count(DISTINCT story_id) FROM articles") == 3
    sent = [
        (r.json["watchlist"], r.json["id"].count(":update:"), r.json["article"]["source"])
        for r in hook.requests
    ]
    # per story: an alert for each of the three stories; per event: the extradition once, its
    # second report as an update notice, and the Tangier request (another happening) apart
    assert sorted(sent) == [
        ("each", 0, "a"),
        ("each", 0, "a"),
        ("each", 0, "b"),
        ("grouped", 0, "a"),
        ("grouped", 0, "a"),
        ("grouped", 1, "b"),
    ]
    [notice] = [r.json for r in hook.requests if ":update:" in r.json["id"]]
    assert [report["source"] for report in notice["event"]["reports"]] == ["a"]
    assert notice["event"]["reports"][0]["title"] == FIRST[0]
    grouped = [r.json for r in hook.requests if r.json["watchlist"] == "grouped"]
    assert grouped[0]["event"]["id"] != grouped[1]["event"]["id"]

    listed = newswatch("events", "--since", "1d", "--json", "--config", str(path))
    assert listed.returncode == 0, listed.stderr
    events = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(len(event["stories"]) for event in events) == [1, 2]


def test_a_story_grouped_stays_in_its_event_across_restarts(tmp_path, blank_site, hook):
    """The event is stored: a third report in a later run joins the same event, and a restart
    does not alert the grouped watchlist again."""
    root = Path(blank_site.root)
    publish(root, "a", {"belhaj": FIRST})
    publish(root, "b", {"belhaj-extradited": SECOND})
    path = config(tmp_path, blank_site.base_url, hook.url, ["a", "b"])
    run_once(path)
    run_once(path)

    events = rows(path, "SELECT story_id, event_id FROM story_events ORDER BY at, story_id")
    assert len(events) == 2 and len({row["event_id"] for row in events}) == 1
    first = [r.json for r in hook.requests if r.json["watchlist"] == "grouped"]
    assert len([alert for alert in first if ":update:" not in alert["id"]]) == 1


def test_a_hostile_page_gets_a_bounded_profile(tmp_path, blank_site, hook):
    """60,000 distinct made-up words under a title of 20,000: what is stored, counted and indexed
    for its event stays the size of a real article's."""
    title = " ".join(f"title{n}" for n in range(20_000))
    body = [" ".join(f"w{n}x" for n in range(at, at + 1_000)) for at in range(0, 60_000, 1_000)]
    body.append(" ".join(f"{n}{'z' * 5_000}" for n in range(400)))
    root = Path(blank_site.root)
    publish(root, "a", {"flood": (title, body), "belhaj": FIRST})
    path = config(tmp_path, blank_site.base_url, hook.url, ["a"])
    run_once(path)

    [flood] = rows(
        path,
        "SELECT length(e.profile) AS size, e.story_id FROM story_events e"
        " JOIN articles a ON a.story_id = e.story_id WHERE a.url LIKE '%flood%'",
    )
    assert flood["size"] < 6_000
    indexed = value(
        path, "SELECT count(*) FROM event_index WHERE story_id = ?", (flood["story_id"],)
    )
    assert indexed == INDEXED_TERMS
    assert value(path, "SELECT count(*) FROM event_terms") <= 2 * MAX_TERMS
    terms = terms_of(title, body)
    assert len(terms.title) == MAX_TITLE_TERMS
    assert max(map(len, terms.counts)) <= MAX_TERM_CHARS


def test_retention_forgets_profiles_past_the_window_and_keeps_events(tmp_path, blank_site, hook):
    """`newswatch db prune`: a story older than the window and a day loses what joining it
    took (profile, index entries); its event stays, so `stories` and `events` still show it."""
    root = Path(blank_site.root)
    publish(root, "a", {"belhaj": FIRST, "tangier": OTHER})
    path = config(tmp_path, blank_site.base_url, hook.url, ["a"])
    run_once(path)
    old, recent = (row["story_id"] for row in rows(path, "SELECT story_id FROM story_events"))
    change(path, "UPDATE story_events SET at = '2026-01-01T00:00:00Z' WHERE story_id = ?", (old,))
    change(path, "UPDATE event_index SET at = '2026-01-01T00:00:00Z' WHERE story_id = ?", (old,))

    pruned = newswatch("db", "prune", "--config", str(path))
    assert pruned.returncode == 0, pruned.stderr

    kept = {row["story_id"]: row for row in rows(path, "SELECT * FROM story_events")}
    assert kept[old]["profile"] is None and kept[old]["event_id"] == old
    assert kept[recent]["profile"] is not None
    indexed = rows(path, "SELECT DISTINCT story_id FROM event_index")
    assert [row["story_id"] for row in indexed] == [recent]


def test_an_event_from_before_the_upgrade_is_joined_by_the_next_report(tmp_path, blank_site, hook):
    """An archive stored before events existed (its event tables empty): the first start reads
    it for the terms' rarity and the recent stories' profiles, so the next report of a stored
    story joins its event at once."""
    root = Path(blank_site.root)
    publish(root, "a", {"belhaj": FIRST, "tangier": OTHER})
    publish(root, "b", {})
    path = config(tmp_path, blank_site.base_url, hook.url, ["a", "b"])
    run_once(path)
    for table in ("event_index", "event_terms", "story_events"):
        change(path, f"DELETE FROM {table}")

    publish(root, "b", {"belhaj-extradited": SECOND})
    result = run_once(path)

    assert "recent stories profiled from 2 stored" in result.stderr
    assert value(path, "SELECT stories FROM event_terms WHERE term = ''") == 3
    events = rows(path, "SELECT event_id, count(*) AS stories FROM story_events GROUP BY 1")
    assert sorted(row["stories"] for row in events) == [1, 2]
    grouped = [r.json for r in hook.requests if r.json["watchlist"] == "grouped"]
    assert [alert["id"].count(":update:") for alert in grouped] == [0, 0, 1]


def _place(events: Events, story: str, fetched: datetime, published: datetime | None = None):
    title, paragraphs = FIRST
    with events.db.atomic():
        return events.place(
            story, "en", terms_of(title, paragraphs), timestamp(published or fetched), fetched
        )


def test_an_event_stops_growing_a_window_after_its_first_report(tmp_path) -> None:
    """The same subject reported again and again, a day and a half apart: each report is
    within a window of the one before, but an event takes reports for one window after its
    first, so a recurring subject is not one endless event."""
    db = store.open_db(tmp_path / "events.db")
    events = Events(db, window=48 * 3600, threshold=0.7)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    first = _place(events, "st-1", start)
    second = _place(events, "st-2", start + timedelta(hours=36))
    third = _place(events, "st-3", start + timedelta(hours=72))

    assert (first.joined, second.joined, second.event_id) == (False, True, "st-1")
    assert (third.joined, third.event_id) == (False, "st-3")


def test_a_story_dated_long_before_its_fetch_starts_its_own_event(tmp_path) -> None:
    """A page fetched now but dated ten days ago (a backlog, a stale or made-up date) joins no
    event, not even one of that date word for word the same: an old event already alerted
    would swallow it."""
    db = store.open_db(tmp_path / "events.db")
    events = Events(db, window=48 * 3600, threshold=0.7)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    then = now - timedelta(days=10)
    _place(events, "st-then", then)
    stale = _place(events, "st-stale", now, then)

    assert (stale.joined, stale.event_id) == (False, "st-stale")
