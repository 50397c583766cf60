"""Shared fixtures: the demo news site served on 127.0.0.1 (a writable copy, or an empty one), a
database the demo run filled (built once, copied per test), a fresh database (or the outbox
tables alone), the loopback webhook receivers and SMTP sinks alerts are delivered to, and
`newswatch serve` over the demo archive (one hostile article in it) for web and browser tests.

The suite runs on every core (up to 4) with pytest-xdist unless told otherwise (`-n 0`,
`-p no:xdist`): most of its time is spent waiting on servers and daemons, not computing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from alerts.database import POSTGRESQL, SQLITE, Database, PgDatabase
from alerts.schema import migrate_postgres, open_outbox
from crawler import store
from crawler.demo.receivers import SmtpSink, WebhookReceiver
from crawler.demo.site import DemoSite
from tests.cluster_support import NewsSite
from tests.postgres import PostgresServer, new_server
from tests.support import (
    DEMO_SITE,
    FILE_CHANNEL,
    HOSTILE_SLUG,
    HOSTILE_TITLE,
    Served,
    change,
    demo_config,
    run_once,
)

# Each worker builds the session fixtures (the demo archive, a PostgreSQL cluster) for itself:
# past a few workers they cost more than the cores they use save.
MAX_WORKERS = 4


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Without `-n` (nor `--pdb`), one xdist worker per core. `worksteal` hands each worker a
    contiguous share of the tests, so a module's tests (and its module-scoped fixtures) mostly
    stay on one worker, then moves the tail of a busy worker's queue to an idle one, so a few
    slow files do not leave a core idle at the end. Runs before xdist's own hook, which turns
    `-n` into workers."""
    in_worker = hasattr(config, "workerinput")
    if not config.pluginmanager.hasplugin("xdist") or in_worker or config.option.usepdb:
        return
    if config.option.numprocesses is None and config.option.dist == "no":
        cores = len(os.sched_getaffinity(0))
        config.option.numprocesses = min(cores, MAX_WORKERS) if cores > 1 else 0
        config.option.dist = "worksteal"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests given more than the default timeout (a 100k-entry feed, a dozen polls) start
    first, longest allowed first: begun last, one of them would keep a worker busy long after
    the others ran out of tests, as no worker can take over part of a test. The order of the
    other tests is unchanged."""
    default = float(config.getini("timeout"))
    items.sort(key=lambda item: -_allowed_seconds(item, default))


def _allowed_seconds(item: pytest.Item, default: float) -> float:
    marked = item.get_closest_marker("timeout")
    if marked is None or not marked.args:
        return default
    return float(marked.args[0])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DemoSite]:
    """A writable copy of the bundled news site, so a test can publish new articles."""
    root = tmp_path / "site"
    shutil.copytree(DEMO_SITE, root)
    with DemoSite(root) as served:
        yield served


@pytest.fixture
def blank_site(tmp_path: Path) -> Iterator[DemoSite]:
    """A news site with no page yet: the test writes every listing and page it serves."""
    root = tmp_path / "site"
    root.mkdir()
    with DemoSite(root) as served:
        yield served


@pytest.fixture(scope="session")
def demo_site() -> Iterator[DemoSite]:
    """The bundled news site as shipped, for tests that only read it."""
    with DemoSite(DEMO_SITE) as served:
        yield served


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory: pytest.TempPathFactory, demo_site: DemoSite) -> Path:
    """A folder holding a config of the demo site (alerts to a file, pages kept) and the database
    one `run --once` filled with its articles and sent alerts. Built once: use `archive`."""
    folder = tmp_path_factory.mktemp("demo-archive")
    crawl = "{download_timeout: 5s, store_html: true}"
    run_once(demo_config(folder, demo_site.base_url, FILE_CHANNEL, notify="log", crawl=crawl))
    return folder


@pytest.fixture
def archive(tmp_path: Path, demo_archive: Path) -> Path:
    """The config of a copy of `demo_archive` the test may change as it likes."""
    folder = tmp_path / "archive"
    shutil.copytree(demo_archive, folder)
    return folder / "config.yaml"


@pytest.fixture(params=[SQLITE, POSTGRESQL], ids=[SQLITE, POSTGRESQL])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database on each engine: a test using it runs once on the SQLite file and once
    on a new PostgreSQL database (skipped there without a server, see tests/postgres.py)."""
    where = (
        request.getfixturevalue("pg_url") if request.param == POSTGRESQL else tmp_path / "news.db"
    )
    database = store.open_db(where)
    yield database
    database.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the run (see tests/postgres.py)."""
    server = new_server()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A new empty PostgreSQL database for one test."""
    return postgres_server.database()


@pytest.fixture(params=[SQLITE, POSTGRESQL])
def outbox_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The alerts library's tables alone, as a program using the library without the crawler
    has them: the library's own tests need nothing from `crawler/`. Each test runs on both
    engines: a SQLite file, and a new PostgreSQL database (the cluster mode)."""
    if request.param == POSTGRESQL:
        database: Database = PgDatabase(request.getfixturevalue("pg_url"))
        migrate_postgres(database)
    else:
        database = open_outbox(tmp_path / "outbox.db")
    yield database
    database.close()


@pytest.fixture
def sites() -> Iterator[list[NewsSite]]:
    """The cluster tests' news sites (tests/cluster_support.py), closed after the test."""
    made: list[NewsSite] = []
    yield made
    for site in made:
        site.close()


@pytest.fixture
def start_hook() -> Iterator[Callable[..., WebhookReceiver]]:
    """Starts webhook receivers (`WebhookReceiver`'s options), stopped after the test."""
    with ExitStack() as started:
        yield lambda **options: started.enter_context(WebhookReceiver(**options))


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpSink]]:
    """Starts SMTP sinks (`SmtpSink`'s options), stopped after the test."""
    with ExitStack() as started:
        yield lambda **options: started.enter_context(SmtpSink(**options))


@pytest.fixture
def hook(start_hook: Callable[..., WebhookReceiver]) -> WebhookReceiver:
    return start_hook()


@pytest.fixture
def smtp(start_smtp: Callable[..., SmtpSink]) -> SmtpSink:
    return start_smtp()


@pytest.fixture(scope="session")
def web_archive(tmp_path_factory: pytest.TempPathFactory, demo_archive: Path) -> Path:
    """The demo archive, one of whose matched articles a hostile site wrote: a script in its
    title, bidi overrides, a `javascript:` address."""
    folder = tmp_path_factory.mktemp("web") / "archive"
    shutil.copytree(demo_archive, folder)
    config = folder / "config.yaml"
    change(
        config,
        "UPDATE articles SET title = ?, url = 'javascript:alert(1)' WHERE canonical_url LIKE ?",
        (HOSTILE_TITLE, f"%/{HOSTILE_SLUG}.html"),
    )
    return config


@pytest.fixture(scope="session")
def web(web_archive: Path) -> Iterator[Served]:
    served = Served(web_archive)
    yield served
    served.stop()
