"""Drain the outbox: send what is due, record each outcome before moving to the next message."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts import outbox
from alerts.channels import ChannelConfig, DeliveryError
from alerts.database import Database, database_errors
from alerts.message import Alert, Message
from alerts.senders import send
from alerts.times import parse_time, timestamp

log = logging.getLogger("newswatch.delivery")

RATE_WINDOW = 60.0
RECOVERY_PASSES = 3
# A send is a few network steps (connect, TLS, request and answer; SMTP's commands), each under
# the channel's timeout: its deadline is this many timeouts.
SEND_STEPS = 5
DEFAULT_TIMEOUT = 30.0  # for channels without a timeout of their own (file, Apprise)
# A lease lasts the send's deadline and this margin: time to record the outcome, and for the
# clocks of the hosts, which compare the stored end of the lease, to differ a little.
LEASE_MARGIN = 60.0
# seconds between two tries to record a delivered message while the database is unreachable
RECORD_RETRY = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a message is failed (and shown) after max_attempts, or
    when a send fails and it was queued longer than max_age ago: news that late is no alert."""

    max_attempts: int = 10
    base_delay: float = 30.0
    max_delay: float = 3600.0
    max_age: float = 86400.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Backoff, or the receiver's Retry-After when longer, but never beyond `max_age`: a
        receiver can send any number (`Retry-After: 1e400`), and the alert is stale by then."""
        backoff = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        jittered = backoff * random.uniform(0.5, 1.0)
        return min(max(jittered, retry_after or 0.0), self.max_age)

    def gives_up(self, attempts: int, created_at: str) -> str | None:
        """Why a temporary failure is final, or None to retry."""
        if attempts >= self.max_attempts:
            return f"{attempts} attempt(s)"
        queued = parse_time(created_at)
        if queued is not None and (datetime.now(UTC) - queued).total_seconds() >= self.max_age:
            return f"{self.max_age:g}s in the outbox"
        return None


@dataclass
class DeliveryReport:
    """What one delivery pass did, for the daemon's log line and `--once` summary."""

    sent: list[Message] = field(default_factory=list)
    retrying: int = 0
    failed: int = 0
    folded: int = 0


FailureHook = Callable[[dict[str, Any], str], None]


async def deliver_due(
    db: Database,
    channels: Mapping[str, ChannelConfig],
    policy: RetryPolicy = RetryPolicy(),
    on_sent: Callable[[Message, str], None] | None = None,
    on_failed: FailureHook | None = None,
    *,
    sender: str | None = None,
) -> DeliveryReport:
    """Send every due row, channel by channel; `on_failed(row, error)` hears of each message that
    failed for good, so it can be announced where operators look. A channel that comes back
    after an outage gets its backlog in the same call (a few passes at most). `sender` names
    who claims the rows (this host and process by default): several senders may drain one
    outbox, each row is sent by one of them."""
    report = DeliveryReport()
    sender = sender or sender_name()
    for _ in range(RECOVERY_PASSES):
        if not await _pass(db, channels, policy, on_sent, on_failed, report, sender):
            break
    return report


def sender_name() -> str:
    """The claimer of rows, as operators find it in `ps` and the logs: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def send_deadline(channel: ChannelConfig) -> float:
    """How long one send may take before it is given up as a temporary failure."""
    return SEND_STEPS * getattr(channel, "timeout", DEFAULT_TIMEOUT)


async def _pass(
    db: Database,
    channels: Mapping[str, ChannelConfig],
    policy: RetryPolicy,
    on_sent: Callable[[Message, str], None] | None,
    on_failed: FailureHook | None,
    report: DeliveryReport,
    sender: str,
) -> bool:
    """One pass over the rows due when it starts, each tried at most once; True when a
    recovered channel has backed-off rows due now."""
    held = [name for name, channel in channels.items() if channel.digest]
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for row in outbox.due(db, held, sender=sender):
        by_channel.setdefault(row["channel"], []).append(row)
    expedited = 0
    for name, rows in by_channel.items():
        channel = channels.get(name)
        if channel is None:
            log.warning(
                "%d message(s) kept pending: channel %r is not in the config", len(rows), name
            )
            continue
        recovered = False
        for row in _within_rate(db, name, channel, rows, held, sender, report):
            claimed = _claim(db, name, channel, row, sender)
            if claimed is None:
                continue
            try:
                message = await _deliver_one(db, claimed, channel, policy, report, on_failed)
            except Exception as exc:
                # its payload, a hook, the bookkeeping: that attempt failed, the next goes on
                _record_failure(db, claimed, _unexpected(exc), policy, report, on_failed)
                continue
            if message is None:
                continue
            recovered = recovered or claimed["attempts"] > 1
            if on_sent is not None:
                on_sent(message, name)
        if recovered and (count := outbox.expedite(db, name)):
            log.info("channel %s answers again: %d backed-off message(s) due now", name, count)
            expedited += count
    return expedited > 0


def _claim(
    db: Database, name: str, channel: ChannelConfig, row: dict[str, Any], sender: str
) -> dict[str, Any] | None:
    """Claim the row unless another sender has it, or the channel's rate window filled up
    meanwhile (other senders send on it too). A row whose last sender left it `sending` is
    taken over, and said so: that send may be repeated, under the same id."""
    with db.atomic():
        outbox.lock_channel(db, name)
        if channel.max_per_minute and _budget(db, name, channel.max_per_minute) <= 0:
            return None
        claimed = outbox.claim(db, row["id"], sender, send_deadline(channel) + LEASE_MARGIN)
    if claimed is not None and row["status"] == outbox.SENDING:
        log.warning(
            "%s %s to %s: taken over from sender %s (gone, or past its lease); sending it again",
            *_names(row),
            row["claimed_by"],
        )
    return claimed


def _budget(db: Database, name: str, limit: int) -> int:
    """How many more messages the channel may send in the current window, by any sender."""
    since = datetime.now(UTC) - timedelta(seconds=RATE_WINDOW)
    return limit - outbox.in_window(db, name, since)


def _within_rate(
    db: Database,
    name: str,
    channel: ChannelConfig,
    rows: list[dict[str, Any]],
    held: list[str],
    sender: str,
    report: DeliveryReport,
) -> list[dict[str, Any]]:
    """What a rate-limited channel may send now. Alerts over `max_per_minute` are folded into one
    summary that takes the last place in the window; none is dropped. With the window already
    full, everything waits for the next delivery pass. Decided under the channel's lock, on the
    rows due then: another sender may have taken some of `rows` since."""
    limit = channel.max_per_minute
    if not limit:
        return rows
    with db.atomic():
        outbox.lock_channel(db, name)
        budget = _budget(db, name, limit)
        rows = outbox.due(db, held, channel=name, sender=sender)
        if len(rows) <= budget:
            return rows
        if budget <= 0:
            log.info(
                "channel %s: %d message(s) wait, rate limit %d/min reached", name, len(rows), limit
            )
            return []
        return _fold(db, name, limit, budget, rows, report)


def _fold(
    db: Database,
    name: str,
    limit: int,
    budget: int,
    rows: list[dict[str, Any]],
    report: DeliveryReport,
) -> list[dict[str, Any]]:
    """Messages that are not alerts go first (they cannot be folded); the alerts beyond the
    budget go into one summary, sent last."""
    others = [row for row in rows if row["kind"] != "alert"][:budget]
    alerts = [row for row in rows if row["kind"] == "alert"]
    room = budget - len(others)
    if len(alerts) <= room:
        return others + alerts
    if room < 1:
        return others
    keep, fold = alerts[: room - 1], alerts[room - 1 :]
    summary = outbox.bundle(db, "overflow", name, fold, fold[0]["created_at"], timestamp())
    report.folded += len(fold)
    log.warning(
        "channel %s: rate limit %d/min: %d alert(s) folded into summary %s",
        name,
        limit,
        len(fold),
        summary["id"],
    )
    return others + keep + [summary]


def _describe(message: Message) -> str:
    """What the delivery log names besides the id: the article URL or the message's kind."""
    if isinstance(message, Alert):
        return f"watchlist={message.watchlist} url={message.article.get('url')}"
    return f"{message.kind}"


async def _deliver_one(
    db: Database,
    row: dict[str, Any],
    channel: ChannelConfig,
    policy: RetryPolicy,
    report: DeliveryReport,
    on_failed: FailureHook | None,
) -> Message | None:
    """Send one claimed message and record the outcome; returns the message when it was
    accepted. The send ends by its deadline, before the lease does: no other sender takes the
    row over while this one may still deliver it."""
    message = outbox.message_of(row)
    what = _describe(message)
    try:
        answer = await _send_by_deadline(channel, message)
    except Exception as exc:
        failure = exc if isinstance(exc, DeliveryError) else _unexpected(exc)
        _record_failure(db, row, failure, policy, report, on_failed, what)
        return None
    await _record_sent(db, row, what)
    report.sent.append(message)
    log.info("%s %s sent to %s (%s): %s", row["kind"], message.id, row["channel"], answer, what)
    return message


async def _record_sent(db: Database, row: dict[str, Any], what: str) -> None:
    """A message the receiver accepted is never recorded as failed: while the database cannot
    be written (PostgreSQL restarting), recording it is tried again until its lease would
    end; after that another sender takes the row over and sends it again, under the same id."""
    until = time.monotonic() + LEASE_MARGIN
    while True:
        try:
            if not outbox.mark_sent(db, row):
                log.error(
                    "%s %s to %s: sent, but its lease had passed to another sender: %s",
                    *_names(row),
                    what,
                )
            return
        except database_errors() as error:
            if time.monotonic() > until:
                log.error(
                    "%s %s to %s: sent, but it could not be recorded (%s): it will be sent again"
                    " under the same id once its lease ends: %s",
                    *_names(row),
                    error,
                    what,
                )
                return
            log.warning("%s %s to %s: sent; recording it waits for the database", *_names(row))
            await asyncio.sleep(RECORD_RETRY)


async def _send_by_deadline(channel: ChannelConfig, message: Message) -> str:
    deadline = send_deadline(channel)
    try:
        async with asyncio.timeout(deadline):
            return await send(channel, message)
    except TimeoutError as error:
        raise DeliveryError(f"no answer within {deadline:g}s", permanent=False) from error


def _unexpected(exc: Exception) -> DeliveryError:
    """A sender bug must not strand the message in `sending`: treat it as a temporary failure."""
    log.exception("unexpected error while sending")
    return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)


def _record_failure(
    db: Database,
    row: dict[str, Any],
    failure: DeliveryError,
    policy: RetryPolicy,
    report: DeliveryReport,
    on_failed: FailureHook | None,
    what: str = "",
) -> None:
    """A failed attempt: the row leaves `sending`, failed for good (permanent, or the policy
    gives up; announced through `on_failed`) or due again after the backoff. A row whose
    outcome was already recorded (an error after the send), or whose lease passed to another
    sender, keeps what is recorded: nothing is sent twice, no sender undoes another's send."""
    attempts = row["attempts"]
    about = f" ({what})" if what else ""
    reason = (
        "a permanent error" if failure.permanent else policy.gives_up(attempts, row["created_at"])
    )
    if reason is not None:
        if not outbox.mark_failed(db, row, str(failure)):
            _outcome_stands(row, failure)
            return
        report.failed += 1
        log.error(
            "%s %s to %s failed for good after %s: %s%s", *_names(row), reason, failure, about
        )
        if on_failed is not None:
            on_failed(row, str(failure))
        return
    delay = policy.delay(attempts, failure.retry_after)
    if not outbox.mark_retry(db, row, str(failure), delay):
        _outcome_stands(row, failure)
        return
    report.retrying += 1
    log.warning(
        "%s %s to %s not delivered (attempt %d): %s; retry in %.0fs%s",
        *_names(row),
        attempts,
        failure,
        delay,
        about,
    )


def _outcome_stands(row: dict[str, Any], failure: DeliveryError) -> None:
    log.error(
        "%s %s to %s: error after its outcome was recorded or its lease passed on: %s",
        *_names(row),
        failure,
    )


def _names(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["kind"], row["id"], row["channel"]
