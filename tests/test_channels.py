"""Delivery through the real channel code to the loopback receivers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
from email.message import EmailMessage

import pytest
from pydantic import TypeAdapter, ValidationError

from alerts.channels import (
    ChannelConfig,
    DeliveryError,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)
from alerts.message import Alert
from alerts.senders import send
from tests.support import free_port

ARABIC = Alert(
    id="a1b2c3d4",
    watchlist="morocco-france-extradition",
    article={
        "url": "https://www.hespress.com/politique/123.html",
        "canonical_url": "https://www.hespress.com/123.html",
        "title": "فرنسا تسلم المغرب مطلوبا <script>alert(1)</script>",
        "source": "hespress-ar",
        "language": "ar",
        "published_at": "2026-11-28T10:00:00Z",
        "fetched_at": "2026-11-28T10:05:00Z",
        "html": "<p>not part of the payload</p>",
    },
    story={"id": "story-9", "articles": 3, "outlets": 2},
    matches=[
        {"concept": "morocco", "alias": "مغرب", "text": "بالمغرب", "fuzzy": False, "offset": 120},
        {"concept": "france", "alias": "فرنسا", "text": "فرنسا", "fuzzy": False, "offset": 131},
        {"concept": "extradition", "alias": "ترحيل", "text": "ترحيل", "fuzzy": True, "offset": 140},
    ],
    snippet="أعلنت السلطات بالمغرب أن فرنسا وافقت على ترحيل المتهم <b>فورا</b>",
)

ENGLISH = Alert(
    id="e5f6",
    watchlist="morocco-france",
    article={
        "url": "https://news.example.org/2026/11/28/extradition",
        "canonical_url": "https://news.example.org/2026/11/28/extradition",
        "title": "Morocco & France agree on extradition",
        "source": "example-en",
        "language": "en",
        "published_at": "2026-11-28T09:30:00+00:00",
        "fetched_at": "2026-11-28T09:31:00+00:00",
    },
    story={"id": "story-10", "articles": 1},
    matches=[
        {"concept": "morocco", "alias": "Morocco", "text": "Morocco", "fuzzy": False, "offset": 0},
        {"concept": "france", "alias": "France", "text": "France", "fuzzy": False, "offset": 10},
    ],
    snippet="Morocco and France signed the treaty on Friday.",
)


def deliver(channel: EmailChannel | WebhookChannel | SlackChannel, alert: Alert) -> str:
    return asyncio.run(send(channel, alert))


def failure(channel: EmailChannel | WebhookChannel | SlackChannel, alert: Alert) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        deliver(channel, alert)
    return caught.value


def webhook(url: str, **options: object) -> WebhookChannel:
    return WebhookChannel.model_validate({"type": "webhook", "url": url, **options})


def mail(port: int, **options: object) -> EmailChannel:
    """An email channel delivering to the loopback SMTP sink on `port`."""
    config = {
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "security": "none",
        "from": "newswatch <alerts@example.org>",
        "to": ["analyst@example.org", "desk@example.org"],
        "timeout": 5,
        **options,
    }
    return EmailChannel.model_validate(config)


# Webhook


def test_webhook_posts_the_documented_payload_with_headers(hook) -> None:
    answer = deliver(webhook(hook.url, headers={"X-Team": "osint"}), ARABIC)

    (request,) = hook.wait_for(1)
    assert answer == "HTTP 200"
    assert request.path == "/hook"
    assert request.json == {
        "id": "a1b2c3d4",
        "watchlist": "morocco-france-extradition",
        "article": {
            "url": "https://www.hespress.com/politique/123.html",
            "canonical_url": "https://www.hespress.com/123.html",
            "title": "فرنسا تسلم المغرب مطلوبا <script>alert(1)</script>",
            "source": "hespress-ar",
            "language": "ar",
            "published_at": "2026-11-28T10:00:00Z",
            "fetched_at": "2026-11-28T10:05:00Z",
        },
        "story": {"id": "story-9", "articles": 3, "outlets": 2},
        "matches": ARABIC.matches,
        "matches_total": 3,
        "snippet": ARABIC.snippet,
        "event": None,
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Newswatch-Id"] == "a1b2c3d4"
    assert request.headers["X-Team"] == "osint"
    assert "X-Newswatch-Signature" not in request.headers
    assert "بالمغرب".encode() in request.body, "UTF-8, not \\u escapes"


def test_webhook_signature_is_hmac_of_the_raw_body(hook) -> None:
    deliver(webhook(hook.url, secret="s3cret"), ARABIC)

    (request,) = hook.wait_for(1)
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Newswatch-Signature"] == f"sha256={expected}"


def test_custom_headers_cannot_break_the_signature(hook) -> None:
    deliver(webhook(hook.url, secret="k", headers={"X-Newswatch-Signature": "forged"}), ENGLISH)

    (request,) = hook.wait_for(1)
    expected = hmac.new(b"k", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Newswatch-Signature"] == f"sha256={expected}"


def test_server_error_is_temporary(hook) -> None:
    hook.respond_with(500)

    error = failure(webhook(hook.url), ENGLISH)

    assert not error.permanent
    assert "500" in str(error)


def test_not_found_is_permanent(hook) -> None:
    hook.respond_with(404)

    assert failure(webhook(hook.url), ENGLISH).permanent


def test_rate_limit_is_temporary_with_retry_after(hook) -> None:
    hook.respond_with((429, {"Retry-After": "7"}))

    error = failure(webhook(hook.url), ENGLISH)

    assert not error.permanent
    assert error.retry_after == 7


def test_retry_of_the_same_alert_is_identical(hook) -> None:
    hook.respond_with(503)
    channel = webhook(hook.url, secret="k")

    failure(channel, ARABIC)
    deliver(channel, ARABIC)

    first, second = hook.wait_for(2)
    assert [first.status, second.status] == [503, 200]
    assert first.body == second.body
    assert first.headers["X-Newswatch-Id"] == second.headers["X-Newswatch-Id"] == "a1b2c3d4"


def test_connection_refused_is_temporary() -> None:
    channel = WebhookChannel(type="webhook", url=f"http://127.0.0.1:{free_port()}/hook")

    assert not failure(channel, ENGLISH).permanent


def test_silent_server_times_out_as_temporary() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        channel = WebhookChannel(type="webhook", url=f"http://127.0.0.1:{port}/", timeout=0.3)

        error = failure(channel, ENGLISH)

    assert not error.permanent
    assert "timed out" in str(error)


def test_receiver_callback_sees_each_request(start_hook) -> None:
    seen: list[str] = []
    receiver = start_hook(on_request=lambda request: seen.append(request.json["id"]))
    deliver(webhook(receiver.url), ENGLISH)
    receiver.wait_for(1)
    assert seen == ["e5f6"]


# Slack


def test_slack_block_kit_message(hook) -> None:
    answer = deliver(SlackChannel(type="slack", webhook_url=hook.url), ARABIC)

    (request,) = hook.wait_for(1)
    body = request.json
    assert answer == "HTTP 200"
    assert "&lt;script&gt;" in body["text"]
    heading, context, matched, snippet = body["blocks"]
    assert heading["type"] == "section"
    assert heading["text"] == {
        "type": "mrkdwn",
        "text": "*<https://www.hespress.com/politique/123.html|"
        "فرنسا تسلم المغرب مطلوبا &lt;script&gt;alert(1)&lt;/script&gt;>*",
        "verbatim": True,
    }
    assert context["type"] == "context"
    assert "hespress-ar" in context["elements"][0]["text"]
    assert "2026-11-28 10:00 UTC" in context["elements"][0]["text"]
    assert "*بالمغرب*" in matched["text"]["text"]
    assert "*فرنسا*" in matched["text"]["text"]
    assert "*ترحيل*" in matched["text"]["text"]
    assert snippet["text"]["text"] == (
        "> \u200fأعلنت السلطات *بالمغرب* أن *فرنسا* وافقت على *ترحيل* المتهم"
        " &lt;b&gt;فورا&lt;/b&gt;"
    )
    assert "<script>" not in request.body.decode()


def test_slack_snippet_of_a_latin_alert_has_no_direction_mark(hook) -> None:
    deliver(SlackChannel(type="slack", webhook_url=hook.url), ENGLISH)

    (request,) = hook.wait_for(1)
    snippet = request.json["blocks"][-1]["text"]["text"]
    assert snippet == "> *Morocco* and *France* signed the treaty on Friday."


def test_slack_rejection_is_permanent_and_hides_the_webhook_url(hook) -> None:
    hook.respond_with(403)
    channel = SlackChannel(type="slack", webhook_url=f"{hook.url}/T000/B000/XXXXSECRET")

    error = failure(channel, ENGLISH)

    assert error.permanent
    assert "XXXXSECRET" not in str(error)


# Email


def test_email_has_subject_addresses_and_both_parts(smtp) -> None:
    answer = deliver(mail(smtp.port), ENGLISH)

    (message,) = smtp.wait_for(1)
    assert answer.startswith("250")
    assert message["Subject"] == "[morocco-france] Morocco & France agree on extradition"
    assert message["From"] == "newswatch <alerts@example.org>"
    assert message["To"] == "analyst@example.org, desk@example.org"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "https://news.example.org/2026/11/28/extradition" in part
        assert "example-en" in part
        assert "2026-11-28 09:30 UTC" in part
    assert "Morocco and France signed the treaty on Friday." in text
    assert '<html lang="en" dir="ltr">' in html
    assert (
        '<a href="https://news.example.org/2026/11/28/extradition" style="color: #1a0dab;">'
        "Morocco &amp; France agree on extradition</a>"
    ) in html
    assert "<mark>Morocco</mark> and <mark>France</mark> signed" in html


def test_arabic_email_is_right_to_left_and_escaped(smtp) -> None:
    deliver(mail(smtp.port), ARABIC)

    (message,) = smtp.wait_for(1)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert '<html lang="ar" dir="rtl">' in html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert (
        "أعلنت السلطات <mark>بالمغرب</mark> أن <mark>فرنسا</mark> وافقت على "
        "<mark>ترحيل</mark> المتهم &lt;b&gt;فورا&lt;/b&gt;"
    ) in html
    assert "extradition: ترحيل" in text
    assert message["Subject"] == f"[morocco-france-extradition] {ARABIC.article['title']}"


def test_message_id_is_stable_across_retries(smtp) -> None:
    channel = mail(smtp.port)
    deliver(channel, ARABIC)
    deliver(channel, ARABIC)
    deliver(channel, ENGLISH)

    first, second, other = smtp.wait_for(3)
    assert first["Message-ID"] == second["Message-ID"] == "<a1b2c3d4@newswatch>"
    assert other["Message-ID"] != first["Message-ID"]


def test_smtp_451_is_temporary(smtp) -> None:
    smtp.reply_with("451 try later")

    error = failure(mail(smtp.port), ENGLISH)

    assert not error.permanent
    assert "451" in str(error)
    assert smtp.messages == []


def test_smtp_550_is_permanent(smtp) -> None:
    smtp.reply_with("550 no such user")

    assert failure(mail(smtp.port), ENGLISH).permanent


def test_smtp_connection_refused_is_temporary() -> None:
    channel = EmailChannel.model_validate(
        {
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": free_port(),
            "security": "none",
            "from": "alerts@example.org",
            "to": ["analyst@example.org"],
            "timeout": 2,
        }
    )

    assert not failure(channel, ENGLISH).permanent


def test_starttls_required_but_not_offered_is_permanent(smtp) -> None:
    """A plain-text server where TLS was configured: no retry makes it safe, a person must act."""
    error = failure(mail(smtp.port, security="starttls"), ENGLISH)

    assert error.permanent
    assert "STARTTLS" in str(error)
    assert smtp.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_and_wrong_password(start_smtp) -> None:
    server = start_smtp(credentials=("newswatch", "right"))
    deliver(mail(server.port, username="newswatch", password="right"), ENGLISH)
    assert len(server.wait_for(1)) == 1

    error = failure(mail(server.port, username="newswatch", password="hunter2"), ENGLISH)

    assert error.permanent
    assert "535" in str(error)
    assert "hunter2" not in str(error)


def test_smtp_sink_callback_sees_each_message(start_smtp) -> None:
    subjects: list[str] = []
    arrived = threading.Event()

    def on_message(message: EmailMessage) -> None:
        subjects.append(message["Subject"])
        arrived.set()

    server = start_smtp(on_message=on_message)
    deliver(mail(server.port), ENGLISH)
    assert arrived.wait(5)
    assert subjects == ["[morocco-france] Morocco & France agree on extradition"]


# Config models


def test_email_port_follows_security() -> None:
    base = {"type": "email", "smtp_host": "h", "from": "a@example.org", "to": ["b@example.org"]}
    ports = {
        security: EmailChannel.model_validate({**base, "security": security}).smtp_port
        for security in ("starttls", "ssl", "none")
    }
    assert ports == {"starttls": 587, "ssl": 465, "none": 25}
    assert EmailChannel.model_validate({**base, "smtp_port": 2525}).smtp_port == 2525


@pytest.mark.parametrize(
    "config",
    [
        {"type": "email", "smtp_host": "h", "from": "a@example.org", "to": []},
        {"type": "email", "smtp_host": "h", "from": "not an address", "to": ["b@example.org"]},
        {"type": "webhook", "url": "ftp://example.org/"},
        {"type": "webhook", "url": "https://example.org/", "sign": "typo"},
        {"type": "slack", "webhook_url": "hooks.slack.com/services/x"},
    ],
)
def test_invalid_channel_configs_are_rejected(config: dict) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(ChannelConfig).validate_python(config)


def test_secrets_do_not_show_in_config_repr() -> None:
    channel = SlackChannel(type="slack", webhook_url="https://hooks.slack.com/services/T/B/SECRET")
    assert "SECRET" not in repr(channel)
    assert json.dumps(channel.model_dump(mode="json")).count("SECRET") == 0
