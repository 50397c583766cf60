"""Stored times: one form, in UTC, whatever moment a caller hands over; and times read back from
rows or payloads that never break a message, whatever a host wrote there."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.message import Alert
from alerts.render import render
from alerts.times import parse_time, timestamp

CASABLANCA = timezone(timedelta(hours=1))


def test_a_moment_in_another_zone_is_stored_as_the_same_instant_in_utc():
    moment = datetime(2026, 11, 28, 11, 0, tzinfo=CASABLANCA)

    assert timestamp(moment) == "2026-11-28T10:00:00Z"
    assert parse_time(timestamp(moment)) == moment


@pytest.mark.parametrize(
    "written",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-23:59",
        "0000-00-00 00:00:00",
        "2026-02-30",
        "x" * 100_000,
        "\u202e2026-11-28",
    ],
)
def test_an_alert_with_an_impossible_date_still_renders_showing_what_was_written(written):
    alert = Alert(
        id="nw-1",
        watchlist="mfe",
        article={
            "url": "https://news.example.org/1",
            "title": "Extradition",
            "published_at": written,
        },
        story={"id": "st-1", "articles": 1},
        matches=[],
        snippet="Morocco and France",
    )

    assert parse_time(written) is None
    assert written[:100] in render(alert, "txt")
