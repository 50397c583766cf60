"""Channel configuration models and the senders that deliver an alert through them.

Each channel kind is a pydantic model selected by its `type` key plus one entry in `_SENDERS`:
adding a kind touches nothing else. Senders report failure as `DeliveryError`, telling the
outbox whether a retry can help; error messages never include secrets (passwords, signing
keys, Slack webhook URLs, which embed their token).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import aiosmtplib
import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.message import Message
from alerts.render import TemplateError, render, slack_message

DEFAULT_SMTP_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# Libraries that log request URLs (Slack and webhook tokens, Apprise URLs) below WARNING. Set
# here, where channel configs come from, so no entry point can forget: even `--log-level debug`
# never prints a channel secret.
URL_LOGGING_LIBRARIES = ("apprise", "urllib3", "httpcore", "httpx")
TEMPORARY_HTTP_STATUSES = frozenset({408, 429})
USER_AGENT = "newswatch"
_MSGID_SAFE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


def _quiet_url_logging() -> None:
    for name in URL_LOGGING_LIBRARIES:
        library = logging.getLogger(name)
        library.setLevel(max(logging.WARNING, library.getEffectiveLevel()))


_quiet_url_logging()


class DeliveryError(Exception):
    """A failed delivery; `permanent` means retrying the same message cannot succeed."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def _mailbox(value: str) -> str:
    """Reject what cannot be an address at config time rather than at the first alert."""
    address = parseaddr(value)[1]
    if "@" not in address or " " in address:
        raise ValueError(f"not an email address: {value!r}")
    return value


class _Channel(BaseModel):
    """Options every channel has: `digest` (a crontab line) holds its alerts for one message per
    period; `max_per_minute` folds what is over the limit into one summary message."""

    model_config = ConfigDict(extra="forbid")

    digest: str | None = None
    max_per_minute: int | None = Field(None, ge=2)


class _Rendered(_Channel):
    """Channels whose messages are written for people, from templates a channel may override."""

    template_dir: str | None = None


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value


class EmailChannel(_Rendered):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["email"]
    smtp_host: str
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    timeout: float = Field(30, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _port_follows_security(cls, data: Any) -> Any:
        """An omitted port means the usual one for the chosen security (587/465/25)."""
        if isinstance(data, dict) and data.get("smtp_port") is None:
            port = DEFAULT_SMTP_PORTS.get(data.get("security", "starttls"), 587)
            return {**data, "smtp_port": port}
        return data

    @field_validator("from_")
    @classmethod
    def _check_from(cls, value: str) -> str:
        return _mailbox(value)

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: list[str]) -> list[str]:
        return [_mailbox(address) for address in value]


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: str
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(20, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class FileChannel(_Channel):
    """Alerts appended as JSON lines (the webhook payload): needs no server and no secret, so a
    fresh install alerts somewhere, and other tools can tail the file."""

    type: Literal["file"]
    path: str = Field(min_length=1)


class SlackChannel(_Rendered):
    type: Literal["slack"]
    webhook_url: SecretStr
    timeout: float = Field(20, gt=0)

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        try:
            _http_url(value.get_secret_value())
        except ValueError:
            raise ValueError("must be an http:// or https:// URL") from None
        return value


class AppriseChannel(_Rendered):
    """Discord, Teams, Telegram, ntfy and the rest through Apprise URLs (the `apprise` extra).
    The URLs hold tokens, so they are secrets and never logged."""

    type: Literal["apprise"]
    urls: list[SecretStr] = Field(min_length=1)

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: list[SecretStr]) -> list[SecretStr]:
        try:
            import apprise
        except ImportError:
            raise ValueError(
                "the apprise channel needs the apprise package: pip install 'newswatch[apprise]'"
            ) from None
        for i, url in enumerate(urls):
            if apprise.Apprise.instantiate(url.get_secret_value()) is None:
                raise ValueError(f"urls[{i}] is not a URL Apprise supports")
        return urls


ChannelConfig = Annotated[
    EmailChannel | WebhookChannel | SlackChannel | FileChannel | AppriseChannel,
    Field(discriminator="type"),
]


async def send(channel: ChannelConfig, message: Message) -> str:
    """Deliver one message; returns the receiver's answer for the delivery log."""
    try:
        return await _SENDERS[channel.type](channel, message)
    except TemplateError as error:
        raise DeliveryError(str(error), permanent=True) from error


def sign(secret: str, body: bytes) -> str:
    """The signature header value, so receivers can check the body came from us unaltered."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _send_webhook(channel: WebhookChannel, message: Message) -> str:
    body = json.dumps(message.payload(), ensure_ascii=False).encode()
    headers = {"User-Agent": USER_AGENT, **channel.headers}
    headers["Content-Type"] = "application/json"
    headers["X-Newswatch-Id"] = message.id
    if channel.secret is not None:
        headers["X-Newswatch-Signature"] = sign(channel.secret.get_secret_value(), body)
    return await _post(channel.url, body, headers, channel.timeout, "webhook")


async def _send_file(channel: FileChannel, message: Message) -> str:
    line = json.dumps(message.payload(), ensure_ascii=False) + "\n"
    try:
        await asyncio.to_thread(_append, Path(channel.path), line)
    except OSError as error:
        raise DeliveryError(
            f"file: cannot append to {channel.path}: {error}", permanent=False
        ) from error
    return f"appended to {channel.path}"


def _append(path: Path, line: str) -> None:
    """Append a whole line or nothing: a full disk (or quota) can take part of a write, and a
    torn JSON line would break every tool reading the file. On failure the file is cut back to
    its size before the write; the alert is retried later, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError:
            _cut_back(fd, size)
            raise
    finally:
        os.close(fd)


def _cut_back(fd: int, size: int) -> None:
    """Drop a partial line; a file that cannot be truncated (a device) has nothing to drop."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, size)


async def _send_slack(channel: SlackChannel, message: Message) -> str:
    body = json.dumps(slack_message(message, channel.template_dir), ensure_ascii=False).encode()
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json; charset=utf-8"}
    return await _post(
        channel.webhook_url.get_secret_value(), body, headers, channel.timeout, "slack"
    )


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~10–200 ms of CPU: once per process, not once per alert."""
    return httpx.create_ssl_context()


async def _post(url: str, body: bytes, headers: dict[str, str], timeout: float, label: str) -> str:
    """POST once, without following redirects: a redirect would turn the POST into a GET."""
    try:
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, verify=_tls_context()
        ) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as error:
        raise DeliveryError(f"{label}: timed out after {timeout:g}s", permanent=False) from error
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
        raise DeliveryError(f"{label}: unusable URL", permanent=True) from error
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise DeliveryError(f"{label}: {reason}", permanent=False) from error
    if response.is_success:
        return f"HTTP {response.status_code}"
    raise _http_failure(response, label)


def _http_failure(response: httpx.Response, label: str) -> DeliveryError:
    status = response.status_code
    detail = " ".join(response.text[:200].split())
    message = f"{label}: HTTP {status}" + (f" {detail}" if detail else "")
    if response.is_redirect:
        message += "; the endpoint moved, update the channel URL"
    temporary = status in TEMPORARY_HTTP_STATUSES or status >= 500
    retry_after = _retry_after(response.headers.get("Retry-After")) if temporary else None
    return DeliveryError(message, permanent=not temporary, retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def message_id(alert_id: str) -> str:
    """The same alert always gets the same Message-ID, so mail clients drop retried copies."""
    local = alert_id if _MSGID_SAFE.fullmatch(alert_id) and ".." not in alert_id else None
    return f"<{local or hashlib.sha256(alert_id.encode()).hexdigest()[:32]}@newswatch>"


def build_email(channel: EmailChannel, alert: Message) -> EmailMessage:
    templates = channel.template_dir
    message = EmailMessage()
    _set_subject(message, render(alert, "subject", templates))
    message["From"] = channel.from_
    message["To"] = ", ".join(channel.to)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id(alert.id)
    message["Content-Language"] = alert.language
    message["Auto-Submitted"] = "auto-generated"
    message["X-Newswatch-Id"] = alert.id
    message.set_content(render(alert, "txt", templates))
    message.add_alternative(render(alert, "html", templates), subtype="html")
    return message


def _set_subject(message: EmailMessage, subject: str) -> None:
    """Pre-encode non-ASCII subjects: Python's folder drops the space at a fold between two
    encoded words (CPython gh-144156), turning "تسلم المغرب" into "تسلمالمغرب" in every client.
    `Header` keeps each space inside an encoded word, and `set_raw` stops the policy refolding.
    """
    if subject.isascii():
        message["Subject"] = subject
    else:
        message.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode())


async def _send_email(channel: EmailChannel, alert: Message) -> str:
    message = build_email(channel, alert)
    try:
        return await _smtp_deliver(channel, message)
    except aiosmtplib.SMTPRecipientsRefused as error:
        raise _refused(error) from error
    except aiosmtplib.SMTPResponseException as error:
        permanent = 500 <= error.code < 600
        reply = f"{error.code} {error.message}".strip()
        raise DeliveryError(f"smtp: {reply}", permanent=permanent) from error
    except (aiosmtplib.SMTPNotSupported, ValueError) as error:
        raise DeliveryError(f"smtp: {error}", permanent=True) from error
    except (aiosmtplib.SMTPException, OSError) as error:
        reason = str(error) or type(error).__name__
        raise DeliveryError(f"smtp: {reason}", permanent=False) from error


async def _smtp_deliver(channel: EmailChannel, message: EmailMessage) -> str:
    client = aiosmtplib.SMTP(
        hostname=channel.smtp_host,
        port=channel.smtp_port,
        use_tls=channel.security == "ssl",
        start_tls=False,
        timeout=channel.timeout,
    )
    async with client:
        if channel.security == "starttls":
            await _require_starttls(client)
        if channel.username:
            password = channel.password.get_secret_value() if channel.password else ""
            await client.login(channel.username, password)
        refused, reply = await client.send_message(
            message,
            sender=parseaddr(channel.from_)[1],
            recipients=[parseaddr(address)[1] for address in channel.to],
        )
    answer = f"250 {reply}".strip()
    if refused:
        answer += " (refused: " + ", ".join(sorted(refused)) + ")"
    return answer


async def _require_starttls(client: aiosmtplib.SMTP) -> None:
    """Never fall back to plain text when TLS was asked for.

    A server that does not offer STARTTLS is a configuration mismatch (or someone stripping
    the offer in transit): retrying sends nothing new, so this is reported as permanent for a
    person to look at rather than retried quietly.
    """
    await client.ehlo()
    if not client.supports_extension("starttls"):
        raise DeliveryError(
            "smtp: server does not offer STARTTLS; refusing to send in clear "
            "(set security: ssl or none if that is intended)",
            permanent=True,
        )
    await client.starttls()


def _refused(error: aiosmtplib.SMTPRecipientsRefused) -> DeliveryError:
    """Greylisting refuses recipients with 4xx: only all-5xx refusals are final."""
    codes = [refusal.code for refusal in error.recipients]
    details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
    permanent = bool(codes) and all(500 <= code < 600 for code in codes)
    return DeliveryError(f"smtp: recipients refused ({details})", permanent=permanent)


async def _send_apprise(channel: AppriseChannel, message: Message) -> str:
    """Apprise reports only success or failure per URL, never why: a failure is temporary, and
    its own log (at warning) says which service refused."""
    import apprise

    notifier = apprise.Apprise()
    for url in channel.urls:
        notifier.add(url.get_secret_value())
    title = render(message, "subject", channel.template_dir)
    body = render(message, "txt", channel.template_dir)
    if not await notifier.async_notify(body=body, title=title):
        raise DeliveryError(
            f"apprise: at least one of {len(channel.urls)} service(s) refused", permanent=False
        )
    return f"apprise: {len(channel.urls)} service(s) accepted"


_SENDERS: dict[str, Callable[[Any, Message], Awaitable[str]]] = {
    "email": _send_email,
    "webhook": _send_webhook,
    "slack": _send_slack,
    "file": _send_file,
    "apprise": _send_apprise,
}
