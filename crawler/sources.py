"""What the daemon and `newswatch sources` know about each source: its status (last success,
last error, consecutive failures, articles per day), whether it is backing off, and the interval
`interval: auto` gives it. All of it is derived from the `sources` and `articles` tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from alerts.times import format_duration, parse_time, timestamp
from crawler import scheduling, store
from crawler.config import Config, SourceConfig


def retry_at(row: dict[str, Any] | None, config: Config, source: SourceConfig) -> datetime | None:
    """When a failing source may be polled again, from its `store.source_row`; None when it is
    not backing off."""
    if row is None:
        return None
    return scheduling.retry_at(
        parse_time(row["last_polled_at"]),
        row["consecutive_failures"] or 0,
        config.source_interval(source),
        config.schedule.max_backoff,
    )


def publication_rate(db: sqlite_utils.Database, source: SourceConfig, now: datetime) -> float:
    """Articles per second, from publication dates (fetch time when the date is missing or
    in the future). A first poll's backlog counts over the whole window, not as a burst."""
    since = timestamp(now - scheduling.RATE_WINDOW)
    moments = []
    for published, fetched in store.article_dates(db, source.name, since):
        fetched_at = parse_time(fetched)
        published_at = parse_time(published)
        moment = published_at if published_at and published_at <= now else fetched_at
        if moment is not None:
            moments.append(moment)
    return scheduling.publication_rate(moments, now)


def auto_intervals(
    db: sqlite_utils.Database, config: Config, now: datetime | None = None
) -> dict[str, float]:
    now = now or datetime.now(UTC)
    auto = [s for s in config.sources if s.interval == "auto"]
    rates = {s.name: publication_rate(db, s, now) for s in auto}
    bounds = {s.name: config.interval_bounds(s) for s in auto}
    return scheduling.auto_intervals(rates, config.schedule.interval, bounds)


@dataclass(frozen=True)
class SourceStatus:
    """One row of `newswatch sources`: how a source has been doing, as an operator asks it
    (`alerts.health.SourceHealth` is what the health notices judge)."""

    name: str
    kind: str
    schedule: str
    last_success_at: str | None
    last_error: str | None
    failures: int
    articles_per_day: float
    retry_at: datetime | None


def statuses(db: sqlite_utils.Database, config: Config) -> list[SourceStatus]:
    now = datetime.now(UTC)
    automatic = auto_intervals(db, config, now)
    since = timestamp(now - timedelta(days=7))
    found = []
    for source in config.sources:
        stored = store.source_row(db, source.name)
        row = stored or {}
        week = store.articles_since(db, source.name, since)
        found.append(
            SourceStatus(
                name=source.name,
                kind=source.kind or row.get("kind") or "?",
                schedule=_schedule(config, source, automatic.get(source.name)),
                last_success_at=row.get("last_success_at"),
                last_error=row.get("last_error"),
                failures=row.get("consecutive_failures") or 0,
                articles_per_day=week / 7,
                retry_at=retry_at(stored, config, source),
            )
        )
    return found


def _schedule(config: Config, source: SourceConfig, automatic: float | None) -> str:
    if source.cron:
        return f"cron {source.cron}"
    if automatic is not None:
        return f"auto {format_duration(automatic)}"
    return format_duration(config.source_interval(source))
