"""Delivery against receivers, files and titles that misbehave: every message's attempt ends in
a recorded state, files hold whole lines, secrets stay out of logs and titles cannot ping."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.channels import SlackChannel
from alerts.database import Database
from alerts.delivery import RetryPolicy, deliver_due, send_deadline
from alerts.message import Alert
from alerts.senders import send
from tests.support import newswatch
from tests.test_delivery import FAST, channel, queue, rows


@pytest.fixture
def db(outbox_db: Database) -> Database:
    """The library's tables alone: delivery needs nothing of the crawler's."""
    return outbox_db


def test_an_absurd_retry_after_is_clamped_and_the_next_message_still_goes(db, hook):
    hook.respond_with((429, {"Retry-After": "9" * 400}))
    first, second = queue(db, "hook", 2)
    policy = RetryPolicy(max_age=3600.0)

    report = asyncio.run(deliver_due(db, {"hook": channel(type="webhook", url=hook.url)}, policy))

    assert (report.retrying, len(report.sent)) == (1, 1)
    by_id = {row["id"]: row for row in rows(db)}
    assert by_id[second]["status"] == "sent"
    assert by_id[first]["status"] == "pending"
    retry_at = datetime.fromisoformat(by_id[first]["next_attempt_at"])
    assert retry_at <= datetime.now(UTC) + timedelta(seconds=3600 + 5), "clamped to max_age"


def test_a_message_that_breaks_fails_its_own_attempt_and_the_run_goes_on(db, hook):
    broken, fine = queue(db, "hook", 2)
    db.execute(
        "UPDATE alerts SET payload = ? WHERE id = ?", ['{"written by": "elsewhere"}', broken]
    )
    channels = {"hook": channel(type="webhook", url=hook.url)}

    report = asyncio.run(deliver_due(db, channels, FAST))

    assert [r.json["id"] for r in hook.wait_for(1)] == [fine]
    row = rows(db, id=broken)[0]
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "TypeError" in row["last_error"]
    assert report.retrying == 1
    announced: list[str] = []
    for _ in range(FAST.max_attempts):
        asyncio.run(
            deliver_due(db, channels, FAST, on_failed=lambda r, _: announced.append(r["id"]))
        )
    row = rows(db, id=broken)[0]
    assert (row["status"], row["attempts"]) == ("failed", FAST.max_attempts)
    assert announced == [broken], "failed for good, and announced like any other"
    assert len(hook.requests) == 1, "the good message was sent once"


def _newswatch_limited(args: list[str], file_limit: int) -> subprocess.CompletedProcess[str]:
    """The CLI with RLIMIT_FSIZE: writes past `file_limit` bytes are cut short, then refused
    with EFBIG, as on a full disk (SIGXFSZ ignored, as a daemon's supervisor may)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return newswatch(*args, env={"PYTHONDONTWRITEBYTECODE": "1"}, preexec_fn=limit)


def _channels_config(tmp_path: Path, notify: str, channels: str) -> Path:
    """A config whose only use is `test-channel`: one unreachable source, one watchlist."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
database: {tmp_path / "news.db"}
sources: [{{name: s, url: "http://127.0.0.1:9/feed.xml", kind: feed}}]
concepts: {{m: {{en: [Morocco]}}}}
watchlists: [{{name: w, rule: m, notify: [{notify}]}}]
channels:
{channels.strip(chr(10))}
""",
        encoding="utf-8",
    )
    return config


def test_file_channel_on_a_full_disk_keeps_whole_lines(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    earlier = "".join(json.dumps({"id": f"old-{n}", "pad": "x" * 900}) + "\n" for n in range(1200))
    alerts.write_text(earlier, encoding="utf-8")
    config = _channels_config(tmp_path, "file", f'  file: {{type: file, path: "{alerts}"}}')
    before = alerts.read_bytes()

    result = _newswatch_limited(["test-channel", "file", "--config", str(config)], len(before) + 40)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "not delivered (temporary)" in result.stderr
    assert "Traceback" not in result.stderr
    assert alerts.read_bytes() == before, "no torn line left behind"


def test_debug_logging_never_prints_channel_tokens(tmp_path: Path, hook) -> None:
    base = hook.url.rsplit("/", 1)[0]
    tokens = {
        "slack": "slack-token-4f7a",
        "hook": "webhook-token-9c2e",
        "apprise": "apprise-token-b81d",
    }
    config = _channels_config(
        tmp_path,
        "slack",
        f"""
  slack: {{type: slack, webhook_url: "{base}/services/T0/B0/{tokens["slack"]}"}}
  hook: {{type: webhook, url: "{base}/hook?token={tokens["hook"]}"}}
  apprise: {{type: apprise, urls: ["{base.replace("http://", "json://")}/{tokens["apprise"]}"]}}""",
    )

    outputs = []
    for name in tokens:
        result = newswatch("--log-level", "debug", "test-channel", name, "--config", str(config))
        assert result.returncode == 0, result.stdout + result.stderr
        assert " DEBUG " in result.stderr, "debug logging was on"
        outputs.append(result.stdout + result.stderr)

    assert len(hook.wait_for(3)) == 3
    for token in tokens.values():
        assert all(token not in output for output in outputs), token


PINGS = re.compile(r"<!(channel|here|everyone)|@(channel|here|everyone)", re.IGNORECASE)


def test_slack_text_from_a_page_cannot_ping_anyone(hook) -> None:
    alert = Alert(
        id="ping-1",
        watchlist="mfe",
        article={
            "url": "https://news.example.org/1",
            "title": "<!channel> Morocco @here extradites @everyone",
            "source": "@channel-news",
            "language": "en",
            "published_at": "2026-11-28T10:00:00Z",
        },
        story={"id": "st-1", "articles": 1},
        matches=[{"concept": "morocco", "alias": "Morocco", "text": "Morocco", "offset": 0}] * 20,
        snippet="Morocco <!here|here> agreed, @Channel said, <!subteam^S1> too.",
        matches_total=16_000,
    )

    asyncio.run(send(SlackChannel(type="slack", webhook_url=hook.url), alert))

    (request,) = hook.wait_for(1)
    body = request.body.decode()
    assert not PINGS.search(json.loads(body)["text"])
    assert not PINGS.search(body.replace("\\u2060", "\u2060")), body
    assert "<!subteam" not in body
    mrkdwn = [
        text
        for block in request.json["blocks"]
        for text in [block.get("text"), *block.get("elements", [])]
        if text and text.get("type") == "mrkdwn"
    ]
    assert mrkdwn and all(text.get("verbatim") is True for text in mrkdwn)
    assert "Morocco" in request.json["text"], "the title still reads"
    assert "and 15,980 more hit(s)" in body


@contextmanager
def trickling_receiver() -> Iterator[str]:
    """A webhook that answers one byte at a time, each well within the channel's timeout, and
    never finishes: without a deadline on the whole send, it holds the sender (and its lease)
    forever."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(0.05):
                connection.sendall(b"X-Slow: y\r\n")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_a_receiver_that_never_finishes_answering_is_cut_at_the_deadline(db, hook):
    slow, fine = queue(db, "slow", 1), queue(db, "hook", 1)
    with trickling_receiver() as url:
        channels = {
            # ten times the trickle's pace: a loaded machine that holds a byte back a moment
            # must not turn the cut at the deadline into a read timeout
            "slow": channel(type="webhook", url=url, timeout=0.5),
            "hook": channel(type="webhook", url=hook.url),
        }
        report = asyncio.run(deliver_due(db, channels, FAST))

    (row,) = rows(db, channel="slow")
    assert (row["id"], row["status"], row["last_error"]) == (
        *slow,
        "pending",
        f"no answer within {send_deadline(channels['slow']):g}s",
    )
    assert [r.json["id"] for r in hook.wait_for(1)] == fine
    assert report.retrying == 1
