"""Search, Atom feeds, OPML and /metrics of `newswatch serve`, over the demo archive, read as an
analyst's browser, a feed reader and Prometheus read them."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.times import parse_time
from tests.support import Served, newswatch, rows

ATOM = "{http://www.w3.org/2005/Atom}"
STORY_LINK = re.compile(r'<a href="/stories/([^"]+)">')


def found_stories(page: str) -> set[str]:
    return set(STORY_LINK.findall(page))


def stories_saying(config: Path, *words: str) -> set[str]:
    """Stories of an article whose stored text has one of the words, as sqlite3 sees it."""
    found = set()
    for word in words:
        found |= {
            row["story_id"]
            for row in rows(
                config, "SELECT story_id FROM articles WHERE text LIKE ?", (f"%{word}%",)
            )
        }
    return found


def test_an_arabic_word_with_a_clitic_finds_its_other_forms(web: Served, web_archive: Path) -> None:
    page = web.get("/search", params={"q": "بالمغرب"})
    assert page.status_code == 200
    saying = stories_saying(web_archive, "المغرب")
    # Only one demo article writes بالمغرب itself: the others are found by their own forms.
    assert len(stories_saying(web_archive, "بالمغرب")) < len(saying)
    assert found_stories(page.text) >= saying - stories_saying(web_archive, "صلاة المغرب")
    assert "<mark>المغرب</mark>" in page.text or "<mark>والمغرب</mark>" in page.text
    assert 'dir="rtl" ' in page.text or 'dir="rtl">' in page.text


def test_an_english_inflection_finds_the_other_forms(web: Served, web_archive: Path) -> None:
    page = web.get("/search", params={"q": "extraditions"})
    assert page.status_code == 200
    shown = found_stories(page.text)
    assert shown >= stories_saying(web_archive, "extradited", "extradition ")
    marked = set(re.findall(r"<mark>([^<]+)</mark>", page.text))
    assert {word.lower() for word in marked} >= {"extradition", "extradited"}


def test_a_french_plural_finds_the_singular(web: Served, web_archive: Path) -> None:
    page = web.get("/search", params={"q": "extradés"})
    assert page.status_code == 200
    assert found_stories(page.text) >= stories_saying(web_archive, "extradé")
    assert "<mark>extradé</mark>" in page.text


def test_a_word_nobody_wrote_finds_nothing(web: Served) -> None:
    page = web.get("/search", params={"q": "zanzibarique"})
    assert page.status_code == 200
    assert found_stories(page.text) == set()
    assert "Nothing in the archive matches" in page.text


def test_a_rule_lists_the_stories_the_backtest_gives(web: Served, web_archive: Path) -> None:
    result = newswatch("match", "--config", str(web_archive), "--archive", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    backtest = {json.loads(line)["article"]["story_id"] for line in result.stdout.splitlines()}
    assert backtest
    page = web.get("/search", params={"q": "morocco AND france AND extradition"})
    assert page.status_code == 200
    assert "matching the rule" in page.text
    assert found_stories(page.text) == backtest


def test_a_rule_with_a_phrase_and_near(web: Served) -> None:
    morocco = found_stories(web.get("/search", params={"q": "morocco"}).text)
    negated = web.get("/search", params={"q": 'morocco AND NOT "zanzibarique"'})
    assert negated.status_code == 200
    assert found_stories(negated.text) == morocco
    near = found_stories(web.get("/search", params={"q": "NEAR/10(morocco, extradition)"}).text)
    assert near
    assert near < morocco
    phrase = web.get("/search", params={"q": 'morocco AND "تسليم المجرمين"'})
    assert found_stories(phrase.text)
    assert found_stories(phrase.text) < morocco


def test_a_bad_rule_shows_its_error_under_the_query(web: Served) -> None:
    page = web.get("/search", params={"q": "morocco and france"})
    assert page.status_code == 200
    assert "position 8: operators are upper-case: write AND, not &#39;and&#39;" in page.text
    assert "morocco and france\n        ^</pre>" in page.text
    unknown = web.get("/search", params={"q": "morocco AND moroco"})
    assert "position 12: unknown concept &#39;moroco&#39;" in unknown.text


HOSTILE_QUERIES = [
    "مغرب " * 2000,
    " OR ".join(["morocco"] * 500),
    " OR ".join(f"w{n}" for n in range(500)),
    '"*',
    'morocco AND "unterminated',
    "NEAR(",
    "NEAR/99999999999999999999(morocco, france)",
    "(" * 200 + "morocco" + ")" * 200,
    "NOT " * 100 + "morocco",
    "a* OR b:c ^d -e {f}",
    "<script>alert(1)</script>",
    "\u202e" + "المغرب" + "\x00",
    " ".join(f"word{n}" for n in range(30)),
    "*",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=range(len(HOSTILE_QUERIES)))
def test_a_hostile_query_answers_with_an_error_or_results(web: Served, query: str) -> None:
    page = web.get("/search", params={"q": query})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert 'class="error"' in page.text or 'class="stories"' in page.text


def test_a_deep_rule_is_an_error_with_its_position(web: Served) -> None:
    page = web.get("/search", params={"q": "(" * 60 + "morocco" + ")" * 60})
    assert "position 50: nested more than 50 levels deep" in page.text


def alerted_stories(config: Path) -> set[str]:
    return {
        row["story_id"]
        for row in rows(
            config,
            "SELECT DISTINCT a.story_id FROM matches m JOIN articles a ON a.id = m.article_id"
            " WHERE m.watchlist = 'mfe'",
        )
    }


def test_the_atom_feed_has_one_entry_per_alerted_story(web: Served, web_archive: Path) -> None:
    response = web.get("/feeds/mfe.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert {entry.id for entry in feed.entries} == {
        f"urn:newswatch:mfe:{quote(story)}" for story in alerted_stories(web_archive)
    }
    assert feed.feed.id == f"{web.url}/feeds/mfe.atom"
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [feed.feed.id]
    for entry in feed.entries:
        assert entry.title and entry.author and entry.published and entry.updated
        assert entry.content[0].type == "text/html"
    assert {e.id for e in feedparser.parse(web.get("/feeds/mfe.atom").content).entries} == {
        e.id for e in feed.entries
    }


def test_an_entry_is_updated_when_its_story_has_a_newer_copy(
    web: Served, web_archive: Path
) -> None:
    feed = feedparser.parse(web.get("/feeds/mfe.atom").content)
    for entry in feed.entries:
        story = entry.id.rsplit(":", 1)[1]
        copies = rows(
            web_archive,
            "SELECT coalesce(updated_at, fetched_at) AS changed FROM articles WHERE story_id = ?",
            (story,),
        )
        newest = max(parse_time(row["changed"]) for row in copies)
        assert datetime.fromisoformat(entry.updated) == newest.replace(microsecond=0) or (
            datetime.fromisoformat(entry.updated) == newest
        )


def test_the_feed_is_valid_atom(web: Served) -> None:
    root = ET.fromstring(web.get("/feeds/mfe.atom").content)
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{required}") is not None, required
    entries = root.findall(f"{ATOM}entry")
    assert entries
    for entry in entries:
        for required in ("id", "title", "updated", "link", "content"):
            assert entry.find(f"{ATOM}{required}") is not None, required
        content = entry.find(f"{ATOM}content")
        assert content.get("type") == "html"
        assert "<mark>" in content.text


def test_an_unknown_watchlist_has_no_feed(web: Served) -> None:
    assert web.get("/feeds/nobody.atom").status_code == 404
    assert web.get("/feeds/..%2Fmfe.atom").status_code == 404


def test_the_opml_lists_every_watchlist_feed(web: Served) -> None:
    response = web.get("/feeds.opml")
    assert response.status_code == 200
    outlines = ET.fromstring(response.content).findall("./body/outline")
    assert [(o.get("text"), o.get("xmlUrl")) for o in outlines] == [
        ("mfe", f"{web.url}/feeds/mfe.atom")
    ]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_hold_what_the_database_holds(web: Served, web_archive: Path) -> None:
    response = web.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)
    stored = [value for (name, _), value in found.items() if name.endswith("_articles_stored")]
    assert sum(stored) > 0
    for source in rows(web_archive, "SELECT * FROM sources"):
        labels = (("source", source["name"]),)
        articles = rows(
            web_archive, "SELECT count(*) AS n FROM articles WHERE source = ?", (source["name"],)
        )[0]["n"]
        assert found[("newswatch_source_articles_stored", labels)] == articles
        assert (
            found[("newswatch_source_consecutive_failures", labels)]
            == source["consecutive_failures"]
        )
        success = parse_time(source["last_success_at"]).timestamp()
        assert found[("newswatch_source_last_success_timestamp_seconds", labels)] == success
    for row in rows(web_archive, "SELECT channel, status, count(*) AS n FROM alerts GROUP BY 1, 2"):
        labels = (("channel", row["channel"]), ("status", row["status"]))
        assert found[("newswatch_alerts", labels)] == row["n"]
    assert found[("newswatch_oldest_pending_alert_age_seconds", ())] == 0
    assert found[("newswatch_daemon_heartbeat_age_seconds", ())] >= 0
