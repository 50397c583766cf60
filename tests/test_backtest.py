"""`newswatch match --archive`: watchlists tried on the articles already collected, nothing sent.

The archive is filled the way a user fills it: `newswatch run --once` against the demo site.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.support import (
    FILE_CHANNEL,
    MATCHING,
    ONE_STORY,
    change,
    demo_sources,
    newswatch,
    slug,
    write_config,
)

# every copy the watchlist matches, the wire copy of a matched story included
MFE = MATCHING | ONE_STORY
ARTICLE_KEYS = {
    "id",
    "url",
    "canonical_url",
    "title",
    "source",
    "language",
    "published_at",
    "fetched_at",
    "story_id",
}


def _config(folder: Path, base_url: str) -> Path:
    return write_config(
        folder,
        demo_sources(base_url),
        crawl="{download_timeout: 5s}",
        more=f"""
concepts:
  morocco: {{preset: country/MA}}
  france: {{preset: country/FR}}
  extradition:
    ar: [{{term: "تسليم المطلوبين", fuzzy: 1}}, "تسليم المجرمين", ترحيل, استرداد]
    fr: [{{term: extradition, mode: stem}}, {{term: extrader, mode: stem}}]
    en: [{{term: extradition, mode: stem}}, {{term: extradite, mode: stem}}]
watchlists:
  - {{name: mfe, rule: "morocco AND france AND extradition", notify: [log]}}
  - {{name: mfe-fr, rule: "morocco AND france AND extradition", languages: [fr]}}
channels:
{FILE_CHANNEL}
""",
    )


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory, demo_archive: Path, demo_site) -> Path:
    """The demo archive (the demo site's articles, collected by `run --once`) under this
    module's watchlists."""
    folder = tmp_path_factory.mktemp("backtest")
    shutil.copytree(demo_archive, folder, dirs_exist_ok=True)
    return _config(folder, demo_site.base_url)


def _backtest(config: Path, *args: str) -> list[dict]:
    result = newswatch("match", "--archive", "--json", "--config", str(config), *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_backtest_lists_the_articles_a_watchlist_would_have_matched(collected: Path) -> None:
    result = newswatch(
        "match", "--archive", "--since", "1d", "--watchlist", "mfe", "--config", str(collected)
    )

    assert result.returncode == 0, result.stderr
    listed = {slug(line.split()[2]) for line in result.stdout.splitlines() if "://" in line}
    assert listed == MFE
    assert "✔ mfe" in result.stdout and "mfe-fr" not in result.stdout
    assert "«Maroc»" in result.stdout  # the hits are shown
    assert "backtest: 11 stored article(s) fetched since" in result.stdout
    assert "  mfe: 5 article(s) in 4 story(ies)" in result.stdout  # the wire copy is one story


def test_backtest_json_is_the_match_shape_plus_the_article(collected: Path) -> None:
    reports = _backtest(collected, "--watchlist", "mfe")

    assert {slug(r["document"]) for r in reports} == MFE
    for report in reports:
        assert set(report) == {"document", "watchlists", "article"}
        assert set(report["article"]) == ARTICLE_KEYS
        assert report["article"]["url"] == report["document"]
        [watchlist] = report["watchlists"]
        assert set(watchlist) == {"name", "matches", "matches_total"}
        assert watchlist["name"] == "mfe"
        concepts = {hit["concept"] for hit in watchlist["matches"]}
        assert concepts == {"morocco", "france", "extradition"}


def test_backtest_applies_the_watchlist_filters_with_stored_languages(collected: Path) -> None:
    reports = _backtest(collected, "--watchlist", "mfe-fr")

    assert [slug(r["document"]) for r in reports] == ["maroc-extrade-narcotrafiquant"]
    assert reports[0]["article"]["language"] == "fr"


def test_backtest_sends_and_writes_nothing(collected: Path) -> None:
    database = collected.parent / "news.db"
    sent = (collected.parent / "alerts.jsonl").read_text(encoding="utf-8")
    before = hashlib.sha256(database.read_bytes()).hexdigest()

    assert _backtest(collected)

    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert (collected.parent / "alerts.jsonl").read_text(encoding="utf-8") == sent


def test_since_leaves_out_older_articles(collected: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(collected.read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copy(collected.parent / "news.db", tmp_path / "news.db")
    change(
        config,
        "UPDATE articles SET fetched_at = '2020-01-01T00:00:00Z' WHERE url LIKE ?",
        ("%maroc-extrade-narcotrafiquant%",),
    )

    recent = _backtest(config, "--since", "7d", "--watchlist", "mfe")
    everything = _backtest(config, "--watchlist", "mfe")

    assert {slug(r["document"]) for r in recent} == MFE - {"maroc-extrade-narcotrafiquant"}
    assert {slug(r["document"]) for r in everything} == MFE


def test_backtest_without_a_database_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database: missing.db\n", encoding="utf-8")

    result = newswatch("match", "--archive", "--config", str(config))

    assert result.returncode == 1
    assert "missing.db: no database yet" in result.stderr
    assert not (tmp_path / "missing.db").exists()
