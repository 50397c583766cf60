"""The extraction workers: a worker that dies must not stop extraction for good."""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures.process import BrokenProcessPool

import pytest

from crawler.pipeline import Extractor

PAGE = (
    "<html lang='en'><head><title>Morocco extradites a suspect to France</title></head><body>"
    "<article><h1>Morocco extradites a suspect to France</h1>"
    + "<p>Moroccan authorities on Friday extradited to France a man wanted in Lyon for an armed"
    " robbery, the justice ministry said in a statement published in Rabat.</p>"
    * 3
    + "</article></body></html>"
).encode()


def test_a_killed_worker_is_replaced_and_extraction_goes_on():
    async def scenario(extractor: Extractor) -> None:
        first = await extractor.extract(PAGE, "https://news.example.org/a", None)
        assert first is not None and first.language == "en"
        worker = await extractor._run(os.getpid)
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            for _ in range(3):
                await extractor.extract(PAGE, "https://news.example.org/b", None)
        again = await extractor.extract(PAGE, "https://news.example.org/c", None)
        assert again is not None and again.paragraphs == first.paragraphs

    with Extractor(workers=1) as extractor:
        asyncio.run(scenario(extractor))
