"""Retention and the database commands, end to end on the loopback demo site: old articles are
pruned to tombstones that are never fetched or alerted again, the file shrinks, and a backup
taken while the daemon writes is a sound copy."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler import retention, store
from crawler.config import StorageConfig
from crawler.demo.site import DemoSite
from tests.support import (
    FILE_CHANNEL,
    MATCHING,
    change,
    database_at,
    demo_config,
    newswatch,
    publish,
    rows,
    run_once,
    schema_version_with,
    start_daemon,
    stop_daemon,
    value,
    wait_until,
)

LONG_AGO = "2025-01-01T00:00:00Z"


def _config(tmp_path: Path, site: DemoSite, *, interval: str = "10m") -> Path:
    crawl = "{download_timeout: 5s, store_html: true}"
    return demo_config(
        tmp_path, site.base_url, FILE_CHANNEL, notify="log", crawl=crawl, interval=interval
    )


def _age_everything(config: Path) -> None:
    """What a year of running does to the demo articles: fetched long before the window."""
    change(config, "UPDATE articles SET fetched_at = ?", (LONG_AGO,))


def _sent_alerts(config: Path) -> int:
    path = config.parent / "alerts.jsonl"
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def test_pruned_articles_are_never_fetched_or_alerted_again_and_the_file_shrinks(tmp_path, site):
    config = _config(tmp_path, site)
    run_once(config)
    stored = value(config, "SELECT count(*) FROM articles")
    assert _sent_alerts(config) == len(MATCHING)
    _age_everything(config)
    database = config.parent / "news.db"
    size_before = database.stat().st_size

    pruned = newswatch("db", "prune", "--config", str(config))

    assert pruned.returncode == 0, pruned.stderr
    assert f"{stored} article text(s)" in pruned.stdout
    assert database.stat().st_size < size_before
    assert value(config, "SELECT count(*) FROM articles WHERE text IS NULL AND html IS NULL") == (
        stored
    )
    for table in ("articles_fts", "article_signatures", "matches"):
        assert value(config, f"SELECT count(*) FROM {table}") == 0, table
    assert value(config, "SELECT count(DISTINCT article_id) FROM seen_urls") == stored

    # The feed changes (one new article), so every pruned article is listed again.
    publish(site, "lyon-weather", "Rain expected in Lyon", ["Rain is expected all week."] * 3)
    site.reset_log()
    run_once(config)

    fetched = [r.path for r in site.requests if "/articles/" in r.path]
    assert fetched == ["/articles/lyon-weather.html"]
    assert _sent_alerts(config) == len(MATCHING)
    assert value(config, "SELECT count(*) FROM articles") == stored + 1


def test_a_second_prune_finds_nothing_and_recent_articles_are_kept(archive):
    config = archive
    change(config, "UPDATE articles SET fetched_at = ? WHERE id <= 3", (LONG_AGO,))

    first = newswatch("db", "prune", "--config", str(config))
    again = newswatch("db", "prune", "--config", str(config))

    assert "3 article text(s)" in first.stdout, first.stdout + first.stderr
    assert "article text" not in again.stdout
    kept = value(config, "SELECT count(*) FROM articles WHERE pruned_at IS NULL AND text != ''")
    assert kept == value(config, "SELECT count(*) - 3 FROM articles")
    assert value(config, "SELECT count(*) FROM articles_fts") == kept


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = ("articles", "articles_fts", "seen_urls", "alerts", "article_signatures")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_daemon_prunes_at_start_and_a_backup_taken_while_it_writes_is_sound(tmp_path, site):
    config = _config(tmp_path, site, interval="1s")
    run_once(config)
    # run --once runs retention too when a day has passed (here: never run), for cron users
    assert len(rows(config, "SELECT last_run_at FROM maintenance")) == 1
    _age_everything(config)
    change(config, "UPDATE maintenance SET last_run_at = ?", (LONG_AGO,))
    daemon = start_daemon(config)
    try:
        # A day has passed since the last retention run: it runs at start.
        wait_until(lambda: value(config, "SELECT last_run_at FROM maintenance") != LONG_AGO)
        polled = value(config, "SELECT max(last_polled_at) FROM sources")
        # The sources are polled every second: the daemon is writing while the copy is made.
        wait_until(lambda: value(config, "SELECT max(last_polled_at) FROM sources") != polled)
        backup = tmp_path / "copy.db"
        result = newswatch("db", "backup", str(backup), "--config", str(config))
        again = newswatch("db", "backup", str(backup), "--config", str(config))
    finally:
        code, _, stderr = stop_daemon(daemon)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "retention:" in stderr
    assert result.returncode == 0, result.stderr
    assert "integrity ok" in result.stdout
    assert again.returncode == 2 and "--force" in again.stderr
    with sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert _counts(backup) == _counts(config.parent / "news.db")
    assert _counts(backup)["articles_fts"] == 0
    assert value(config, "SELECT count(*) FROM articles WHERE pruned_at IS NULL") == 0


def test_backup_refuses_the_database_itself_and_reports_an_unwritable_target(tmp_path, archive):
    config = archive

    itself = newswatch("db", "backup", str(config.parent / "news.db"), "--config", str(config))
    nowhere = newswatch("db", "backup", str(tmp_path / "missing" / "b.db"), "--config", str(config))

    assert itself.returncode == 2 and "database itself" in itself.stderr
    assert nowhere.returncode == 1
    assert nowhere.stderr.count("\n") == 1 and "Traceback" not in nowhere.stderr
    assert "cannot open or create" in nowhere.stderr


def test_stats_reports_rows_bytes_and_the_oldest_article(archive):
    config = archive
    _age_everything(config)

    text = newswatch("db", "stats", "--config", str(config))
    as_json = newswatch("db", "stats", "--json", "--config", str(config))

    assert text.returncode == 0, text.stderr
    assert f"oldest {LONG_AGO}" in text.stdout
    assert "auto-vacuum incremental" in text.stdout

    stats = json.loads(as_json.stdout)
    tables = {t["name"]: t for t in stats["tables"]}
    assert tables["articles"]["rows"] == value(config, "SELECT count(*) FROM articles")
    assert tables["articles"]["bytes"] > 0 and tables["articles_fts"]["bytes"] > 0
    assert "articles_fts_data" not in tables
    assert stats["oldest_article"] == LONG_AGO


def test_storage_forever_keeps_everything(archive):
    config = archive
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + "storage: {keep_articles: forever, keep_html: 0, keep_versions: forever}\n",
        encoding="utf-8",
    )
    _age_everything(config)

    result = newswatch("db", "prune", "--config", str(config))

    assert result.returncode == 0, result.stderr
    assert value(config, "SELECT count(*) FROM articles WHERE pruned_at IS NOT NULL") == 0
    assert value(config, "SELECT count(*) FROM articles WHERE html IS NULL") == 0


def test_a_file_made_before_retention_is_migrated_then_compacted_once(tmp_path):
    """No incremental auto-vacuum in an older file: the first retention run rewrites it (it is
    small), after which pruned space goes back to the file system."""
    path = tmp_path / "news.db"
    before = schema_version_with(lambda db: "maintenance" in db.table_names()) - 1
    db = database_at(path, before)
    with db.atomic():
        for number in range(200):
            url = f"https://example.org/{number}"
            article_id = store.insert_article(
                db,
                {
                    "url": url,
                    "canonical_url": url,
                    "source": "example",
                    "title": f"Story {number}",
                    "text": f"Story {number} " * 400,
                    "fetched_at": LONG_AGO,
                    "content_hash": str(number),
                    "story_id": f"st-{number}",
                },
            )
            store.remember_urls(db, article_id, {url})
    db.close()
    size = path.stat().st_size

    db = store.open_db(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    done = retention.prune(db, StorageConfig())
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    assert retention.next_run(db) > datetime.now(UTC) + timedelta(hours=23)
    db.close()

    assert done["article text(s)"] == 200
    assert path.stat().st_size < size / 4


def test_failed_fetches_are_forgotten_with_the_articles_of_their_time(tmp_path):
    db = store.open_db(tmp_path / "news.db")
    for url in ("https://example.org/old", "https://example.org/recent"):
        store.record_fetch_failure(
            db, url, "HTTP 404", permanent=True, listed_updated_at=None, retry_at=lambda _: None
        )
    db.execute("UPDATE fetch_failures SET failed_at = ? WHERE url LIKE '%old'", [LONG_AGO])

    done = retention.prune(db, StorageConfig(keep_articles="30d"))

    assert done["failed fetch(es)"] == 1
    assert [row["url"] for row in db["fetch_failures"].rows] == ["https://example.org/recent"]
    db.close()
