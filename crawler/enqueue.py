"""The enqueue stage: what a stored article puts in the outbox, in the article's transaction.

Each watchlist it matches gets its hits recorded and one alert per channel; the outbox key is the
story's event (`group: event`, the default) or the story itself (`group: story`), so a watchlist
already alerted on the event (or story) is not alerted again; an event's alert lists the other
stories that reported it. When the story reached a new outlet, an article's text changed
materially, or a new story joined the event, watchlists with `notify_updates` already alerted on
it get one update notice per channel, at most every `dedup.update_interval`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from alerts import outbox
from alerts.matcher import WatchlistMatch
from alerts.message import ARTICLE_KEYS, REPORTS_LISTED, Alert
from alerts.times import parse_time
from alerts.watchlists import Watchlists
from crawler import store
from crawler.stories import Filed

log = logging.getLogger("newswatch.enqueue")

SNIPPET_CHARS = 300


class AlertQueue:
    """Queues the alerts and update notices of stored articles; the caller holds the article's
    transaction, so a crash leaves the article with its alerts, or neither."""

    def __init__(
        self, db: sqlite_utils.Database, watchlists: Watchlists, update_interval: float
    ) -> None:
        self.db = db
        self.watchlists = watchlists
        self.update_interval = update_interval

    def queue(self, filed: Filed, matches: tuple[WatchlistMatch, ...]) -> int:
        """Alerts for `matches` and, when the filing changed something (`filed.change`), update
        notices; returns how many messages were added."""
        if not (matches or filed.change):
            return 0
        article = store.article_row(self.db, filed.article_id)
        articles, outlets = store.story_reach(self.db, filed.story_id)
        story = {"id": filed.story_id, "articles": articles, "outlets": outlets}
        # read only when a watchlist keyed on the event needs it (most alerts are not)
        event = functools.cache(functools.partial(self._event, filed))
        added = sum(self._alert(article, story, event, match) for match in matches)
        if filed.change:
            added += self._notify_updates(article, story, event, matches, filed)
        return added

    def _event(self, filed: Filed) -> dict[str, Any]:
        """The event as its alerts show it: its id and the first of the other stories that
        reported it (an event of thousands is read no further than the alert lists)."""
        reports = [
            {"source": report.source, "title": report.title, "url": report.url}
            for report in store.event_reports(self.db, filed.event_id, REPORTS_LISTED + 1)
            if report.story_id != filed.story_id
        ]
        total = store.event_story_count(self.db, filed.event_id) - 1
        return {"id": filed.event_id, "reports": reports[:REPORTS_LISTED], "reports_total": total}

    def _alert(
        self,
        article: dict[str, Any],
        story: dict[str, Any],
        event: Callable[[], dict[str, Any]],
        match: WatchlistMatch,
    ) -> int:
        hits = [hit.to_dict() for hit in match.hits]
        store.record_match(self.db, article["id"], match.watchlist, hits, match.snippet)
        config = self.watchlists.configs[match.watchlist]
        grouped = event() if config.group == "event" else None
        added = 0
        for channel in config.notify:
            alert = watchlist_alert(article, story, match.watchlist, channel, match, grouped)
            added += outbox.enqueue(self.db, alert, channel, article["id"])
        return added

    def _notify_updates(
        self,
        article: dict[str, Any],
        story: dict[str, Any],
        event: Callable[[], dict[str, Any]],
        matches: tuple[WatchlistMatch, ...],
        filed: Filed,
    ) -> int:
        """One update notice per (watchlist, channel) already alerted on this story or its event
        (only the event when a new story joined it) whose watchlist asks for `notify_updates`; a
        notice still waiting absorbs this one, and none goes out sooner than `update_interval`
        after the last thing sent for that story or event and channel."""
        hits = {match.watchlist: match for match in matches}
        states = outbox.story_notices(
            self.db, filed.story_id, filed.event_id, story_rows=not filed.joined_event
        )
        queued = 0
        for state in states:
            wanted = self.watchlists.configs.get(state["watchlist"])
            if wanted is None or not wanted.notify_updates or state["waiting"]:
                continue
            grouped = event() if state["key"] == filed.event_id else None
            match = hits.get(state["watchlist"])
            queued += self._notice(article, story, grouped, match, state, filed.change)
        return queued

    def _notice(
        self,
        article: dict[str, Any],
        story: dict[str, Any],
        event: dict[str, Any] | None,
        match: WatchlistMatch | None,
        state: dict[str, Any],
        reason: str,
    ) -> int:
        watchlist, channel = state["watchlist"], state["channel"]
        number = (state["last_notice"] or 0) + 1
        # a stored time that does not parse waits the whole interval from now
        last_out = parse_time(state["last_out"]) or datetime.now(UTC)
        not_before = last_out + timedelta(seconds=self.update_interval)
        alert = watchlist_alert(article, story, watchlist, channel, match, event, update=number)
        added = outbox.enqueue(
            self.db, alert, channel, article["id"], notice=number, not_before=not_before
        )
        if added:
            log.info(
                "source=%s url=%s: %s %s %s; update notice %d queued for %s via %s",
                article["source"],
                article["url"],
                "event" if event else "story",
                event["id"] if event else story["id"],
                reason,
                number,
                watchlist,
                channel,
            )
        return int(added)


def watchlist_alert(
    article: dict[str, Any],
    story: dict[str, Any],
    watchlist: str,
    channel: str,
    match: WatchlistMatch | None,
    event: dict[str, Any] | None = None,
    update: int = 0,
) -> Alert:
    """The message for a watchlist on a stored article: its alert, or with `update` ≥ 1 that
    alert's N-th update notice (same id, `:update:N`, so receivers can tell them apart). The
    alert is keyed on the event when one is given (the watchlist groups by event), else on the
    story. A notice for a watchlist the new text no longer matches shows the text's opening."""
    key = outbox.alert_id(watchlist, event["id"] if event else story["id"], channel)
    return Alert(
        id=f"{key}:update:{update}" if update else key,
        watchlist=watchlist,
        article={name: article[name] for name in ARTICLE_KEYS},
        story=story,
        event=event,
        matches=[hit.to_dict() for hit in match.hits] if match else [],
        matches_total=match.hits_total if match else 0,
        snippet=match.snippet if match else article["text"][:SNIPPET_CHARS],
    )
