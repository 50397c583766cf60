"""Remake the README's screenshots: `newswatch demo` fills a database from the bundled offline
news site, `newswatch serve` shows it on loopback, and Debian's headless Chromium (driven by
Playwright, never a downloaded browser) saves the overview and the Arabic article the demo's
watchlist matched as PNGs of a 1200×900 viewport.

    python bench/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import CHROMIUM_FLAGS, VIEWPORT  # the browser test's own settings

ROOT = Path(__file__).resolve().parent.parent
NEWSWATCH = (sys.executable, "-m", "crawler.cli")
# `serve` reads the demo's config, whose channels name these; it never sends anything.
UNUSED_CHANNELS = {
    "DEMO_SITE_URL": "http://127.0.0.1:9",
    "DEMO_WEBHOOK_URL": "http://127.0.0.1:9/hook",
    "DEMO_SMTP_PORT": "9",
    "DEMO_WEBHOOK_SECRET": "unused",
}


def fill(folder: Path) -> Path:
    """The demo's config in `folder`, over the database `newswatch demo --keep` left there."""
    subprocess.run(
        [*NEWSWATCH, "demo", "--keep", str(folder)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    config = folder / "config.yaml"
    shutil.copy(ROOT / "seeds" / "demo" / "config.yaml", config)
    return config


def arabic_article(database: Path) -> int:
    """The matched Arabic article with the most matched words: the page worth showing."""
    with sqlite3.connect(database) as conn:
        (found,) = conn.execute(
            "SELECT a.id FROM articles a JOIN matches m ON m.article_id = a.id"
            " WHERE a.language = 'ar' ORDER BY json_array_length(m.hits) DESC, a.id LIMIT 1"
        ).fetchone()
    conn.close()
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"newswatch serve exited with {server.returncode}")
        try:
            httpx.get(f"{url}/static/style.css", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("newswatch serve did not answer within 60 s")


def shoot(url: str, pages: dict[str, str], out: Path, chromium: str) -> None:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport=VIEWPORT)
        for name, path in pages.items():
            page.goto(url + path)
            page.screenshot(path=out / name)
            print(f"{out / name}: {(out / name).stat().st_size // 1024} KB")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="newswatch-screenshots-") as scratch:
        config = fill(Path(scratch))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*NEWSWATCH, "serve", "--config", str(config), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **UNUSED_CHANNELS},
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(url, server)
            article = arabic_article(Path(scratch) / "demo.db")
            pages = {"overview.png": "/", "article-ar.png": f"/articles/{article}"}
            shoot(url, pages, args.out, args.chromium)
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
