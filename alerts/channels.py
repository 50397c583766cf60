"""Channels as users configure them, and how their senders report a failure.

Each channel kind is a pydantic model selected by its `type` key plus one sender in
`alerts.senders`: adding a kind touches nothing else. Senders report failure as
`DeliveryError`, telling the outbox whether a retry can help; error messages never include
secrets (passwords, signing keys, Slack webhook URLs, which embed their token).
"""

from __future__ import annotations

import logging
from email.utils import parseaddr
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_SMTP_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# Libraries that log request URLs (Slack and webhook tokens, Apprise URLs) below WARNING. Set
# here, where channel configs come from, so no entry point can forget: even `--log-level debug`
# never prints a channel secret.
URL_LOGGING_LIBRARIES = ("apprise", "urllib3", "httpcore", "httpx")


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
    """Mail through an SMTP server: STARTTLS unless told otherwise, text and HTML parts."""

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
    """The JSON payload POSTed to a URL, signed with HMAC-SHA256 when it has a `secret`."""

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
    """A Slack incoming webhook: Block Kit from templates; its URL holds a token, a secret."""

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
