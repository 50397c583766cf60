"""Shared fixtures: a writable copy of the demo news site, served on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.demo_site import DemoSite
from tests.support import DEMO_SITE


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DemoSite]:
    """A writable copy of the bundled news site, so a test can publish new articles."""
    root = tmp_path / "site"
    shutil.copytree(DEMO_SITE, root)
    with DemoSite(root) as served:
        yield served
