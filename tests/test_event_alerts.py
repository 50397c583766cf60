"""Alerts keyed on an event (the stories reporting one happening): the payload carries the event
and its other reports, every medium says "Also reported by" with scraped titles and links made
harmless, and the outbox finds an event's alerts and notices when another report of it arrives.
The alerts library alone: nothing from `crawler/`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from alerts import outbox
from alerts import schema as alerts_schema
from alerts.channels import SlackChannel
from alerts.message import REPORTS_LISTED, Alert, Bundle, message_from
from alerts.render import render
from alerts.senders import send
from tests.test_delivery import channel, deliver
from tests.test_message_words import emailed

EVENT = "st-rabat-1"
REPORTS = [
    {"source": "le360-fr", "title": "Extradition : accord entre Rabat et Paris",
     "url": "https://fr.le360.ma/politique/extradition-42"},
    {"source": "france24-fr", "title": "Le Maroc va extrader un suspect vers la France",
     "url": "https://www.france24.com/fr/afrique/20261128-maroc"},
]  # fmt: skip
HOSTILE_TITLE = "<script>alert(1)</script> <!channel> *gras* <https://evil.example|click> @here"


def event_alert(
    reports: list[dict] | None = None,
    *,
    total: int | None = None,
    alert_id: str = "nw-event-1",
    story: str = EVENT,
    watchlist: str = "mfe",
) -> Alert:
    event = {"id": EVENT, "reports": REPORTS if reports is None else reports}
    if total is not None:
        event["reports_total"] = total
    return Alert(
        id=alert_id,
        watchlist=watchlist,
        article={
            "url": "https://www.hespress.com/politique/777.html",
            "canonical_url": "https://www.hespress.com/777.html",
            "title": "الرباط وباريس تتفقان على تسليم مطلوب",
            "source": "hespress-ar",
            "language": "ar",
            "published_at": "2026-11-28T10:00:00Z",
            "fetched_at": "2026-11-28T10:05:00Z",
        },
        story={"id": story, "articles": 1, "outlets": 1},
        matches=[
            {"concept": "morocco", "alias": "الرباط", "text": "الرباط", "fuzzy": False, "offset": 0}
        ],
        snippet="اتفقت الرباط وباريس على تسليم المطلوب",
        event=event,
    )


def slacked(hook, alert: Alert) -> dict:
    """The Slack body as the receiver got it."""
    asyncio.run(send(SlackChannel(type="slack", webhook_url=hook.url), alert))
    (request,) = hook.wait_for(1)
    return request.json


def reported_section(body: dict) -> str:
    (text,) = [
        block["text"]["text"]
        for block in body["blocks"]
        if block.get("text", {}).get("text", "").startswith("Also reported by")
    ]
    return text


def reported_line(text: str) -> str:
    (line,) = [line for line in text.splitlines() if "Also reported by" in line]
    return line


# The payload


def test_the_webhook_payload_carries_the_event_and_its_other_reports(hook) -> None:
    extra = {**REPORTS[0], "story_id": "st-9", "html": "<p>not in the payload</p>"}
    alert = event_alert([extra, REPORTS[1]])

    asyncio.run(send(channel(type="webhook", url=hook.url), alert))

    (request,) = hook.wait_for(1)
    assert request.json["event"] == {"id": EVENT, "reports": REPORTS, "reports_total": 2}
    assert message_from("alert", request.json) == alert


def test_an_alert_not_grouped_has_a_null_event_and_lists_no_reports(smtp) -> None:
    alert = event_alert()
    plain = Alert(**{**alert.payload(), "event": None})

    assert plain.payload()["event"] is None
    assert message_from("alert", json.loads(json.dumps(plain.payload()))) == plain
    text, html = emailed(smtp, plain)
    assert "Also reported by" not in text + html


def test_a_payload_queued_before_events_existed_reads_back_and_renders(outbox_db) -> None:
    old = event_alert().payload()
    del old["event"]
    outbox_db["alerts"].insert(
        {
            "id": old["id"],
            "watchlist": "mfe",
            "channel": "hook",
            "story_id": EVENT,
            "status": "pending",
            "created_at": "2026-11-28T10:00:00Z",
            "next_attempt_at": "2026-11-28T10:00:00Z",
            "payload": json.dumps(old),
        }
    )

    (row,) = outbox.due(outbox_db)
    alert = outbox.message_of(row)

    assert isinstance(alert, Alert)
    assert alert.event is None and alert.reports == ()
    assert alert.payload() == {**old, "event": None}
    assert "Also reported by" not in render(alert, "txt")


def test_a_thousand_reports_list_the_first_ten_and_count_the_rest(smtp, hook) -> None:
    many = [
        {"source": f"outlet-{n}", "title": f"Report {n}", "url": f"https://news{n}.example/a"}
        for n in range(1000)
    ]
    alert = event_alert(many)

    payload = json.loads(json.dumps(alert.payload()))
    assert len(payload["event"]["reports"]) == REPORTS_LISTED
    assert payload["event"]["reports_total"] == 1000
    assert message_from("alert", payload) == alert
    text, html = emailed(smtp, alert)
    assert reported_line(text).endswith("and 990 more")
    assert "outlet-9 " in text and "outlet-10 " not in text
    assert "and 990 more" in html
    assert reported_section(slacked(hook, alert)).endswith("and 990 more")


def test_malformed_reports_in_a_stored_payload_skip_themselves() -> None:
    payload = event_alert().payload()
    payload["event"] = {
        "id": EVENT,
        "reports": ["not an object", None, {"source": "le360-fr", "title": 7, "url": None}],
        "reports_total": "lots",
    }

    alert = message_from("alert", payload)

    assert isinstance(alert, Alert)
    assert alert.event == {
        "id": EVENT,
        "reports": [{"source": "le360-fr", "title": "7", "url": None}],
        "reports_total": 1,
    }
    assert reported_line(render(alert, "txt")) == "Also reported by: le360-fr (7)"
    for broken in ("an event", {"id": EVENT, "reports": 7}):
        payload["event"] = broken
        assert "Also reported by" not in render(message_from("alert", payload), "txt")


# Rendering


def test_email_names_each_other_report_with_its_link(smtp) -> None:
    text, html = emailed(smtp, event_alert())

    assert reported_line(text) == (
        "Also reported by: le360-fr (Extradition : accord entre Rabat et Paris"
        " <https://fr.le360.ma/politique/extradition-42>), france24-fr (Le Maroc va extrader un"
        " suspect vers la France <https://www.france24.com/fr/afrique/20261128-maroc>)"
    )
    assert '<a href="https://fr.le360.ma/politique/extradition-42"' in html
    assert "Also reported by: <bdi>le360-fr</bdi>" in html


def test_slack_names_each_other_report_with_its_link(hook) -> None:
    text = reported_section(slacked(hook, event_alert()))

    assert text == (
        "Also reported by: le360-fr (<https://fr.le360.ma/politique/extradition-42|Extradition :"
        " accord entre Rabat et Paris>), france24-fr (<https://www.france24.com/fr/afrique/"
        "20261128-maroc|Le Maroc va extrader un suspect vers la France>)"
    )


def test_a_hostile_report_title_and_url_are_shown_not_obeyed(smtp, hook) -> None:
    hostile = [
        {"source": "evil", "title": HOSTILE_TITLE, "url": "javascript:alert(document.cookie)"},
        {"source": "evil", "title": "x" * 100_000, "url": "https://evil.example/a|b>c<d"},
    ]
    alert = event_alert(hostile)

    text, html = emailed(smtp, alert)
    section = reported_section(slacked(hook, alert))

    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html and "javascript:" not in text and "javascript:" not in section
    assert len(reported_line(text)) < 600, "a huge title is cut"
    assert "<!channel>" not in section and "&lt;!channel&gt;" in section
    assert "<https://evil.example|click>" not in section
    assert "*gras*" not in section, "mrkdwn markers in a title cannot format"
    assert "@here" not in section
    assert "<https://evil.example/a%7Cb%3Ec%3Cd|x" in section, "the link cannot end early"


def test_a_slack_section_of_long_scraped_links_stays_under_slacks_limit(hook) -> None:
    long_links = [
        {"source": f"outlet-{n}", "title": "&" * 120, "url": f"https://n{n}.example/{'a' * 5000}"}
        for n in range(REPORTS_LISTED)
    ]

    body = slacked(hook, event_alert(long_links, total=40))

    section = reported_section(body)
    assert len(section) <= 3000
    assert "outlet-0 (<https://n0.example/" not in section, "a link over the limit is left out"
    assert section.startswith("Also reported by: outlet-0 (&amp;&amp;")
    shown = section.count("outlet-")
    assert section.endswith(f"and {40 - shown} more")


def test_an_update_notice_of_the_event_shows_its_reports(smtp) -> None:
    later = {"source": "mapexpress-fr", "title": "Accord d'extradition signé",
             "url": "https://www.mapexpress.ma/actualite/42"}  # fmt: skip
    notice = event_alert([*REPORTS, later], alert_id="nw-event-1:update:1")

    text, html = emailed(smtp, notice)

    assert (
        "mapexpress-fr (Accord d'extradition signé <https://www.mapexpress.ma/actualite/42>)"
        in (reported_line(text))
    )
    assert 'href="https://www.mapexpress.ma/actualite/42"' in html


def test_a_digest_lists_each_alerts_other_reports(outbox_db, smtp) -> None:
    outbox.enqueue(outbox_db, event_alert(), "desk", 1)
    rows = outbox.waiting(outbox_db, "desk", until=datetime.now(UTC))

    row = outbox.bundle(outbox_db, "digest", "desk", rows, None, "2026-11-28T12:00:00Z")
    digest = outbox.message_of(row)

    assert isinstance(digest, Bundle)
    text, html = emailed(smtp, digest)
    assert "  Also reported by: le360-fr (Extradition" in text
    assert 'href="https://fr.le360.ma/politique/extradition-42"' in html


# The outbox


def test_an_event_alert_records_its_event_and_reads_back_whole(outbox_db, hook) -> None:
    alert = event_alert()
    assert outbox.enqueue(outbox_db, alert, "hook", 1)
    assert not outbox.enqueue(outbox_db, event_alert(story="st-other"), "hook", 2)

    (row,) = outbox.due(outbox_db)
    assert row["event_id"] == EVENT
    assert outbox.message_of(row) == alert
    deliver(outbox_db, {"hook": channel(type="webhook", url=hook.url)})
    (request,) = hook.wait_for(1)
    assert request.json["event"]["id"] == EVENT


def _queue(db: sqlite_utils.Database, alert: Alert, notice: int = 0) -> None:
    assert outbox.enqueue(db, alert, "hook", 1, notice=notice)


def _story_alert(story: str, watchlist: str) -> Alert:
    plain = event_alert(story=story, watchlist=watchlist)
    key = outbox.alert_id(watchlist, story, "hook")
    return Alert(**{**plain.payload(), "id": key, "event": None})


def test_story_notices_finds_the_events_alerts_and_the_storys_own(outbox_db) -> None:
    event_key = outbox.alert_id("grouped", EVENT, "hook")
    _queue(outbox_db, event_alert(alert_id=event_key, watchlist="grouped"))
    _queue(outbox_db, event_alert(alert_id=f"{event_key}:update:1", story="st-b",
                                  watchlist="grouped"), notice=1)  # fmt: skip
    _queue(outbox_db, _story_alert("st-b", "by-story"))
    _queue(outbox_db, _story_alert(EVENT, "by-story"))
    # a watchlist alerted on the story before it switched to `group: event`
    _queue(outbox_db, _story_alert("st-b", "switched"))
    switched_key = outbox.alert_id("switched", EVENT, "hook")
    _queue(outbox_db, event_alert(alert_id=switched_key, watchlist="switched"))
    other = {"id": "st-other-event", "reports": []}
    _queue(outbox_db, Alert(**{**event_alert().payload(), "id": "nw-x", "event": other}))

    states = outbox.story_notices(outbox_db, "st-b", EVENT)

    # an alert keyed on the event's first story has the event's key: it is the event's
    assert [(s["watchlist"], s["key"], s["last_notice"], s["waiting"]) for s in states] == [
        ("by-story", "st-b", 0, 1),
        ("by-story", EVENT, 0, 1),
        ("grouped", EVENT, 1, 2),
        ("switched", "st-b", 0, 1),
        ("switched", EVENT, 0, 1),
    ]
    event_only = outbox.story_notices(outbox_db, "st-b", EVENT, story_rows=False)
    assert [(s["watchlist"], s["key"]) for s in event_only] == [
        ("by-story", EVENT),
        ("grouped", EVENT),
        ("switched", EVENT),
    ]
    assert [(s["watchlist"], s["event_id"]) for s in outbox.story_notices(outbox_db, EVENT)] == [
        ("by-story", None)
    ], "without an event, only the story's own alerts, as before events"


def test_story_alerts_shows_the_alerts_of_the_storys_event(outbox_db) -> None:
    _queue(outbox_db, event_alert(alert_id="nw-event"))
    _queue(outbox_db, _story_alert("st-b", "by-story"))
    _queue(outbox_db, _story_alert("st-c", "by-story"))

    listed = outbox.story_alerts(outbox_db, "st-b", EVENT)

    assert [(row["id"], row["event_id"]) for row in listed] == [
        ("nw-event", EVENT),
        (outbox.alert_id("by-story", "st-b", "hook"), None),
    ]
    assert [row["story_id"] for row in outbox.story_alerts(outbox_db, "st-c")] == ["st-c"]


def test_an_outbox_file_at_version_4_gains_event_keys_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    for migration in alerts_schema.MIGRATIONS[:4]:
        migration(db)
    alerts_schema.adopt(db, 4)
    old = _story_alert("st-7", "mfe")
    db["alerts"].insert(
        {
            "id": old.id,
            "watchlist": "mfe",
            "channel": "hook",
            "story_id": "st-7",
            "article_id": 7,
            "status": "sent",
            "created_at": "2026-11-28T10:00:00Z",
            "sent_at": "2026-11-28T10:01:00Z",
            "payload": json.dumps({k: v for k, v in old.payload().items() if k != "event"}),
        }
    )
    db.close()

    upgraded = alerts_schema.open_outbox(path)

    assert alerts_schema.stored_version(upgraded) == alerts_schema.SCHEMA_VERSION
    (row,) = upgraded.query("SELECT * FROM alerts")
    assert (row["id"], row["status"], row["event_id"]) == (old.id, "sent", None)
    assert outbox.message_of(row) == old
    assert any(index.columns == ["event_id"] for index in upgraded["alerts"].indexes)
    (state,) = outbox.story_notices(upgraded, "st-7", "st-7")
    assert (state["watchlist"], state["event_id"]) == ("mfe", None)
    upgraded.close()


def test_a_watchlist_switched_to_events_is_alerted_on_an_event_led_by_a_story_it_had(outbox_db):
    """Alerted on story st-b under `group: story`, then switched to `group: event`: st-b joins
    an event, and the event's alert (its own key) is queued, not refused as the story's."""
    _queue(outbox_db, _story_alert("st-b", "switched"))
    key = outbox.alert_id("switched", EVENT, "hook")

    assert outbox.enqueue(outbox_db, event_alert(alert_id=key, story="st-b", watchlist="switched"),
                          "hook", 1)  # fmt: skip
    assert outbox.story_alerts(outbox_db, "st-b", EVENT)[-1]["id"] == key
