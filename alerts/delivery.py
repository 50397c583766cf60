"""Drain the outbox: send what is due, record each outcome before moving to the next alert."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from alerts import outbox
from alerts.channels import ChannelConfig, DeliveryError, send
from alerts.message import Alert

log = logging.getLogger("newswatch.delivery")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; an alert is failed (and shown) after max_attempts."""

    max_attempts: int = 10
    base_delay: float = 30.0
    max_delay: float = 3600.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        jittered = backoff * random.uniform(0.5, 1.0)
        return max(jittered, retry_after or 0.0)


@dataclass
class DeliveryReport:
    sent: list[Alert] = field(default_factory=list)
    retrying: int = 0
    failed: int = 0


async def deliver_due(
    db: sqlite_utils.Database,
    channels: Mapping[str, ChannelConfig],
    policy: RetryPolicy = RetryPolicy(),
    on_sent: Callable[[Alert, str], None] | None = None,
) -> DeliveryReport:
    report = DeliveryReport()
    for row in outbox.due(db):
        channel = channels.get(row["channel"])
        if channel is None:
            log.warning(
                "alert %s kept pending: channel %r is not in the config", row["id"], row["channel"]
            )
            continue
        alert = await _deliver_one(db, row, channel, policy, report)
        if alert is not None and on_sent is not None:
            on_sent(alert, row["channel"])
    return report


async def _deliver_one(
    db: sqlite_utils.Database,
    row: dict[str, Any],
    channel: ChannelConfig,
    policy: RetryPolicy,
    report: DeliveryReport,
) -> Alert | None:
    """Send one alert and record the outcome; returns the alert when it was accepted."""
    alert = outbox.alert_of(row)
    url = alert.article.get("url")
    outbox.mark_sending(db, row)
    attempts = row["attempts"] + 1
    try:
        answer = await send(channel, alert)
    except Exception as exc:
        failure = exc if isinstance(exc, DeliveryError) else _unexpected(exc)
        if failure.permanent or attempts >= policy.max_attempts:
            outbox.mark_failed(db, row, str(failure))
            report.failed += 1
            log.error(
                "alert %s to %s failed for good after %d attempt(s): %s (watchlist=%s url=%s)",
                alert.id,
                row["channel"],
                attempts,
                failure,
                alert.watchlist,
                url,
            )
            return None
        delay = policy.delay(attempts, failure.retry_after)
        outbox.mark_retry(db, row, str(failure), delay)
        report.retrying += 1
        log.warning(
            "alert %s to %s not delivered (attempt %d): %s; retry in %.0fs (url=%s)",
            alert.id,
            row["channel"],
            attempts,
            failure,
            delay,
            url,
        )
        return None
    outbox.mark_sent(db, row)
    report.sent.append(alert)
    log.info(
        "alert %s sent to %s (%s): watchlist=%s url=%s",
        alert.id,
        row["channel"],
        answer,
        alert.watchlist,
        url,
    )
    return alert


def _unexpected(exc: Exception) -> DeliveryError:
    """A sender bug must not strand the alert in `sending`: treat it as a temporary failure."""
    log.exception("unexpected error while sending")
    return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)
