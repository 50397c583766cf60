"""What polling costs and how fast it finds new articles.

Prints:
- an idle poll of 50 unchanged feed sources with the real `newswatch run --once` on loopback:
  requests, how many were conditional and answered 304, bytes received, article fetches
  (goal: 50 requests, all conditional, 0 article fetches);
- discovery delay (publication → next poll of its source) for `interval: auto` against one fixed
  interval for every source at the same request budget, simulated over two weeks for 50 sources
  publishing at very different rates (0.5 to 300 articles a day, Poisson). Auto re-estimates
  its intervals daily from the trailing week with the daemon's own functions
  (crawler/scheduling.py). Goal: auto at least 2× lower mean delay.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import pipeline_run, real_pages, run_once

from crawler.scheduling import RATE_WINDOW, auto_intervals, publication_rate

DAY = 86400.0


def idle_poll(sources: int) -> None:
    _, count, _, site, folder, scratch = pipeline_run(real_pages(2 * sources), feeds=sources)
    site.reset_log()
    run_once(folder)
    feeds = [r for r in site.requests if r.path.startswith("/feed")]
    fetched = [r for r in site.requests if r.path.startswith("/articles/")]
    robots = [r for r in site.requests if r.path == "/robots.txt"]
    print(
        f"idle poll of {sources} unchanged sources on one site ({count} articles stored before):"
        f" {len(site.requests)} request(s) = {len(feeds)} to the feeds + {len(robots)} robots.txt"
        f" (once per site a day); {sum(r.conditional for r in feeds)} conditional,"
        f" {sum(r.status == 304 for r in feeds)} answered 304,"
        f" {sum(r.bytes_sent for r in site.requests)} body bytes received,"
        f" {len(fetched)} article fetch(es) (goal: {sources}, all conditional, 0)"
    )
    site.stop()
    scratch.cleanup()


def publications(rng: random.Random, rates: list[float], days: float) -> list[list[float]]:
    """Poisson publication times (seconds) per source over `days`."""
    found = []
    for per_day in rates:
        moments, now = [], 0.0
        while True:
            now += rng.expovariate(per_day / DAY)
            if now >= days * DAY:
                break
            moments.append(now)
        found.append(moments)
    return found


def poll_times(start: float, end: float, interval: float, phase: float) -> list[float]:
    return [
        start + phase * interval + k * interval
        for k in range(math.ceil((end - start) / interval) + 1)
    ]


def simulate(
    published: list[list[float]], interval: float, days: int, auto: bool, rng: random.Random
) -> tuple[list[float], int]:
    """Delays of articles published in the second week, and the requests spent on it."""
    bounds = dict.fromkeys(range(len(published)), (120.0, 6 * 3600.0))
    delays: list[float] = []
    requests = 0
    phases = [rng.random() for _ in published]
    for day in range(days // 2, days):
        start, end = day * DAY, (day + 1) * DAY
        intervals = dict.fromkeys(range(len(published)), interval)
        if auto:
            rates = {
                n: publication_rate(_as_datetimes(m, start), _as_datetimes([start], start)[0])
                for n, m in enumerate(published)
            }
            intervals = auto_intervals(rates, interval, bounds)
        for n, moments in enumerate(published):
            polls = poll_times(start, end + 6 * 3600, intervals[n], phases[n])
            requests += sum(1 for t in polls if t < end)
            for moment in moments[
                bisect.bisect_left(moments, start) : bisect.bisect_left(moments, end)
            ]:
                delays.append(polls[bisect.bisect_left(polls, moment)] - moment)
    return delays, requests


def _as_datetimes(seconds: list[float], until: float):
    from datetime import UTC, datetime, timedelta

    origin = datetime(2026, 1, 1, tzinfo=UTC)
    window = RATE_WINDOW.total_seconds()
    return [origin + timedelta(seconds=s) for s in seconds if until - window <= s <= until]


def report(name: str, delays: list[float], requests: int) -> float:
    ordered = sorted(delays)
    mean = statistics.fmean(ordered)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[int(len(ordered) * 0.95)]
    print(
        f"  {name:<22} mean {mean / 60:6.1f} min  p50 {p50 / 60:6.1f} min  p95 {p95 / 60:6.1f} min"
        f"  ({requests} requests, {len(delays)} articles)"
    )
    return mean


def spread_rates(rng: random.Random, sources: int) -> list[float]:
    """Every rate equally likely on a log scale from 0.5 to 300 a day."""
    return [math.exp(rng.uniform(math.log(0.5), math.log(300))) for _ in range(sources)]


def newsroom_rates(rng: random.Random, sources: int) -> list[float]:
    """A typical watch list: one source in ten is a wire or a big portal (100–300 a day), the
    rest are section feeds and niche outlets (0.5–5 a day)."""
    return [rng.uniform(100, 300) if n % 10 == 0 else rng.uniform(0.5, 5) for n in range(sources)]


MIXES = {"log-uniform 0.5–300/day": spread_rates, "newsroom (1 in 10 busy)": newsroom_rates}


def discovery_delay(sources: int, interval: float, seed: int) -> None:
    for label, mix in MIXES.items():
        rng = random.Random(seed)
        rates = mix(rng, sources)
        published = publications(rng, rates, days=14)
        bound = statistics.fmean(math.sqrt(r) for r in rates) ** 2 / statistics.fmean(rates)
        print(
            f"discovery delay, {sources} sources, {label} (total {sum(rates):.0f}/day),"
            f" budget = every source every {interval / 60:.0f} min, second simulated week:"
        )
        fixed = report("fixed interval", *simulate(published, interval, 14, False, rng))
        auto = report("interval: auto", *simulate(published, interval, 14, True, rng))
        print(
            f"  auto / fixed mean delay: {auto / fixed:.2f} (goal <= 0.5;"
            f" best possible at this budget for this mix: {bound:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--skip-idle", action="store_true", help="only the simulation")
    args = parser.parse_args()
    if not args.skip_idle:
        idle_poll(args.sources)
    discovery_delay(args.sources, args.interval, args.seed)


if __name__ == "__main__":
    main()
