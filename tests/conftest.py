"""Shared fixtures: a writable copy of the demo news site served on 127.0.0.1, a fresh database
(or the outbox tables alone), a loopback webhook receiver."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from alerts.schema import open_outbox
from crawler import store
from crawler.demo.receivers import WebhookReceiver
from crawler.demo.site import DemoSite
from tests.support import DEMO_SITE


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DemoSite]:
    """A writable copy of the bundled news site, so a test can publish new articles."""
    root = tmp_path / "site"
    shutil.copytree(DEMO_SITE, root)
    with DemoSite(root) as served:
        yield served


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = store.open_db(tmp_path / "news.db")
    yield database
    database.close()


@pytest.fixture
def outbox_db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    """The alerts library's tables alone, as a program using the library without the crawler
    has them: the library's own tests need nothing from `crawler/`."""
    database = open_outbox(tmp_path / "outbox.db")
    yield database
    database.close()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver
