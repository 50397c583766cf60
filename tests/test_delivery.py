"""The outbox as the daemon drives it: a real SQLite file, the real senders, loopback receivers.

Each test queues alerts the way the pipeline does and runs delivery passes, then looks at what
the receivers got and at the rows a user sees with `newswatch alerts`.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from alerts import digest, health, outbox
from alerts.channels import ChannelConfig
from alerts.database import Database
from alerts.delivery import DeliveryReport, RetryPolicy, deliver_due
from alerts.health import HealthPolicy, SourceHealth
from alerts.message import Alert
from alerts.times import timestamp
from tests.support import free_port

# Retries fall due at once: a test that delivers twice sees the second pass retry, on any machine.
FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


@pytest.fixture
def db(outbox_db: Database) -> Database:
    """The library's tables alone: delivery needs nothing of the crawler's."""
    return outbox_db


def channel(**config: Any) -> ChannelConfig:
    return TypeAdapter(ChannelConfig).validate_python(config)


def queue(
    db: Database,
    channel_name: str,
    count: int,
    *,
    watchlist: str = "mfe",
    title: str = "Morocco extradites suspect to France",
) -> list[str]:
    """Queue one alert each for `count` new articles, as the pipeline does."""
    ids = []
    for _ in range(count):
        n = db.execute("SELECT count(*) FROM alerts").fetchone()[0] + 1
        url = f"https://news.example.org/{n}"
        alert = Alert(
            id=outbox.alert_id(watchlist, f"st-{n}", channel_name),
            watchlist=watchlist,
            article={
                "url": url,
                "title": f"{title} #{n}",
                "source": "example-en",
                "language": "en",
            },
            story={"id": f"st-{n}", "articles": 1},
            matches=[{"concept": "morocco", "alias": "Morocco", "text": "Morocco", "offset": 0}],
            snippet="Morocco and France agreed.",
        )
        assert outbox.enqueue(db, alert, channel_name, n)
        ids.append(alert.id)
    return ids


def mail_to(port: int, **extra: Any) -> ChannelConfig:
    """An email channel delivering to the loopback SMTP sink on `port`."""
    return channel(
        type="email",
        smtp_host="127.0.0.1",
        smtp_port=port,
        security="none",
        **{"from": "nw@example.org"},
        to=["desk@example.org"],
        **extra,
    )


def deliver(
    db: Database,
    channels: dict[str, ChannelConfig],
    policy: RetryPolicy = FAST,
    failed: list | None = None,
) -> DeliveryReport:
    on_failed = (
        (lambda row, error: failed.append((row["id"], error))) if failed is not None else None
    )
    return asyncio.run(deliver_due(db, channels, policy, on_failed=on_failed))


def rows(db: Database, **where: str) -> list[dict]:
    clause = " AND ".join(f"{key} = ?" for key in where) or "TRUE"
    return list(db.query(f"SELECT * FROM alerts WHERE {clause} ORDER BY seq", list(where.values())))


# Retries and failure


def test_server_error_is_retried_with_the_same_id(db, hook):
    hook.respond_with(500)
    (alert_id,) = queue(db, "hook", 1)
    channels = {"hook": channel(type="webhook", url=hook.url)}

    first = deliver(db, channels)
    (row,) = rows(db)
    assert (first.retrying, row["status"], row["attempts"]) == (1, "pending", 1)
    assert "HTTP 500" in row["last_error"]

    deliver(db, channels)

    (row,) = rows(db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)
    assert [r.headers["X-Newswatch-Id"] for r in hook.requests] == [alert_id, alert_id]
    assert hook.requests[0].body == hook.requests[1].body


def test_a_channel_back_after_an_outage_gets_its_backlog_at_once(db, hook):
    hook.respond_with(500, 500, 500, 500, 500)
    queue(db, "hook", 5)
    channels = {"hook": channel(type="webhook", url=hook.url)}
    hour = RetryPolicy(max_attempts=10, base_delay=3600, max_delay=3600)
    deliver(db, channels, hour)
    assert {r["status"] for r in rows(db)} == {"pending"}
    first = rows(db)[0]["id"]
    db.execute("UPDATE alerts SET next_attempt_at = ? WHERE id = ?", [timestamp(), first])

    report = deliver(db, channels, hour)

    assert len(report.sent) == 5, "the four others did not wait out their hour of backoff"
    assert {r["status"] for r in rows(db)} == {"sent"}
    assert len(hook.requests) == 10


def test_retry_after_is_honoured(db, hook):
    hook.respond_with((429, {"Retry-After": "120"}))
    queue(db, "hook", 1)
    channels = {"hook": channel(type="webhook", url=hook.url)}

    deliver(db, channels)
    deliver(db, channels)

    (row,) = rows(db)
    assert row["status"] == "pending"
    assert "HTTP 429" in row["last_error"]
    wait = datetime.fromisoformat(row["next_attempt_at"]) - datetime.now(UTC)
    assert timedelta(seconds=110) < wait <= timedelta(seconds=120)
    assert len(hook.requests) == 1, "not tried again before Retry-After"


def test_permanent_error_fails_at_once_and_is_reported(db, hook):
    hook.respond_with(404)
    (alert_id,) = queue(db, "hook", 1)
    failed: list = []

    report = deliver(db, {"hook": channel(type="webhook", url=hook.url)}, failed=failed)

    (row,) = rows(db)
    assert (report.failed, row["status"], row["attempts"]) == (1, "failed", 1)
    assert "HTTP 404" in row["last_error"]
    assert failed == [(alert_id, row["last_error"])]


def test_temporary_errors_fail_after_max_attempts_never_dropped(db, hook):
    hook.respond_with(503, 503, 503, 503)
    queue(db, "hook", 1)
    channels = {"hook": channel(type="webhook", url=hook.url)}

    for _ in range(4):
        deliver(db, channels)

    (row,) = rows(db)
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert len(hook.requests) == 3


def test_temporary_error_on_an_old_alert_fails_it(db, hook):
    hook.respond_with(503)
    queue(db, "hook", 1)
    db.execute(
        "UPDATE alerts SET created_at = ?",
        [timestamp(datetime.now(UTC) - timedelta(days=3))],
    )
    policy = RetryPolicy(max_attempts=10, base_delay=0.01, max_age=86400)

    deliver(db, {"hook": channel(type="webhook", url=hook.url)}, policy)

    (row,) = rows(db)
    assert (row["status"], row["attempts"]) == ("failed", 1)


def test_connection_refused_and_timeout_keep_alerts_pending(db):
    queue(db, "refused", 1)
    queue(db, "silent", 1)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        silent_url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        channels = {
            "refused": channel(type="webhook", url=f"http://127.0.0.1:{free_port()}/"),
            "silent": channel(type="webhook", url=silent_url, timeout=0.3),
        }
        deliver(db, channels)

    refused, silent = rows(db, channel="refused") + rows(db, channel="silent")
    assert refused["status"] == silent["status"] == "pending"
    assert "timed out" in silent["last_error"]
    assert refused["last_error"]


def test_smtp_4xx_then_ok_sends_once_and_5xx_fails(db, smtp):
    queue(db, "mail", 1)
    smtp.reply_with("451 4.3.0 try later")
    mail = mail_to(smtp.port, timeout=5)
    deliver(db, {"mail": mail})
    assert rows(db)[0]["status"] == "pending"
    deliver(db, {"mail": mail})
    assert rows(db)[0]["status"] == "sent"
    assert len(smtp.messages) == 1

    queue(db, "mail", 1)
    smtp.reply_with("550 5.1.1 no such user")
    deliver(db, {"mail": mail})

    second = rows(db)[1]
    assert second["status"] == "failed"
    assert "550" in second["last_error"]


# Digests


def test_digest_holds_exactly_the_alerts_of_its_period(db, hook):
    channels = {"desk": channel(type="webhook", url=hook.url, digest="0 6 * * *")}
    first = queue(db, "desk", 2) + queue(db, "desk", 1, watchlist="other")
    deliver(db, channels)
    assert hook.requests == [], "a digest channel's alerts are not sent one by one"

    digest.make_digest(db, "desk")
    deliver(db, channels)
    later = queue(db, "desk", 1)
    digest.make_digest(db, "desk")
    deliver(db, channels)

    one, two = (r.json for r in hook.wait_for(2))
    assert one["type"] == two["type"] == "digest"
    assert [a["id"] for a in one["alerts"]] == first
    assert [a["id"] for a in two["alerts"]] == later
    assert two["period"]["from"] == one["period"]["to"]
    assert {r["status"] for r in rows(db, kind="alert")} == {"bundled"}
    assert {r["status"] for r in rows(db, kind="digest")} == {"sent"}


def test_digest_due_while_stopped_is_detected(db):
    def next_six(after: datetime) -> datetime:
        at = after.replace(hour=6, minute=0, second=0, microsecond=0)
        return at if at > after else at + timedelta(days=1)

    noon = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert not digest.missed(db, "desk", next_six, noon), "the first start opens a period"
    assert not digest.missed(db, "desk", next_six, noon + timedelta(hours=17))
    assert digest.missed(db, "desk", next_six, noon + timedelta(hours=18))


def test_html_digest_groups_by_watchlist_and_escapes_titles(db, smtp):
    queue(db, "mail", 2, title="<script>alert(1)</script> Rabat")
    queue(db, "mail", 1, watchlist="second-list")
    mail = mail_to(smtp.port, digest="0 6 * * *")
    digest.make_digest(db, "mail")
    deliver(db, {"mail": mail})
    (message,) = smtp.wait_for(1)

    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert message["Subject"].startswith("newswatch digest: 3 alerts")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Rabat #1" in html
    assert html.index("<bdi>mfe</bdi>") < html.index("<bdi>second-list</bdi>")
    assert "== mfe (2 stories)" in text


def test_slack_digest_escapes_mrkdwn(db, hook):
    queue(db, "slack", 1, title="<script>x</script> & co")
    channels = {"slack": channel(type="slack", webhook_url=hook.url, digest="0 6 * * *")}
    digest.make_digest(db, "slack")

    deliver(db, channels)

    (request,) = hook.wait_for(1)
    assert "<script>" not in request.body.decode()
    lines = request.json["blocks"][1]["text"]["text"]
    assert "&lt;script&gt;x&lt;/script&gt; &amp; co #1" in lines


# Rate limit


def test_overflow_is_folded_into_one_summary_never_dropped(db, hook):
    ids = queue(db, "hook", 10)
    channels = {"hook": channel(type="webhook", url=hook.url, max_per_minute=3)}

    report = deliver(db, channels)

    received = hook.wait_for(3)
    assert len(received) == 3 and report.folded == 8
    assert [r.json["id"] for r in received[:2]] == ids[:2]
    summary = received[2].json
    assert summary["type"] == "overflow"
    assert [a["id"] for a in summary["alerts"]] == ids[2:]

    more = queue(db, "hook", 2)
    deliver(db, channels)
    assert len(hook.requests) == 3, "window full: the new alerts wait"
    assert {r["status"] for r in rows(db) if r["id"] in more} == {"pending"}


# Templates and Apprise


def test_template_dir_overrides_some_parts_and_html_stays_escaped(db, smtp, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "alert.subject.j2").write_text("NEWS {{ alert.source }}: {{ alert.title }}\n")
    (templates / "alert.html.j2").write_text("<p class=mine>{{ alert.title }}</p>\n")
    queue(db, "mail", 1, title="<b>Rabat</b>")
    mail = mail_to(smtp.port, template_dir=str(templates))
    deliver(db, {"mail": mail})
    (message,) = smtp.wait_for(1)

    assert message["Subject"] == "NEWS example-en: <b>Rabat</b> #1"
    assert (
        message.get_body(("html",)).get_content().strip()
        == "<p class=mine>&lt;b&gt;Rabat&lt;/b&gt; #1</p>"
    )
    assert "Matched:" in message.get_body(("plain",)).get_content(), "bundled text template"


def test_apprise_channel_delivers_through_apprise(db, hook):
    queue(db, "apprise", 1)
    url = hook.url.replace("http://", "json://")

    deliver(db, {"apprise": channel(type="apprise", urls=[url])})

    (request,) = hook.wait_for(1)
    assert request.json["title"] == "[mfe] Morocco extradites suspect to France #1"
    assert "https://news.example.org/1" in request.json["message"]
    assert rows(db)[0]["status"] == "sent"


# Health


def source(failures: int = 0, last_article: str | None = None) -> SourceHealth:
    return SourceHealth(
        "le-monde", "https://lemonde.example/feed", failures, "HTTP 503", None, last_article
    )


def test_failing_source_is_announced_once_and_its_recovery_once(db, hook):
    policy = HealthPolicy(notify=("ops",), silent_after=86400, failing_polls=2)
    recent = timestamp()

    queued = [health.check_source(db, policy, source(n, recent)) for n in (1, 2, 3)]
    queued.append(health.check_source(db, policy, source(0, recent)))
    queued.append(health.check_source(db, policy, source(0, recent)))
    deliver(db, {"ops": channel(type="webhook", url=hook.url)})

    assert queued == [0, 1, 0, 1, 0]
    failing, recovered = (r.json for r in hook.wait_for(2))
    assert (failing["type"], failing["event"]) == ("health", "source_failing")
    assert "le-monde" in failing["title"] and "HTTP 503" in failing["text"]
    assert recovered["event"] == "source_recovered"


def test_silent_source_is_announced(db, hook):
    policy = HealthPolicy(notify=("ops",), silent_after=86400, failing_polls=5)
    two_days_ago = timestamp(datetime.now(UTC) - timedelta(days=2))

    assert health.check_source(db, policy, source(0, two_days_ago)) == 1
    assert health.check_source(db, policy, source(0, two_days_ago)) == 0
    deliver(db, {"ops": channel(type="webhook", url=hook.url)})

    (request,) = hook.wait_for(1)
    assert request.json["event"] == "source_silent"
    assert request.json["title"] == "Source le-monde has published nothing for 1d"
