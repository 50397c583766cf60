"""The per-site state shared by every poll (politeness slots, robots.txt) stays bounded however
many hosts listings link to: a daemon runs for months over feeds that link anywhere."""

from __future__ import annotations

import asyncio

from twisted.internet.defer import Deferred

from crawler.politeness import DomainGate
from crawler.robots import RobotsCache

HOSTS = [f"host{n}.example:80" for n in range(5000)]


def test_domain_gate_forgets_sites_nobody_uses():
    async def crawl() -> int:
        gate = DomainGate(concurrency=2, max_sites=100)
        largest = 0
        for site in HOSTS:
            await gate.enter(site, 0.0)
            largest = max(largest, len(gate))
            gate.leave(site)
        return max(largest, len(gate))

    assert asyncio.run(crawl()) <= 100


def test_domain_gate_stays_bounded_while_crawl_delays_run_and_keeps_sites_in_use():
    async def crawl() -> tuple[int, bool]:
        gate = DomainGate(concurrency=1, max_sites=100)
        await gate.enter("busy.example:80", 30.0)
        largest = 0
        for site in HOSTS:
            await gate.enter(site, 30.0)
            gate.leave(site)
            largest = max(largest, len(gate))
        waiting = asyncio.ensure_future(gate.enter("busy.example:80", 0.0))
        await asyncio.sleep(0)
        still_held = not waiting.done()
        gate.leave("busy.example:80")
        await waiting
        return largest, still_held

    largest, still_held = asyncio.run(crawl())
    assert largest <= 100
    assert still_held


def test_robots_cache_keeps_the_newest_sites_and_every_fetch_in_flight():
    cache = RobotsCache(max_sites=100)
    pending = Deferred()
    cache["slow.example:80"] = pending
    for host in HOSTS:
        cache[host] = None
    assert len(cache) <= 101
    assert cache["slow.example:80"] is pending
    assert HOSTS[-1] in cache and HOSTS[0] not in cache
