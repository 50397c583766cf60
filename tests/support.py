"""The test kit: run the real `newswatch` command as a user would, write its config, read the
database it leaves, and wait on what can be observed, never on a fixed sleep."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlite_utils

from crawler import store
from crawler.demo.site import DemoSite

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "seeds" / "demo" / "site"
# Guards against a hang, never a measure: a test that reaches it has failed.
HANG = 100.0


def newswatch(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    prefix: Sequence[str] = (),
    **options: Any,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, in its own process (the reactor cannot restart in one),
    behind the `prefix` command if any (`unshare …`); `options` go to `subprocess.run`."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "crawler.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        **options,
    )


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    result = newswatch("run", "--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def start_daemon(config: Path, *args: str, **options: Any) -> subprocess.Popen[str]:
    """`newswatch run` as a service manager starts it; its log is read from `stderr`."""
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "run", "--config", str(config), *args],
        cwd=ROOT,
        text=True,
        **{"stderr": subprocess.PIPE, **options},
    )


def stop_daemon(daemon: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, float, str]:
    """Send `sig` as a service manager stops it: (exit code, seconds to exit, its log)."""
    started = time.monotonic()
    daemon.send_signal(sig)
    try:
        _, log = daemon.communicate(timeout=15)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    return daemon.returncode, time.monotonic() - started, log or ""


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    """Poll what a test can observe (a request served, a row written) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.05)


# Ports below Linux's ephemeral range (32768-60999), which the kernel never hands out on its
# own, shared out between the xdist workers: a port picked here and bound a moment later by a
# server (`newswatch serve`, PostgreSQL), or left unbound to be refused, is not taken meanwhile
# by another worker's server or by an outgoing connection.
PORTS = range(20_000, 32_768)


def free_port() -> int:
    """A loopback port nothing listens on, from this worker's share of `PORTS`, picked at
    random (unseeded by tests that seed `random`), so two suites run at once on one machine
    seldom pick the same."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    share = PORTS[worker::workers]
    while True:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", random.SystemRandom().choice(share)))
            except OSError:
                continue
            return probe.getsockname()[1]


# -- config ---------------------------------------------------------------------------------


def write_config(
    folder: Path,
    sources: Mapping[str, str | Mapping[str, object]],
    *,
    crawl: str = "{}",
    interval: str = "10m",
    more: str = "",
) -> Path:
    """`folder/config.yaml` polling `sources` (name → URL, or name → its keys, `url` among
    them) into `folder/news.db`, with no jitter; `more` is appended as YAML as it is."""
    listed = "\n".join(
        f"  - {json.dumps({'name': name, **({'url': s} if isinstance(s, str) else s)})}"
        for name, s in sources.items()
    )
    path = folder / "config.yaml"
    path.write_text(
        f"database: news.db\ncrawl: {crawl}\nschedule: {{interval: {interval}, jitter: 0}}\n"
        f"sources:\n{listed}\n{more}\n",
        encoding="utf-8",
    )
    return path


# The wire copy republishes the English original with edits: one story, so one alert, carried by
# whichever of the two was stored first.
ONE_STORY = {"morocco-extradites-french-fugitive", "wire-french-fugitive-sent-home-from-morocco"}
MATCHING = {
    "rabat-paris-security-declaration",
    "morocco-france-extradition-agreement",
    "maroc-extrade-narcotrafiquant",
    "morocco-extradites-french-fugitive",
}
NOT_MATCHING = {
    "ex-psg-academy-player-extradited",
    "paris-mosques-winter-schedule",
    "rabat-paris-formation-magistrats",
    "spain-algeria-extradition-businessman",
    "tourisme-visiteurs-francais-maroc",
    "uk-ambassador-channel-migrants",
}
CONCEPTS = """
concepts:
  morocco:
    ar: [مغرب, المغاربة, الرباط, المملكة المغربية]
    fr: [Maroc, marocain, Rabat]
    en: [Morocco, Moroccan, Rabat]
    exclude: ["صلاة المغرب", "أذان المغرب", "المملكة المتحدة"]
  france:
    ar: [فرنسا, فرنسي, باريس]
    fr: [France, français, Paris]
    en: [France, French, Paris]
    exclude: ["باريس سان جيرمان", "Paris Saint-Germain"]
  extradition:
    ar: [{term: "تسليم المطلوبين", fuzzy: 1}, "تسليم المجرمين", ترحيل, استرداد]
    fr: [{term: extradition, mode: stem}, {term: extrader, mode: stem}]
    en: [{term: extradition, mode: stem}, {term: extradite, mode: stem}]
"""


# Alerts written to `alerts.jsonl` beside the config: delivered, with no receiver to start.
FILE_CHANNEL = "  log: {type: file, path: alerts.jsonl}"


def demo_sources(site: str) -> dict[str, dict[str, str]]:
    """The demo site's two feeds."""
    return {
        "watch": {"url": f"{site}/feed.xml", "kind": "feed"},
        "watch-fr": {"url": f"{site}/fr/atom.xml", "kind": "feed", "language": "fr"},
    }


def demo_config(
    tmp_path: Path,
    site: str,
    channels: str,
    *,
    notify: str,
    sources: Mapping[str, str | Mapping[str, object]] | None = None,
    crawl: str = "{download_timeout: 5s}",
    interval: str = "10m",
) -> Path:
    """The demo site's two feeds (and `sources`), the demo watchlist and the caller's channels."""
    return write_config(
        tmp_path,
        {**demo_sources(site), **(sources or {})},
        crawl=crawl,
        interval=interval,
        more=f"delivery: {{retry_delay: 1s}}\n{CONCEPTS}\nwatchlists:\n"
        f"  - {{name: mfe, rule: 'morocco AND france AND extradition', notify: [{notify}]}}\n"
        f"channels:\n{channels}\n",
    )


# -- the database a run leaves ----------------------------------------------------------------


def rows(config: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Rows of the database `config` names, as a user reads them with `sqlite3`."""
    with sqlite3.connect(config.parent / "news.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, params)]


def value(config: Path, sql: str, params: tuple = ()) -> Any:
    """The one value a query such as `SELECT count(*) …` answers."""
    [row] = rows(config, sql, params)
    [answer] = row.values()
    return answer


def change(config: Path, sql: str, params: tuple = ()) -> None:
    """Change the database as time or another program would (an age, a damaged row)."""
    with sqlite3.connect(config.parent / "news.db") as conn:
        conn.execute(sql, params)
    conn.close()


def retries_due(config: Path) -> None:
    """Time passes: every alert and every failed page waiting for its retry delay is due now."""
    past = "2000-01-01T00:00:00Z"
    change(config, "UPDATE alerts SET next_attempt_at = ? WHERE status = 'pending'", (past,))
    change(config, "UPDATE fetch_failures SET retry_at = ? WHERE retry_at IS NOT NULL", (past,))


def alert_rows(config: Path) -> list[dict[str, Any]]:
    return rows(config, "SELECT * FROM alerts ORDER BY created_at")


def slug(url: str) -> str:
    return url.rsplit("/", 1)[-1].split(".html")[0]


def story_of(config: Path) -> dict[str, str]:
    """Story id of every stored article, by page slug."""
    stored = rows(config, "SELECT canonical_url, story_id FROM articles")
    return {slug(row["canonical_url"]): row["story_id"] for row in stored}


def schema_version_with(feature: Callable[[sqlite_utils.Database], bool]) -> int:
    """The first schema version (migrations applied) whose database has `feature`, so a test
    builds a file as an older release left it without naming the migrations."""
    db = sqlite_utils.Database(memory=True)
    for version, migration in enumerate(store.MIGRATIONS, start=1):
        migration(db)
        if feature(db):
            return version
    raise AssertionError("no migration brings that feature")


def database_at(path: Path, version: int) -> sqlite_utils.Database:
    """A database file at schema `version`, as the release that wrote it left it."""
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    for migration in store.MIGRATIONS[:version]:
        migration(db)
    db.execute(f"PRAGMA user_version={version}")
    return db


# -- the demo site ----------------------------------------------------------------------------


def publish(site: DemoSite, name: str, title: str, paragraphs: list[str]) -> None:
    """Add an article page and put it at the top of the RSS feed, as a CMS would."""
    root = Path(site.root)
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    (root / "articles" / f"{name}.html").write_text(
        f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"{body}</article></body></html>",
        encoding="utf-8",
    )
    feed = root / "feed.xml"
    item = (
        f"<item><title>{title}</title><link>{{{{BASE_URL}}}}/articles/{name}.html</link>"
        f"<guid>{name}</guid><pubDate>Sat, 28 Nov 2026 12:00:00 +0000</pubDate>"
        f"<description>{paragraphs[0]}</description></item>"
    )
    feed.write_text(feed.read_text(encoding="utf-8").replace("<item>", item + "<item>", 1))


# -- the web app ------------------------------------------------------------------------------

SERVE = (sys.executable, "-m", "crawler.cli", "serve")
# A matched demo article a hostile site wrote (see the `web_archive` fixture).
HOSTILE_TITLE = "<script>alert(1)</script> \u202eevil\u202c Maroc"
HOSTILE_SLUG = "maroc-extrade-narcotrafiquant"


class Served:
    """A running `newswatch serve` and a client for it."""

    def __init__(self, config: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # a file, not a pipe: nobody reads a pipe while the server runs, and a full one stops it
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            [*SERVE, "--config", str(config), "--port", str(self.port), *args],
            cwd=ROOT,
            stderr=self.log,
            text=True,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        wait_until(self._answers, what="the server to answer")

    def _answers(self) -> bool:
        assert self.process.poll() is None, self.output()
        try:
            self.client.get("/static/style.css")
        except httpx.TransportError:
            return False
        return True

    def get(self, path: str, **options: object) -> httpx.Response:
        return self.client.get(path, **options)

    def output(self) -> str:
        """What the server logged so far."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> str:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=15)
        logged = self.output()
        self.log.close()
        return logged


def article_id(config: Path, slug: str) -> int:
    return value(config, "SELECT id FROM articles WHERE canonical_url LIKE ?", (f"%/{slug}.html",))


# -- the browser ------------------------------------------------------------------------------

# What Debian's chromium needs in a container without a GPU or a sandbox, and with no network
# beyond loopback (background networking would try the internet at every start). Playwright
# starts each browser on a fresh, temporary --user-data-dir of its own.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1200, "height": 900}
