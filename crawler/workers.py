"""Worker processes for CPU work on page content, one task each at a time, under a deadline, and
the extraction stage that runs in them (`Extractor`, `prepare`).

`concurrent.futures.ProcessPoolExecutor` cannot stop one task: a page that never finishes holds
its worker, and the pool's shutdown, forever; a worker that dies breaks the whole pool and every
task in flight on it, and replacing the pool from each failure handler raced (a second handler
shut down the pool the first had just started: the poll hung). pebble's pool kills a task's
worker at its deadline, but it starts every worker, replacements included, from the same start
method, from its own threads: forked from a process with threads, or each loading the language
model afresh from a fork server.

Here each worker has its own pipe and runs one task at a time, so the pool knows which worker
holds which task. A task over its deadline has its worker killed; a worker that dies fails only
its own task; either way one replacement is started and the other tasks go on. The first
workers are forked when the pool is made, before any thread exists, and share the parent's
memory (the language model); replacements come from a fork server, since by then the daemon has
threads. `close` kills the workers and fails waiting tasks at once: stopping never waits on one.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from crawler import dedup, language
from crawler.articles import Fetched, Prepared, build_record
from crawler.config import EXTRACTION_TIMEOUT
from crawler.event_terms import terms_of
from crawler.extract import extract_article
from crawler.language import detect_language

log = logging.getLogger("newswatch.workers")
T = TypeVar("T")

_READY = "ready"
# A worker that does not come up (fork server gone, out of memory) is tried again after this.
_RESTART_DELAY = 5.0


class WorkerLost(Exception):
    """The task's worker was killed at the deadline, or died: the task has no result."""


class PoolClosed(Exception):
    """The pool was closed (the daemon is stopping) before the task had a result."""


def _serve(conn: Connection, initializer: Callable[[], None]) -> None:
    """A worker's life: get ready, then run one task at a time until the pipe closes. Ctrl-C in
    a terminal reaches the whole process group: the parent decides when workers stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer()
    conn.send(_READY)
    while True:
        try:
            function, args = conn.recv()
        except EOFError:
            return
        try:
            outcome = (True, function(*args))
        except Exception as exc:
            outcome = (False, exc)
        conn.send(outcome)


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection

    @property
    def pid(self) -> int:
        return self.process.pid or 0


class WorkerPool:
    """Processes that run one task each at a time, each task under the deadline; a worker lost
    to the deadline or to its death is replaced, and fails its own task only."""

    def __init__(self, workers: int, initializer: Callable[[], None], deadline: float) -> None:
        self.deadline = deadline
        self._initializer = initializer
        self._idle: list[_Worker] = []
        self._waiting: deque[asyncio.Future[_Worker]] = deque()
        self._busy: dict[_Worker, asyncio.Future[None]] = {}
        self._all: set[_Worker] = set()
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = False
        fork = multiprocessing.get_context("fork")
        started = [self._launch(fork) for _ in range(workers)]
        self._all.update(started)
        for worker in started:
            worker.conn.recv()  # the first message says the worker is ready
            self._release(worker)

    def _launch(self, context: Any) -> _Worker:
        mine, theirs = context.Pipe()
        process = context.Process(
            target=_serve, args=(theirs, self._initializer), name="newswatch-worker", daemon=True
        )
        process.start()
        theirs.close()
        return _Worker(process, mine)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker, within the deadline once a worker has taken it.

        Raises WorkerLost (deadline passed, or the worker died) or PoolClosed."""
        worker = await self._acquire()
        try:
            ok, value = await self._call(worker, function, args)
        except BaseException:
            self._discard(worker)
            raise
        self._release(worker)
        if not ok:
            raise value
        return value

    async def _acquire(self) -> _Worker:
        if self._closed:
            raise PoolClosed("the extraction workers are stopped")
        while self._idle:
            worker = self._idle.pop()
            if worker.process.is_alive():
                return worker
            log.error("extraction worker %d died while idle (%s)", worker.pid, _death(worker))
            self._discard(worker)
        waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # cancelled after a worker was handed over: hand it on
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())
            raise

    def _release(self, worker: _Worker) -> None:
        """Hand a free worker to the first task still waiting, else keep it idle."""
        if self._closed:
            self._kill(worker)
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    async def _call(self, worker: _Worker, function: Callable[..., T], args: tuple) -> Any:
        """Send the task and wait for the answer, the worker's death or the deadline."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        self._busy[worker] = answered
        watched = (worker.conn.fileno(), worker.process.sentinel)
        for fd in watched:
            loop.add_reader(fd, _settle, answered)
        try:
            worker.conn.send((function, args))
            await asyncio.wait_for(answered, self.deadline)
            return _receive(worker)
        except TimeoutError:
            raise WorkerLost(f"over the {self.deadline:g} s deadline, its worker killed") from None
        except (EOFError, OSError):
            raise WorkerLost(f"its worker died ({_death(worker)})") from None
        finally:
            self._busy.pop(worker, None)
            for fd in watched:
                loop.remove_reader(fd)

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker whose task failed or was cancelled (it may still be working on it) and
        start its replacement."""
        self._kill(worker)
        if not self._closed:
            task = asyncio.get_running_loop().create_task(self._replace())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    def _kill(self, worker: _Worker) -> None:
        self._all.discard(worker)
        if worker.process.exitcode is None:
            worker.process.kill()
        worker.conn.close()
        worker.process.join(timeout=1.0)

    async def _replace(self) -> None:
        """A new worker from the fork server (this process has threads now), once it is ready;
        tried again later if it does not come up."""
        forkserver = multiprocessing.get_context("forkserver")
        # the server imports the workers' modules once; each replacement forks with them loaded
        forkserver.set_forkserver_preload([self._initializer.__module__])
        while not self._closed:
            try:
                worker = await asyncio.to_thread(self._launch, forkserver)
                self._all.add(worker)
                await self._first_message(worker)
            except (EOFError, OSError) as exc:
                if not self._closed:
                    log.error("an extraction worker could not start (%s); trying again", exc)
                    await asyncio.sleep(_RESTART_DELAY)
                continue
            log.info("extraction worker %d started", worker.pid)
            self._release(worker)
            return

    async def _first_message(self, worker: _Worker) -> None:
        """Wait for the message that says a new worker is ready."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        watched = (worker.conn.fileno(), worker.process.sentinel)
        for fd in watched:
            loop.add_reader(fd, _settle, ready)
        try:
            await ready
            _receive(worker)
        except (EOFError, OSError):
            self._kill(worker)
            raise
        finally:
            for fd in watched:
                loop.remove_reader(fd)

    def close(self) -> None:
        """Kill every worker and fail every task in flight or waiting, now: a stuck page must
        not hold the daemon's exit, and no worker holds anything worth keeping."""
        if self._closed:
            return
        self._closed = True
        for future in (*self._waiting, *self._busy.values()):
            if not future.done() and not future.get_loop().is_closed():
                future.set_exception(PoolClosed("the extraction workers were stopped"))
        self._waiting.clear()
        self._idle.clear()
        for worker in list(self._all):
            self._kill(worker)


def _death(worker: _Worker) -> str:
    """How a dead worker ended, once it is reaped (its pipe can close a moment before)."""
    worker.process.join(timeout=1.0)
    code = worker.process.exitcode
    if code is None:
        return "pipe closed"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _receive(worker: _Worker) -> Any:
    """The worker's message; EOFError when it died without one (its pipe may still be open in
    another process, so a bare `recv` could wait for ever)."""
    if not worker.conn.poll():
        raise EOFError("no answer")
    return worker.conn.recv()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Extractor:
    """trafilatura costs 20–40 ms of CPU a page: it runs in worker processes, off the event loop,
    each page under a deadline (`crawl.extraction_timeout`).

    Workers are forked when the extractor is made, before the reactor starts and before any
    thread exists: they inherit the parent's imports and the language model instead of paying
    seconds of start-up each, and forking a process without threads is safe. The daemon then
    drops its reference to the model (75 MB): it never detects a language itself. A page over
    the deadline has its worker killed; a worker that dies (killed, out of memory) loses only its
    own page; either way the page falls back to its feed entry and a replacement starts.
    """

    def __init__(self, workers: int | None = None, deadline: float = EXTRACTION_TIMEOUT) -> None:
        self.workers = workers or os.cpu_count() or 1
        _warm_up()
        # Objects that exist now are never garbage: frozen, the collector stops walking (and, in
        # the workers, copying) them.
        gc.freeze()
        self._pool = WorkerPool(self.workers, _warm_up, deadline)
        language.forget_model()

    async def prepare(self, fetched: Fetched) -> Prepared:
        return await self._pool.run(prepare, fetched)

    def close(self) -> None:
        """Kill the workers now; pages in flight are handed back (fetched again next poll)."""
        self._pool.close()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _warm_up() -> None:
    """Load the language model before the first article: in the daemon before it forks, in a
    worker started from the fork server."""
    language.model()


def prepare(fetched: Fetched) -> Prepared:
    """Runs in a worker: extraction, the entry's language when the page gives no text, the
    record made of them, its fingerprint and event terms, so the parent gets all it stores in
    one trip."""
    extracted, error = None, None
    if fetched.html is not None:
        url = fetched.final_url or fetched.entry.url
        try:
            extracted = extract_article(fetched.html, url, fetched.source_language)
        except Exception as exc:  # a page that breaks the extractor falls back to its entry
            error = f"{type(exc).__name__}: {exc}"
    summary_language = None
    if not (extracted and extracted.paragraphs) and not fetched.source_language:
        summary_language = detect_language(f"{fetched.entry.title}\n{fetched.entry.summary}")
    record = build_record(fetched, extracted, summary_language)
    if record is None:
        return Prepared(None, None, error)
    fingerprint = dedup.fingerprint(record.title, record.paragraphs)
    return Prepared(record, fingerprint, error, terms_of(record.title, record.paragraphs))
