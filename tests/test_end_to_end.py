"""The whole loop as a user runs it: config → `newswatch run --once` → SQLite → alerts received
by a real webhook receiver and a real SMTP server, all on 127.0.0.1."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from alerts.senders import sign
from tests.support import (
    CONCEPTS,
    MATCHING,
    NOT_MATCHING,
    ONE_STORY,
    ROOT,
    alert_rows,
    demo_config,
    free_port,
    newswatch,
    publish,
    retries_due,
    run_once,
    slug,
    start_daemon,
    stop_daemon,
    story_of,
)

SECRET = "test-secret"


def write_config(tmp_path: Path, site: str, webhook: str, smtp_port: int) -> Path:
    channels = f"""
  mail: {{type: email, smtp_host: 127.0.0.1, smtp_port: {smtp_port}, security: none,
          from: "newswatch <nw@test.invalid>", to: [desk@test.invalid]}}
  hook: {{type: webhook, url: "{webhook}", secret: {SECRET}}}"""
    return demo_config(tmp_path, site, channels, notify="mail, hook")


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
    assert seed["story"] == {
        "id": stories["rabat-paris-security-declaration"],
        "articles": 1,
        "outlets": 1,
    }
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


def test_smtp_down_keeps_alerts_pending_then_sends_each_once(tmp_path, site, hook, start_smtp):
    port = free_port()
    config = write_config(tmp_path, site.base_url, hook.url, port)

    run_once(config)

    mail_rows = [r for r in alert_rows(config) if r["channel"] == "mail"]
    assert len(mail_rows) == len(MATCHING)
    assert all(r["status"] == "pending" and r["attempts"] >= 1 for r in mail_rows)
    assert all(r["last_error"] for r in mail_rows)
    assert len(hook.requests) == len(MATCHING)

    smtp = start_smtp(port=port)
    retries_due(config)
    run_once(config)
    run_once(config)
    assert len(smtp.messages) == len(MATCHING)
    assert {r["status"] for r in alert_rows(config)} == {"sent"}
    assert len(hook.requests) == len(MATCHING)


def test_daemon_refuses_a_second_instance_and_stops_on_sigint(tmp_path, site, hook, smtp):
    config = write_config(tmp_path, site.base_url, hook.url, smtp.port)
    daemon = start_daemon(config)
    try:
        hook.wait_for(len(MATCHING), timeout=60)
        second = newswatch("run", "--once", "--config", str(config))
    finally:
        code, took, log = stop_daemon(daemon, signal.SIGINT)
    assert second.returncode == 1
    assert "another newswatch daemon is already using" in second.stderr
    assert code == 0, log
    assert took < 10, log
    assert "daemon stopped" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("crawl: {user_agnet: x}", "crawl.user_agnet: unknown key (did you mean 'user_agent'?)"),
        ("schedule: {interval: ten minutes}", "schedule.interval: 'ten minutes' is not a duration"),
        ("channels: {hook: {type: webhook, url: '${NW_TEST_UNSET_URL}'}}", "NW_TEST_UNSET_URL"),
        ("watchlists: [{name: w, rule: 'morocco AND frnace'}]", "watchlists[0].rule"),
        ("storage: {keep_articles: -3d}", "storage.keep_articles"),
        ("storage: {keep_html: soon}", "storage.keep_html"),
        ("storage: {keep_days: 3}", "storage.keep_days: unknown key"),
    ],
)
def test_config_errors_exit_2_naming_the_path(tmp_path, snippet, expected):
    config = tmp_path / "config.yaml"
    config.write_text(CONCEPTS + "\n" + snippet + "\n", encoding="utf-8")

    result = newswatch("check", "--config", str(config))

    assert result.returncode == 2
    assert expected in result.stderr


def test_check_reports_every_error_in_one_go(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        CONCEPTS
        + "schedule: {interval: soon}\n"
        + "sources: [{name: a, url: 'ftp://example.org/feed'}]\n"
        + "watchlists: [{name: w, rule: 'morocco AND'}]\n",
        encoding="utf-8",
    )

    result = newswatch("check", "--config", str(config))

    assert result.returncode == 2
    assert "3 error(s)" in result.stderr
    assert "schedule.interval: 'soon' is not a duration" in result.stderr
    assert "sources[0].url: 'ftp://example.org/feed' is not a web address" in result.stderr
    assert "watchlists[0].rule: watchlist 'w'" in result.stderr


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
    assert "وتسليم الملطلوبين" in texts  # "and the extradition of", misspelt: a fuzzy hit
