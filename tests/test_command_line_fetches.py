"""`newswatch match URL` and `newswatch add URL` read the same hostile web as the daemon and keep
its limits: decoded size, total deadline, and the address policy on every redirect hop."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import brotli
import pytest

from crawler.addresses import AddressPolicy
from crawler.fetching import BoundedClient, FetchError
from tests.hostile_site import HostileSite, Reply, gzip_bomb
from tests.support import newswatch

MAX_PAGE = 256 * 1024
HTML = {"Content-Type": "text/html"}
BROTLI_BOMB = brotli.compress(b"\0" * (64 * 1024**2), quality=5)
ARTICLE = (
    "<html><head><title>Extradition</title></head><body><article><h1>Extradition</h1>"
    + "<p>The court in Rabat approved the extradition of a French national to Paris.</p>" * 5
    + "</article></body></html>"
).encode()


@pytest.fixture(scope="module")
def internal():
    with HostileSite({"/admin": Reply(ARTICLE, headers=HTML)}, host="127.0.0.2") as site:
        yield site


@pytest.fixture(scope="module")
def site(internal):
    routes = {
        "/brotli.html": Reply(BROTLI_BOMB, headers={**HTML, "Content-Encoding": "br"}),
        "/gzip.html": Reply(gzip_bomb(64 * 1024**2), headers={**HTML, "Content-Encoding": "gzip"}),
        "/drip.html": Reply(b"<p>", headers=HTML, delay=0, stream=10**9, drip=0.05),
        "/moved.html": Reply(status=302, headers={"Location": f"{internal.url}/admin"}),
        "/home.html": Reply(
            f"<html><head><link rel=alternate type='application/rss+xml' href='{internal.url}"
            "/admin'></head><body>home</body></html>".encode(),
            headers=HTML,
        ),
        "/article.html": Reply(ARTICLE, headers=HTML),
    }
    with HostileSite(routes) as served:
        yield served


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"crawl: {{download_timeout: 2s, max_page_size: {MAX_PAGE}}}\n"
        "concepts:\n  morocco: {en: [Rabat]}\n"
        "watchlists:\n  - {name: m, rule: morocco}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("page", ["brotli.html", "gzip.html"])
def test_match_stops_a_compression_bomb_at_the_size_limit(config, site, page):
    result = newswatch("match", "--config", str(config), f"{site.url}/{page}", timeout=60)
    assert result.returncode == 1
    assert f"larger than crawl.max_page_size ({MAX_PAGE} bytes)" in result.stderr


@pytest.mark.parametrize("page", ["brotli.html", "gzip.html"])
def test_a_compression_bomb_never_grows_past_the_limit_in_memory(site, page):
    client = BoundedClient("test", 10, MAX_PAGE, AddressPolicy.for_sources([site.url], False))
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=r"larger than crawl\.max_page_size"):
            client.get(f"{site.url}/{page}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        client.close()
    assert peak < 16 * MAX_PAGE


def test_match_gives_up_on_a_slow_drip_at_the_deadline(config, site):
    result = newswatch("match", "--config", str(config), f"{site.url}/drip.html", timeout=60)
    assert result.returncode == 1
    assert "not received within crawl.download_timeout (2 s)" in result.stderr


def test_match_follows_no_redirect_to_an_internal_host(config, site, internal):
    result = newswatch("match", "--config", str(config), f"{site.url}/moved.html")
    assert result.returncode == 1
    assert "refused: 127.0.0.2 is a loopback address" in result.stderr
    assert internal.paths() == []


def test_match_reads_the_url_it_was_given(config, site):
    result = newswatch("match", "--config", str(config), f"{site.url}/article.html")
    assert result.returncode == 0, result.stderr
    assert "Rabat" in result.stdout


def test_add_does_not_read_a_feed_linked_on_an_internal_host(config, site, internal):
    result = newswatch("add", "--config", str(config), f"{site.url}/home.html")
    assert internal.paths() == []
    assert f"url={internal.url}/admin: not read (refused: 127.0.0.2" in result.stderr
