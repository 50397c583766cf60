"""The operator's pages: the overview (watchlists' recent hits, the month's chart, latest
alerts, sources in trouble, the daemon's heartbeat), the sources table and the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts import outbox
from alerts.times import timestamp
from crawler import heartbeat, store
from crawler.config import Config
from crawler.sources import SourceStatus, statuses
from crawler.web.app import read, render
from crawler.web.charts import bar_chart, days

CHART_DAYS = 30
LATEST_ALERTS = 10
PAGE_SIZE = 50


@dataclass(frozen=True)
class Overview:
    counts: dict[str, tuple[int, int]]  # stories in the last day, in the last week
    per_day: dict[str, int]
    alerts: list[dict[str, Any]]
    sources: list[SourceStatus]
    heartbeat: dict[str, Any] | None


def gather(db: sqlite_utils.Database, config: Config, now: datetime) -> Overview:
    """Everything the overview shows, read in one go on one connection."""
    return Overview(
        counts=store.watchlist_counts(
            db, timestamp(now - timedelta(days=1)), timestamp(now - timedelta(days=7))
        ),
        per_day=store.hits_per_day(db, timestamp(now - timedelta(days=CHART_DAYS - 1))[:10]),
        alerts=outbox.listing(db, limit=LATEST_ALERTS),
        sources=statuses(db, config),
        heartbeat=store.latest_heartbeat(db),
    )


def trouble(status: SourceStatus) -> str | None:
    """Why a source needs a look, as the overview says it; None when it is fine."""
    if status.failures:
        return f"failing: {status.failures} poll(s) in a row"
    if status.last_success_at is None:
        return "never polled successfully"
    if not status.articles_per_day:
        return "silent: no article in 7 days"
    return None


async def overview(request: Request) -> Response:
    config: Config = request.app.state.config
    now = datetime.now(UTC)
    found = await read(request, gather, config, now)
    chart_days = days(now.date(), CHART_DAYS)
    age = heartbeat.age(found.heartbeat, now)
    return render(
        request,
        "overview.html",
        watchlists=[(w.name, *found.counts.get(w.name, (0, 0))) for w in config.watchlists],
        chart=bar_chart(
            [(day, found.per_day.get(day, 0)) for day in chart_days], "stories matched per day"
        ),
        alerts=[shown_alert(row) for row in found.alerts],
        troubled=[(s, reason) for s in found.sources if (reason := trouble(s))],
        heartbeat_age=age,
        heartbeat_fresh=heartbeat.is_fresh(age),
    )


def shown_alert(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox row with its subject, read from the payload it will be (or was) sent with."""
    return {**row, "subject": outbox.message_of(row).subject}


async def sources_page(request: Request) -> Response:
    rows = await read(request, statuses, request.app.state.config)
    return render(request, "sources.html", sources=rows)


def page_number(request: Request) -> int:
    """`?page=N`, from 1; anything else is a page that does not exist."""
    value = request.query_params.get("page", "1")
    if not (value.isascii() and value.isdigit() and len(value) <= 6) or int(value) < 1:
        raise HTTPException(404, "no such page")
    return int(value)


def outbox_page(db: sqlite_utils.Database, page: int) -> tuple[list[dict[str, Any]], int]:
    total = sum(outbox.status_counts(db).values())
    return outbox.listing(db, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE), total


async def alerts_page(request: Request) -> Response:
    page = page_number(request)
    rows, total = await read(request, outbox_page, page)
    if page > 1 and not rows:
        raise HTTPException(404, "no such page")
    return render(
        request,
        "alerts.html",
        alerts=[shown_alert(row) for row in rows],
        page=page,
        more=page * PAGE_SIZE < total,
        total=total,
    )


ROUTES = [
    Route("/", overview),
    Route("/sources", sources_page),
    Route("/alerts", alerts_page),
]
