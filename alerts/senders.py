"""Sending one message through one channel: a sender per channel kind, picked by the channel's
`type` in `_SENDERS`. HTTP senders post once, without following redirects, and tell a failure
a retry can mend (timeouts, 5xx, 408, 429 with its Retry-After) from one it cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

from alerts.channels import (
    AppriseChannel,
    ChannelConfig,
    DeliveryError,
    FileChannel,
    SlackChannel,
    WebhookChannel,
)
from alerts.mail import send_email
from alerts.message import Message
from alerts.render import TemplateError, render, slack_message

TEMPORARY_HTTP_STATUSES = frozenset({408, 429})
USER_AGENT = "newswatch"


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
    "email": send_email,
    "webhook": _send_webhook,
    "slack": _send_slack,
    "file": _send_file,
    "apprise": _send_apprise,
}
