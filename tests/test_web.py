"""`newswatch serve` as its users meet it: the real server on loopback, over a database the demo
site's pipeline filled, read with an HTTP client as a browser, a feed reader or monitoring
would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, free_port, newswatch, wait_until

SERVE = (sys.executable, "-m", "crawler.cli", "serve")
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)


class Served:
    """A running `newswatch serve` and a client for it."""

    def __init__(self, config: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*SERVE, "--config", str(config), "--port", str(self.port), *args],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        wait_until(self._answers, what="the server to answer")

    def _answers(self) -> bool:
        assert self.process.poll() is None, self.process.communicate()[1]
        try:
            self.client.get("/static/style.css")
        except httpx.TransportError:
            return False
        return True

    def get(self, path: str, **options: object) -> httpx.Response:
        return self.client.get(path, **options)

    def stop(self) -> str:
        self.client.close()
        self.process.terminate()
        return self.process.communicate(timeout=15)[1]


@pytest.fixture(scope="session")
def web_archive(tmp_path_factory: pytest.TempPathFactory, demo_archive: Path) -> Path:
    folder = tmp_path_factory.mktemp("web") / "archive"
    shutil.copytree(demo_archive, folder)
    return folder / "config.yaml"


@pytest.fixture(scope="session")
def web(web_archive: Path) -> Iterator[Served]:
    served = Served(web_archive)
    yield served
    served.stop()


def test_every_response_carries_the_security_headers(web: Served) -> None:
    for path in ("/", "/no-such-page", "/static/style.css", "/healthz"):
        response = web.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_nothing_but_reading_is_allowed(web: Served) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert web.client.request(method, "/").status_code == 405


def test_the_stylesheet_is_served_and_no_script_anywhere(web: Served) -> None:
    response = web.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "<script" not in web.get("/").text


def test_serve_refuses_an_open_address_without_a_token(web_archive: Path) -> None:
    result = newswatch("serve", "--config", str(web_archive), "--host", "0.0.0.0", timeout=30)
    assert result.returncode == 2
    assert "set web.token" in result.stderr
