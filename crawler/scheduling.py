"""When to poll a source: error backoff, and `interval: auto` from its publication rate.

Pure functions over timestamps, so the daemon, `newswatch sources` and bench/polling.py's
simulation all use the same arithmetic.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

RATE_WINDOW = timedelta(days=7)


def backoff_delay(interval: float, failures: int, cap: float) -> float:
    """Seconds to wait after the last poll of a failing source: the first failure is retried on
    the normal schedule (most are transient), then the wait doubles each time, up to `cap`."""
    if failures < 2:
        return 0.0
    return min(interval * 2 ** (failures - 1), max(cap, interval))


def retry_at(
    last_polled_at: datetime | None, failures: int, interval: float, cap: float
) -> datetime | None:
    """The earliest time a backed-off source may be polled again, or None if it is not."""
    delay = backoff_delay(interval, failures, cap)
    if not delay or last_polled_at is None:
        return None
    return last_polled_at + timedelta(seconds=delay)


def publication_rate(
    published: Iterable[datetime], now: datetime, window: timedelta = RATE_WINDOW
) -> float:
    """Articles per second over the last `window`, with one article of prior so a silent
    source gets a small, finite rate (polled rarely, never abandoned)."""
    start = now - window
    recent = sum(1 for moment in published if start <= moment <= now)
    return (recent + 1) / window.total_seconds()


def auto_intervals(
    rates: Mapping[str, float], budget_interval: float, bounds: Mapping[str, tuple[float, float]]
) -> dict[str, float]:
    """Poll intervals spending the same number of requests as polling every source every
    `budget_interval`, shared so as to minimise the mean discovery delay of an article.

    An article waits half its source's interval on average, so the mean delay is
    Σ rate·interval / 2Σ rate; minimising it under Σ 1/interval = budget gives
    interval ∝ 1/√rate (a busy source is polled more often, but less than in proportion).
    Each result is then held within its source's (min, max).
    """
    if not rates:
        return {}
    budget = len(rates) / budget_interval
    scale = sum(math.sqrt(rate) for rate in rates.values()) / budget
    intervals = {}
    for name, rate in rates.items():
        low, high = bounds[name]
        intervals[name] = min(max(scale / math.sqrt(rate), low), high)
    return intervals


def first_poll_at(name: str, spread: float, now: datetime) -> datetime:
    """Sources are first polled within `spread` seconds of the start, each at a point fixed by
    its name: an interval job keeps the phase of its first run, so thousands of sources started
    at once would stay one burst every interval, and intervals would stretch by the time the
    burst takes. A few sources (a small `spread`) all start at once."""
    fraction = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest())
    return now + timedelta(seconds=spread * fraction / 2**32)
