"""The extraction workers: a worker that dies must not stop extraction for good."""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures.process import BrokenProcessPool

import pytest

from crawler.feeds import FeedEntry
from crawler.pipeline import Extractor, Fetched

PAGE = (
    "<html lang='en'><head><title>Morocco extradites a suspect to France</title></head><body>"
    "<article><h1>Morocco extradites a suspect to France</h1>"
    + "<p>Moroccan authorities on Friday extradited to France a man wanted in Lyon for an armed"
    " robbery, the justice ministry said in a statement published in Rabat.</p>"
    * 3
    + "</article></body></html>"
).encode()


def fetched(url: str) -> Fetched:
    entry = FeedEntry(url=url, title="Morocco extradites a suspect", summary="", published_at=None)
    return Fetched(source="example", source_language=None, entry=entry, html=PAGE)


def test_a_killed_worker_is_replaced_and_extraction_goes_on():
    async def scenario(extractor: Extractor) -> None:
        first = await extractor.prepare(fetched("https://news.example.org/a"))
        assert first.extracted is not None and first.extracted.language == "en"
        assert first.fingerprint is not None and first.fingerprint.signature is not None
        worker = await extractor._run(os.getpid)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            for _ in range(3):
                await extractor.prepare(fetched("https://news.example.org/b"))
        again = await extractor.prepare(fetched("https://news.example.org/c"))
        assert again.extracted is not None
        assert again.extracted.paragraphs == first.extracted.paragraphs
        assert again.fingerprint == first.fingerprint

    with Extractor(workers=1) as extractor:
        asyncio.run(scenario(extractor))
