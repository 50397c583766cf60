"""The whole loop as a user runs it: config → `newswatch run --once` → SQLite → alerts received
by a real webhook receiver and a real SMTP server, all on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alerts.channels import sign
from crawler.demo_site import DemoSite
from crawler.receivers import SmtpSink, WebhookReceiver
from tests.support import ROOT, newswatch

SECRET = "test-secret"
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


def write_config(tmp_path: Path, site: str, webhook: str, smtp_port: int) -> Path:
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
{CONCEPTS}
watchlists:
  - name: mfe
    rule: "morocco AND france AND extradition"
    notify: [mail, hook]
channels:
  mail: {{type: email, smtp_host: 127.0.0.1, smtp_port: {smtp_port}, security: none,
          from: "newswatch <nw@test.invalid>", to: [desk@test.invalid]}}
  hook: {{type: webhook, url: "{webhook}", secret: {SECRET}}}
""",
        encoding="utf-8",
    )
    return path


def slug(url: str) -> str:
    return url.rsplit("/", 1)[-1].split(".html")[0]


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    result = newswatch("run", "--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
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


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp():
    with SmtpSink() as sink:
        yield sink


def test_poll_stores_matches_and_alerts_once_per_channel(tmp_path, site, hook, smtp):
    config = write_config(tmp_path, site.base_url, hook.url, smtp.port)

    run_once(config)

    hooked = {slug(r.json["article"]["url"]) for r in hook.requests}
    mailed = {m["Subject"] for m in smtp.messages}
    assert hooked - ONE_STORY == MATCHING - ONE_STORY
    assert len(hooked & ONE_STORY) == 1
    assert len(hook.requests) == len(MATCHING) == len(smtp.messages)
    stories = story_of(config)
    assert (
        stories["morocco-extradites-french-fugitive"]
        == stories["wire-french-fugitive-sent-home-from-morocco"]
    )
    assert len(set(stories.values())) == len(stories) - 1
    wire = next(r.json for r in hook.requests if slug(r.json["article"]["url"]) in ONE_STORY)
    assert wire["story"]["id"] == stories["morocco-extradites-french-fugitive"]
    assert not hooked & NOT_MATCHING
    assert "[mfe] باريس والرباط تعززان التعاون الأمني بإعلان مشترك ضد الإرهاب والجريمة" in mailed
    for request in hook.requests:
        assert request.headers["X-Newswatch-Signature"] == sign(SECRET, request.body)
        assert request.headers["X-Newswatch-Id"] == request.json["id"]
    seed = next(r.json for r in hook.requests if "security-declaration" in r.json["article"]["url"])
    concepts = {m["concept"] for m in seed["matches"]}
    assert concepts == {"morocco", "france", "extradition"}
    assert seed["article"]["language"] == "ar"
    assert "utm_" not in seed["article"]["canonical_url"]


def test_second_poll_is_conditional_and_fetches_nothing(tmp_path, site, hook, smtp):
    config = write_config(tmp_path, site.base_url, hook.url, smtp.port)
    run_once(config)
    site.reset_log()

    run_once(config)

    feeds = [r for r in site.requests if r.path.endswith((".xml",))]
    articles = [r for r in site.requests if "/articles/" in r.path]
    assert len(feeds) == 2
    assert all(r.conditional and r.status == 304 for r in feeds)
    assert articles == []
    assert len(hook.requests) == len(MATCHING)


def test_new_feed_entry_gives_exactly_one_more_alert_per_channel(tmp_path, site, hook, smtp):
    config = write_config(tmp_path, site.base_url, hook.url, smtp.port)
    run_once(config)
    before = len(hook.requests), len(smtp.messages)

    publish(
        site,
        "rabat-returns-fugitive",
        "Morocco to extradite fraud suspect to France",
        [
            "RABAT — A Moroccan court approved on Saturday the extradition to France of a man "
            "wanted in Paris for a large investment fraud.",
            "French prosecutors had requested his arrest last spring.",
        ],
    )
    run_once(config)

    assert (len(hook.requests), len(smtp.messages)) == (before[0] + 1, before[1] + 1)
    assert slug(hook.requests[-1].json["article"]["url"]) == "rabat-returns-fugitive"
    run_once(config)
    assert (len(hook.requests), len(smtp.messages)) == (before[0] + 1, before[1] + 1)


def test_smtp_down_keeps_alerts_pending_then_sends_each_once(tmp_path, site, hook):
    port = free_port()
    config = write_config(tmp_path, site.base_url, hook.url, port)

    run_once(config)

    mail_rows = [r for r in alert_rows(config) if r["channel"] == "mail"]
    assert len(mail_rows) == len(MATCHING)
    assert all(r["status"] == "pending" and r["attempts"] >= 1 for r in mail_rows)
    assert all(r["last_error"] for r in mail_rows)
    assert len(hook.requests) == len(MATCHING)

    with SmtpSink(port=port) as smtp:
        time.sleep(2.5)
        run_once(config)
        run_once(config)
        assert len(smtp.messages) == len(MATCHING)
    assert {r["status"] for r in alert_rows(config)} == {"sent"}
    assert len(hook.requests) == len(MATCHING)


def test_daemon_refuses_a_second_instance_and_stops_on_sigint(tmp_path, site, hook, smtp):
    config = write_config(tmp_path, site.base_url, hook.url, smtp.port)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "run", "--config", str(config)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        hook.wait_for(len(MATCHING), timeout=60)
        second = newswatch("run", "--once", "--config", str(config))
        assert second.returncode == 1
        assert "another newswatch daemon is already using" in second.stderr

        started = time.monotonic()
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if daemon.poll() is None:
            daemon.kill()
    log = daemon.stderr.read()
    assert "daemon stopped" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("crawl: {user_agnet: x}", "crawl.user_agnet: unknown key (did you mean 'user_agent'?)"),
        ("schedule: {interval: ten minutes}", "schedule.interval: 'ten minutes' is not a duration"),
        ("channels: {hook: {type: webhook, url: '${NW_TEST_UNSET_URL}'}}", "NW_TEST_UNSET_URL"),
        ("watchlists: [{name: w, rule: 'morocco AND frnace'}]", "watchlists[0].rule"),
    ],
)
def test_config_errors_exit_2_naming_the_path(tmp_path, snippet, expected):
    config = tmp_path / "config.yaml"
    config.write_text(CONCEPTS + "\n" + snippet + "\n", encoding="utf-8")

    result = newswatch("check", "--config", str(config))

    assert result.returncode == 2
    assert expected in result.stderr


def test_check_accepts_the_shipped_configs():
    for path in (ROOT / "config.yaml", ROOT / "seeds" / "demo" / "config.yaml"):
        env = {
            "DEMO_SITE_URL": "http://127.0.0.1:1",
            "DEMO_WEBHOOK_URL": "http://127.0.0.1:1/hook",
            "DEMO_SMTP_PORT": "25",
            "DEMO_WEBHOOK_SECRET": "x",
        }
        result = newswatch("check", "--config", str(path), env=env)
        assert result.returncode == 0, result.stderr


def test_match_explains_the_seed_article_as_json(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        CONCEPTS
        + """
  algeria:
    ar: [الجزائر]
watchlists:
  - {name: mfe, rule: "morocco AND france AND extradition"}
  - {name: alg, rule: "algeria"}
""",
        encoding="utf-8",
    )
    seed = ROOT / "tests" / "data" / "seed_article.txt"

    result = newswatch("match", "--json", "--config", str(config), str(seed))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["document"] == str(seed)
    assert [w["name"] for w in report["watchlists"]] == ["mfe"]
    texts = {m["text"] for m in report["watchlists"][0]["matches"]}
    assert "وتسليم الملطلوبين" in texts or "تسليم الملطلوبين" in texts
