"""Events as the analyst sees them: `newswatch stories` and `newswatch events` (real CLI runs)
and the web story page (the real server on loopback) over the demo archive, two of whose stories
report one event."""

from __future__ import annotations

import json
from pathlib import Path

from markupsafe import escape

from tests.support import Served, change, newswatch, rows, story_of

# Two stories written apart (an English report and its wire copy, and a French report): one
# event, whose id is the story stored first.
EVENT = ("morocco-extradites-french-fugitive", "maroc-extrade-narcotrafiquant")
ALONE = "rabat-paris-security-declaration"
HTML_TITLE = '<img src=x onerror="alert(1)"> Le Maroc extrade <b>un narcotrafiquant</b>'


def one_event(config: Path, slugs: tuple[str, ...]) -> list[str]:
    """The stories of `slugs` put in one event, as the crawler's `Events.place` leaves a story
    that joined an earlier one's (the event named after the story stored first): an English
    report and a French one are not compared (events group within a language), so the join is
    written here. Their story ids, first stored first."""
    stories = {story_of(config)[slug] for slug in slugs}
    ordered = [
        row["story_id"]
        for row in rows(
            config,
            "SELECT story_id FROM articles GROUP BY story_id ORDER BY min(id)",
        )
        if row["story_id"] in stories
    ]
    for story in ordered:
        change(
            config,
            "UPDATE story_events SET event_id = ? WHERE story_id = ?",
            (ordered[0], story),
        )
    return ordered


def urls_of(config: Path, story: str) -> list[str]:
    found = rows(config, "SELECT url FROM articles WHERE story_id = ? ORDER BY id", (story,))
    return [row["url"] for row in found]


def story_count(config: Path) -> int:
    return len(rows(config, "SELECT DISTINCT story_id FROM articles"))


def json_lines(*args: str) -> list[dict]:
    result = newswatch(*args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_stories_json_gives_each_story_its_event_and_urls(archive: Path) -> None:
    first, second = one_event(archive, EVENT)
    alone = story_of(archive)[ALONE]

    stories = {row["id"]: row for row in json_lines("stories", "--json", "--config", str(archive))}

    assert stories[first]["event"] == first and stories[second]["event"] == first
    assert stories[alone]["event"] == alone
    assert len(urls_of(archive, story_of(archive)[EVENT[0]])) == 2  # the original and its wire copy
    for story in (first, second, alone):
        assert stories[story]["urls"] == urls_of(archive, story)


def test_stories_table_shows_the_event_of_each_story(archive: Path) -> None:
    first, second = one_event(archive, EVENT)

    result = newswatch("stories", "--config", str(archive))

    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split()[:3] == ["story", "event", "articles"]
    by_story = {line.split()[0]: line.split()[1] for line in lines[:-1]}
    assert by_story[first] == by_story[second] == first[:11]
    assert by_story[story_of(archive)[ALONE]] != first[:11]


def test_events_lists_an_event_with_its_stories_outlets_and_urls(archive: Path) -> None:
    first, second = one_event(archive, EVENT)
    alone = story_of(archive)[ALONE]
    outlets = rows(
        archive,
        "SELECT DISTINCT source FROM articles WHERE story_id IN (?, ?) ORDER BY source",
        (first, second),
    )

    events = {row["id"]: row for row in json_lines("events", "--json", "--config", str(archive))}

    event = events[first]
    assert set(event) == {"id", "title", "first_seen", "last_seen", "stories", "outlets"}
    assert [story["id"] for story in event["stories"]] == [first, second]
    assert [story["urls"] for story in event["stories"]] == [
        urls_of(archive, first),
        urls_of(archive, second),
    ]
    assert event["outlets"] == [row["source"] for row in outlets]
    assert event["title"] == event["stories"][0]["title"]
    assert second not in events
    assert [story["id"] for story in events[alone]["stories"]] == [alone]
    assert len(events) == story_count(archive) - 1


def test_events_since_leaves_out_events_not_reported_lately(archive: Path) -> None:
    first, _ = one_event(archive, EVENT)
    change(archive, "UPDATE articles SET fetched_at = '2001-01-01T00:00:00Z', updated_at = NULL")
    change(
        archive,
        "UPDATE articles SET fetched_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
        " WHERE canonical_url LIKE ?",
        (f"%/{EVENT[1]}.html",),
    )

    recent = json_lines("events", "--since", "1d", "--json", "--config", str(archive))

    # the event was reported today by its second story: it is listed whole, first story too
    assert [event["id"] for event in recent] == [first]
    assert len(recent[0]["stories"]) == 2


def test_events_table_names_each_event_and_counts_its_stories(archive: Path) -> None:
    first, _ = one_event(archive, EVENT)
    change(archive, "UPDATE articles SET title = ?", ("\x1b]0;pwned\x07 \u202eMaroc",))

    result = newswatch("events", "--config", str(archive))

    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(first)]
    assert line.split()[1] == "2"
    assert "\\x1b]0;pwned\\x07 \\u202eMaroc" in line and "\x1b" not in result.stdout
    assert result.stdout.splitlines()[-1] == f"{story_count(archive) - 1} events"


def test_the_story_page_lists_the_other_reports_of_its_event(archive: Path) -> None:
    one_event(archive, EVENT)
    english, french = (story_of(archive)[slug] for slug in EVENT)
    change(
        archive,
        "UPDATE articles SET title = ? WHERE canonical_url LIKE ?",
        (HTML_TITLE, f"%/{EVENT[1]}.html"),
    )
    served = Served(archive)
    try:
        page = served.get(f"/stories/{english}")
        other = served.get(f"/stories/{french}")
        alone = served.get(f"/stories/{story_of(archive)[ALONE]}")
        odd = [served.get(f"/stories/{french}{tail}") for tail in ("%3Cb%3E", "%0A", "'", "%20x")]
    finally:
        served.stop()

    assert page.status_code == 200
    assert "Same event, reported by:" in page.text
    assert f'<a href="/stories/{french}"><bdi>{escape(HTML_TITLE)}</bdi></a>' in page.text
    assert "<img" not in page.text and "<b>un" not in page.text
    assert f'href="/stories/{english}"' not in page.text
    assert "Same event, reported by:" in other.text
    assert f'<a href="/stories/{english}">' in other.text
    assert "Same event, reported by:" not in alone.text
    assert [response.status_code for response in odd] == [404] * 4


def test_a_title_with_line_breaks_cannot_forge_rows_in_the_tables(archive: Path) -> None:
    """A site's title holding a newline and a fake row: each table still has one line per
    story or event."""
    change(archive, "UPDATE articles SET title = ?", ("Maroc\nst-forged 99 fake row\r\n",))

    for command, rows_of in (("events", story_count(archive)), ("stories", story_count(archive))):
        result = newswatch(command, "--config", str(archive))
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == rows_of + 2, result.stdout
        assert not any(line.startswith("st-forged") for line in lines)
