"""Email: the message a channel's templates make (text and HTML parts, stable Message-ID) and
its delivery over SMTP, which never falls back to plain text when TLS was asked for.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib

from alerts.channels import DeliveryError, EmailChannel
from alerts.message import Message
from alerts.render import render

_MSGID_SAFE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


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


async def send_email(channel: EmailChannel, alert: Message) -> str:
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
