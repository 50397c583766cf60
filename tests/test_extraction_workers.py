"""The extraction workers: a page over the deadline or a worker that dies costs that page's
extraction only, never extraction for good, and closing never waits for a worker."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Awaitable
from pathlib import Path

import pytest

from crawler.articles import Fetched, Prepared
from crawler.entries import ListingEntry
from crawler.workers import Extractor, PoolClosed, WorkerLost
from tests.support import HANG

PARAGRAPH = (
    "<p>Moroccan authorities on Friday extradited to France a man wanted in Lyon for an armed"
    " robbery, the justice ministry said in a statement published in Rabat.</p>"
)


def page(paragraphs: int) -> bytes:
    return (
        "<html lang='en'><head><title>Morocco extradites a suspect to France</title></head><body>"
        "<article><h1>Morocco extradites a suspect to France</h1>"
        f"{PARAGRAPH * paragraphs}</article></body></html>"
    ).encode()


PAGE = page(3)


def fetched(url: str, html: bytes = PAGE) -> Fetched:
    entry = ListingEntry(
        url=url, title="Morocco extradites a suspect", summary="", published_at=None
    )
    return Fetched(source="example", source_language=None, entry=entry, html=html)


def workers() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name == "newswatch-worker"]


def stuck(extractor: Extractor) -> Awaitable[Prepared]:
    """A page of 12 MB of article text: it holds its worker far beyond any test's wait (only a
    kill or the deadline ends it)."""
    return extractor.prepare(fetched("https://news.example.org/huge", page(70_000)))


def state(pid: int) -> str | None:
    """The process's state letter in /proc (R running, S sleeping), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


async def until_busy(tasks: list[asyncio.Task], count: int) -> None:
    """Until `count` workers run (a worker waiting for a task sleeps), while `tasks` go on."""
    while len([w for w in workers() if state(w.pid) == "R"]) < count:
        assert not any(task.done() for task in tasks)
        await asyncio.sleep(0.05)


def test_a_killed_worker_is_replaced_and_extraction_goes_on():
    async def scenario(extractor: Extractor) -> None:
        first = await extractor.prepare(fetched("https://news.example.org/a"))
        assert first.record is not None and first.record.extraction == "page"
        assert first.record.language == "en"
        assert first.fingerprint is not None and first.fingerprint.signature is not None
        [worker] = workers()
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.to_thread(worker.join)
        again = await extractor.prepare(fetched("https://news.example.org/c"))
        assert again.record is not None and again.record.extraction == "page"
        assert again.record.paragraphs == first.record.paragraphs
        assert again.fingerprint == first.fingerprint
        assert [w.pid for w in workers()] != [worker.pid]

    with Extractor(workers=1) as extractor:
        asyncio.run(asyncio.wait_for(scenario(extractor), HANG))


def test_workers_killed_with_two_pages_in_flight_fail_those_pages_only():
    """Both workers SIGKILLed while each holds a page and more pages wait: the two pages fail,
    the waiting ones are extracted by the replacements (this hung the poll for ever)."""

    async def scenario(extractor: Extractor) -> None:
        in_flight = [asyncio.create_task(stuck(extractor)) for _ in range(2)]
        await until_busy(in_flight, 2)
        waiting = [
            asyncio.create_task(extractor.prepare(fetched(f"https://news.example.org/{n}")))
            for n in range(4)
        ]
        for worker in workers():
            os.kill(worker.pid, signal.SIGKILL)
        for task in in_flight:
            with pytest.raises(WorkerLost, match="killed by signal 9"):
                await task
        for prepared in await asyncio.gather(*waiting):
            assert prepared.record is not None and prepared.record.extraction == "page"
            assert prepared.record.language == "en"
        assert len(workers()) == 2

    with Extractor(workers=2) as extractor:
        asyncio.run(asyncio.wait_for(scenario(extractor), HANG))


def test_a_task_over_the_deadline_has_its_worker_replaced():
    async def scenario(extractor: Extractor) -> None:
        [worker] = workers()
        with pytest.raises(WorkerLost, match="deadline"):
            await stuck(extractor)
        assert not worker.is_alive()
        prepared = await extractor.prepare(fetched("https://news.example.org/a"))
        assert prepared.record is not None and prepared.record.extraction == "page"

    with Extractor(workers=1, deadline=1) as extractor:
        asyncio.run(asyncio.wait_for(scenario(extractor), HANG))


def test_close_kills_a_stuck_worker_and_fails_its_page_and_the_waiting_ones():
    async def scenario(extractor: Extractor) -> None:
        [worker] = workers()
        busy = asyncio.create_task(stuck(extractor))
        await until_busy([busy], 1)
        waiting = asyncio.create_task(extractor.prepare(fetched("https://news.example.org/a")))
        await asyncio.sleep(0)
        extractor.close()
        for task in (busy, waiting):
            with pytest.raises(PoolClosed):
                await task
        assert not worker.is_alive()
        with pytest.raises(PoolClosed):
            await extractor.prepare(fetched("https://news.example.org/b"))

    extractor = Extractor(workers=1)
    asyncio.run(asyncio.wait_for(scenario(extractor), HANG))
    extractor.close()
