"""`/metrics` in Prometheus' text format: each scrape reads the database afresh (a custom
collector on a registry of its own), so the figures are the file's, not a copy this process
kept, and a server restarted between scrapes loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import sqlite_utils
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts import outbox
from alerts.times import parse_time
from crawler import heartbeat, store
from crawler.config import Config
from crawler.web.app import read


class ArchiveCollector(Collector):
    """The sources' health, the outbox and the daemon's heartbeat as the database holds them."""

    def __init__(self, db: sqlite_utils.Database, config: Config, now: datetime) -> None:
        self.db = db
        self.config = config
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from self.sources()
        yield from self.alerts()
        beat = heartbeat.age(store.latest_heartbeat(self.db), self.now)
        if beat is not None:
            yield GaugeMetricFamily(
                "newswatch_daemon_heartbeat_age_seconds",
                "Seconds since a daemon last wrote its heartbeat (absent: never).",
                value=beat,
            )

    def sources(self) -> Iterator[Metric]:
        """The configured sources only: a source removed from the config is not monitored."""
        success = GaugeMetricFamily(
            "newswatch_source_last_success_timestamp_seconds",
            "When the source was last polled successfully (Unix time; absent: never).",
            labels=["source"],
        )
        failures = GaugeMetricFamily(
            "newswatch_source_consecutive_failures",
            "Polls of the source that failed in a row (0 after a success).",
            labels=["source"],
        )
        stored = GaugeMetricFamily(
            "newswatch_source_articles_stored",
            "Articles of the source in the archive now (retention removes old ones).",
            labels=["source"],
        )
        counters = store.source_counters(self.db)
        for source in self.config.sources:
            row = counters.get(source.name, {})
            when = parse_time(row.get("last_success_at"))
            if when is not None:
                success.add_metric([source.name], when.timestamp())
            failures.add_metric([source.name], row.get("failures", 0))
            stored.add_metric([source.name], row.get("articles", 0))
        yield from (success, failures, stored)

    def alerts(self) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "newswatch_alerts",
            "Messages in the outbox by channel and status.",
            labels=["channel", "status"],
        )
        for (channel, status), count in sorted(outbox.channel_status_counts(self.db).items()):
            counts.add_metric([channel, status], count)
        yield counts
        oldest = parse_time(outbox.oldest_pending(self.db))
        yield GaugeMetricFamily(
            "newswatch_oldest_pending_alert_age_seconds",
            "Seconds the oldest message still waiting to be sent has waited (0: none waits).",
            value=max(0.0, (self.now - oldest).total_seconds()) if oldest else 0.0,
        )


def scrape(db: sqlite_utils.Database, config: Config) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ArchiveCollector(db, config, datetime.now(UTC)))
    return generate_latest(registry)


async def metrics(request: Request) -> Response:
    body = await read(request, scrape, request.app.state.config)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/metrics", metrics)]
