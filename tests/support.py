"""Run the real `newswatch` command as a user would, against the bundled demo site."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from crawler.demo.site import DemoSite

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "seeds" / "demo" / "site"


def newswatch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, in its own process (the reactor cannot restart in one)."""
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


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


def demo_config(tmp_path: Path, site: str, channels: str, *, notify: str, extra: str = "") -> Path:
    """The demo site's two feeds, the demo watchlist and the caller's channels."""
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
database: news.db
crawl: {{download_timeout: 5s}}
schedule: {{interval: 10m, jitter: 0}}
delivery: {{retry_delay: 1s}}
sources:
  - {{name: watch, url: "{site}/feed.xml", kind: feed}}
  - {{name: watch-fr, url: "{site}/fr/atom.xml", kind: feed, language: fr}}
{extra}
{CONCEPTS}
watchlists:
  - {{name: mfe, rule: "morocco AND france AND extradition", notify: [{notify}]}}
channels:
{channels}
""",
        encoding="utf-8",
    )
    return path


def slug(url: str) -> str:
    return url.rsplit("/", 1)[-1].split(".html")[0]


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    result = newswatch("run", "--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alert_rows(config: Path) -> list[dict]:
    with sqlite3.connect(config.parent / "news.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM alerts ORDER BY created_at")]


def story_of(config: Path) -> dict[str, str]:
    """Story id of every stored article, by page slug."""
    with sqlite3.connect(config.parent / "news.db") as conn:
        rows = conn.execute("SELECT canonical_url, story_id FROM articles").fetchall()
    return {slug(url): story for url, story in rows}


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
