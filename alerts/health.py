"""Health notices: operators hear, in their own channels, when a source keeps failing or goes
silent (once), when it recovers (once), when the daemon starts or stops, and when a message
failed for good. Notices are outbox rows like alerts, so they are retried the same way.

What has been announced is kept in `health_alerts` (one row per subject, e.g. `source:NAME`,
with its current problem or none), so a restart does not announce the same problem again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts import outbox, store
from alerts.database import Database
from alerts.message import Notice
from alerts.times import format_duration, parse_time, timestamp

FAILING, SILENT = "failing", "silent"


@dataclass(frozen=True)
class HealthPolicy:
    """Where health notices go, and when a source counts as silent or failing."""

    notify: tuple[str, ...]
    silent_after: float = 86400.0
    failing_polls: int = 5


@dataclass(frozen=True)
class SourceHealth:
    """What the crawler knows about a source after a poll."""

    name: str
    url: str
    consecutive_failures: int
    last_error: str | None
    last_success_at: str | None
    last_article_at: str | None


def announce(
    db: Database,
    policy: HealthPolicy,
    event: str,
    key: str,
    title: str,
    text: str,
    details: dict[str, Any] | None = None,
) -> int:
    """Queue one health notice per notify channel; `key` makes the ids stable for one event."""
    queued = 0
    for channel in policy.notify:
        notice = Notice(
            kind="health",
            id=outbox.message_key("health", event, key, channel),
            event=event,
            title=title,
            text=text,
            at=timestamp(),
            details=details or {},
        )
        queued += outbox.enqueue_message(db, notice, channel)
    return queued


def check_source(
    db: Database,
    policy: HealthPolicy,
    source: SourceHealth,
    now: datetime | None = None,
) -> int:
    """Announce a change of the source's problem (new problem, or recovery); returns rows queued.
    The notice and the new state are written together, so a crash cannot announce twice."""
    now = now or datetime.now(UTC)
    subject = f"source:{source.name}"
    state = _state(db, subject, now)
    problem = _problem(policy, source, state, now)
    if problem == state["problem"]:
        return 0
    with db.atomic():
        details = {"source": source.name, "url": source.url, "problem": problem or state["problem"]}
        if problem is None:
            queued = announce(
                db,
                policy,
                "source_recovered",
                f"{subject}@{state['since']}",
                f"Source {source.name} has recovered",
                f"{source.url}\nIt was {state['problem']} since {state['since']}.",
                details,
            )
        else:
            title, text = _describe(policy, source, problem)
            queued = announce(
                db,
                policy,
                f"source_{problem}",
                f"{subject}@{timestamp(now)}",
                title,
                text,
                details,
            )
        at = timestamp(now)
        store.save_health_state(
            db, {"subject": subject, "problem": problem, "since": at, "notified_at": at}
        )
    return queued


def _state(db: Database, subject: str, now: datetime) -> dict[str, Any]:
    """The subject's announced problem; a subject seen for the first time is healthy since now."""
    state = store.health_state(db, subject)
    if state is None:
        state = {"subject": subject, "problem": None, "since": timestamp(now), "notified_at": None}
        store.save_health_state(db, state)
    return state


def _problem(
    policy: HealthPolicy, source: SourceHealth, state: dict[str, Any], now: datetime
) -> str | None:
    if source.consecutive_failures >= policy.failing_polls:
        return FAILING
    if source.consecutive_failures:
        return state["problem"]
    last = parse_time(source.last_article_at) or parse_time(state["since"])
    if last is not None and (now - last).total_seconds() >= policy.silent_after:
        return SILENT
    return None


def _describe(policy: HealthPolicy, source: SourceHealth, problem: str) -> tuple[str, str]:
    if problem == FAILING:
        return (
            f"Source {source.name} is failing",
            f"{source.url}\n{source.consecutive_failures} polls in a row failed;"
            f" last error: {source.last_error}\nLast success: {source.last_success_at or 'never'}",
        )
    return (
        f"Source {source.name} has published nothing for {format_duration(policy.silent_after)}",
        f"{source.url}\nLast new article: {source.last_article_at or 'none yet'}",
    )
