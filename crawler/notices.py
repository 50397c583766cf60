"""The daemon's side of digests and health notices: which cron job closes which digest, what a
poll result means for a source's health, and the notices about the daemon itself (start, stop,
a message that failed for good)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from apscheduler.triggers.cron import CronTrigger

from alerts import digest, health
from alerts.times import timestamp
from crawler import store
from crawler.config import Config, SourceConfig, cron_trigger

log = logging.getLogger("newswatch.notices")


class Notices:
    """Makes the digests at their channels' period ends (and those missed while stopped) and
    queues the health notices: a source failing or silent, the daemon started or stopped, a
    message that failed for good."""

    def __init__(self, config: Config, db: sqlite_utils.Database) -> None:
        self.config = config
        self.db = db
        self.health = config.health.policy()

    def digest_triggers(self) -> dict[str, CronTrigger]:
        return {
            name: cron_trigger(channel.digest)
            for name, channel in self.config.channels.items()
            if channel.digest
        }

    def catch_up(self, now: datetime | None = None) -> int:
        """Make the digests that fell due while the daemon was not running; returns how many."""
        now = now or datetime.now(UTC)
        made = 0
        for name, trigger in self.digest_triggers().items():
            if digest.missed(self.db, name, lambda last, t=trigger: _next_fire(t, last), now):
                log.info("channel %s: a digest fell due while newswatch was stopped", name)
                made += self.close_period(name, now) is not None
        return made

    def close_period(self, channel: str, now: datetime | None = None) -> dict[str, Any] | None:
        row = digest.make_digest(self.db, channel, now)
        if row is None:
            log.info("channel %s: digest period closed with no alert", channel)
        else:
            log.info("channel %s: digest %s queued", channel, row["id"])
        return row

    def source_polled(self, source: SourceConfig) -> None:
        if not self.health.notify:
            return
        status = store.source_health(self.db, source.name, source.display_url)
        if health.check_source(self.db, self.health, status):
            log.warning("source=%s url=%s: health notice queued", source.name, source.display_url)

    def daemon_event(self, event: str, title: str) -> None:
        """Start and stop notices; the key holds the time and pid, so each start is its own."""
        if self.health.notify:
            text = f"newswatch (pid {os.getpid()}) on database {self.config.database_name}"
            key = f"{timestamp()}:{os.getpid()}"
            health.announce(self.db, self.health, event, key, title, text)

    def message_failed(self, row: dict[str, Any], error: str) -> None:
        """A message that failed for good is announced, unless it was itself a health notice:
        a broken health channel must not feed notices about itself forever."""
        if not self.health.notify or row["kind"] == "health":
            return
        health.announce(
            self.db,
            self.health,
            "message_failed",
            row["id"],
            f"A {row['kind']} to channel {row['channel']} failed for good",
            f"{row['id']}: {error}\nSee `newswatch alerts --status failed`;"
            f" send it again with `newswatch alerts retry {row['id']}`.",
            {"message": row["id"], "channel": row["channel"], "error": error},
        )


def _next_fire(trigger: CronTrigger, after: datetime) -> datetime | None:
    """Strictly after: the stored time is cut to the second, so the run that stored it is not
    found again."""
    return trigger.get_next_fire_time(None, after + timedelta(seconds=1))
