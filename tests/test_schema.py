"""Two sets of migrations in one file: the crawler's (`PRAGMA user_version`) and the alerts
library's own, for the outbox tables. A file made by any earlier newswatch comes out with the
schema of a new one and every queued alert still there; a file from a newer one is refused
untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from alerts import outbox
from alerts import schema as alerts_schema
from crawler import store

OUTBOX_TABLES = {"alerts", "digests", "health_alerts"}
# Which outbox version each crawler version held when the crawler still created those tables:
# version 1 made the outbox, 2 its delivery state, 4 its `notice` column.
OUTBOX_AT = {1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 3, 7: 3, 8: 3}


def _raw(path: Path) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))


def _old_file(path: Path, version: int) -> None:
    """A file as the newswatch of crawler schema `version` left it: its outbox tables made by
    the crawler's own steps back then, with their foreign key to `articles`, and one alert
    waiting in the outbox."""
    db = _raw(path)
    for migration in store.MIGRATIONS[:version]:
        migration(db)
    alerts_schema.MIGRATIONS[0](db)
    db["alerts"].add_foreign_key("article_id", "articles", "id")
    for migration in alerts_schema.MIGRATIONS[1 : OUTBOX_AT[version]]:
        migration(db)
    db.execute(f"PRAGMA user_version={version}")
    db["articles"].insert(
        {
            "id": 7,
            "url": "https://news.example.org/7",
            "canonical_url": "https://news.example.org/7",
            "source": "example",
            "fetched_at": "2026-11-28T10:00:00Z",
            "content_hash": "h7",
            "story_id": "st-7",
        }
    )
    db["alerts"].insert(
        {
            "id": "nw-old",
            "watchlist": "mfe",
            "channel": "hook",
            "story_id": "st-7",
            "article_id": 7,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": "2026-11-28T10:00:00Z",
            "created_at": "2026-11-28T10:00:00Z",
            "payload": '{"id": "nw-old"}',
        }
    )
    db.close()


def _shape(db: sqlite_utils.Database) -> dict[str, Any]:
    """Every table's columns and indexes as SQLite reports them (foreign keys left out: the
    outbox of an old file keeps the one it was made with)."""
    names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    shape: dict[str, Any] = {}
    for name in sorted(names):
        columns = db.execute(f'PRAGMA table_info("{name}")').fetchall()
        indexes = {
            index[1]: (index[2], db.execute(f'PRAGMA index_info("{index[1]}")').fetchall())
            for index in db.execute(f'PRAGMA index_list("{name}")').fetchall()
        }
        shape[name] = (columns, indexes)
    return shape


@pytest.mark.parametrize("version", sorted(OUTBOX_AT))
def test_a_file_of_every_older_version_upgrades_to_the_new_schema_with_its_alert_kept(
    tmp_path, version
):
    fresh = store.open_db(tmp_path / "fresh.db")
    _old_file(tmp_path / "old.db", version)

    upgraded = store.open_db(tmp_path / "old.db")

    assert _shape(upgraded) == _shape(fresh)
    assert alerts_schema.stored_version(upgraded) == alerts_schema.SCHEMA_VERSION
    (row,) = outbox.due(upgraded)
    assert (row["id"], row["kind"], row["notice"], row["article_id"]) == ("nw-old", "alert", 0, 7)
    upgraded.close()
    fresh.close()


def test_a_new_file_gets_its_outbox_from_the_alerts_library_alone(tmp_path):
    crawler_only = _raw(tmp_path / "crawler.db")
    for migration in store.MIGRATIONS:
        migration(crawler_only)
    assert not OUTBOX_TABLES & set(crawler_only.table_names())

    library = alerts_schema.open_outbox(tmp_path / "outbox.db")
    assert set(library.table_names()) == OUTBOX_TABLES | {alerts_schema.VERSIONS}
    assert library["alerts"].foreign_keys == []

    db = store.open_db(tmp_path / "news.db")
    assert set(db.table_names()) >= OUTBOX_TABLES
    assert db["alerts"].foreign_keys == []
    assert alerts_schema.stored_version(db) == alerts_schema.SCHEMA_VERSION


def test_a_command_that_only_reads_brings_an_old_outbox_forward(tmp_path):
    path = tmp_path / "news.db"
    db = _raw(path)
    for migration in store.MIGRATIONS:
        migration(db)
    db.execute(f"PRAGMA user_version={store.SCHEMA_VERSION}")
    for migration in alerts_schema.MIGRATIONS[:2]:
        migration(db)
    alerts_schema.adopt(db, 2)
    db.close()

    read = store.open_for_reading(path)

    assert "notice" in read["alerts"].columns_dict
    assert alerts_schema.stored_version(read) == alerts_schema.SCHEMA_VERSION


@pytest.mark.parametrize("opener", [store.open_db, store.open_for_reading])
def test_outbox_tables_of_a_newer_newswatch_are_refused_and_the_file_left_as_it_is(
    tmp_path, opener
):
    path = tmp_path / "news.db"
    store.open_db(path).close()
    db = _raw(path)
    db.execute("UPDATE schema_versions SET version = 99 WHERE part = 'alerts'")
    db.execute(f"PRAGMA user_version={store.SCHEMA_VERSION - 1}")
    db.close()

    with pytest.raises(store.StoreError, match=r"outbox tables are at version 99.*upgrade"):
        opener(path)
    with pytest.raises(alerts_schema.SchemaError, match="upgrade newswatch"):
        alerts_schema.open_outbox(path)

    db = _raw(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION - 1
    assert alerts_schema.stored_version(db) == 99
