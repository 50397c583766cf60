"""The alerts library's tables and their migrations, oldest first: `alerts` (the outbox),
`digests` (each digest channel's last run) and `health_alerts` (problems already announced).

The library shares its host's database file but keeps its own schema version, a row in
`schema_versions` (`part` = "alerts"): the host's `PRAGMA user_version` stays the host's, and the
two sets of migrations move forward independently. `article_id` in the outbox is the host's
reference to its article; the library knows nothing of the host's tables, so it declares no
foreign key to them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from alerts.database import Database, PgDatabase

PART = "alerts"
VERSIONS = "schema_versions"


class SchemaError(Exception):
    """The outbox tables were made by a newer alerts library: this one cannot use them."""


def _outbox(db: sqlite_utils.Database) -> None:
    """One row per (watchlist, story, channel), written before any send is tried."""
    db["alerts"].create(
        {
            "id": str,
            "watchlist": str,
            "channel": str,
            "story_id": str,
            "article_id": int,
            "status": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
            "payload": str,
        },
        pk="id",
        not_null={"watchlist", "channel", "story_id", "status", "created_at", "payload"},
        defaults={"attempts": 0},
    )
    db["alerts"].create_index(["watchlist", "story_id", "channel"], unique=True)
    db["alerts"].create_index(["status", "next_attempt_at"])


def _delivery_state(db: sqlite_utils.Database) -> None:
    """Outbox rows that are not one watchlist hit (digests, overflow summaries, health notices,
    test messages) have no watchlist or story; `bundle_id` names the digest or summary an alert
    was folded into. `digests` keeps each digest channel's last run, so one missed while the
    daemon was down is sent at the next start; `health_alerts` the problems already announced."""
    db["alerts"].add_column("kind", str, not_null_default="alert")
    db["alerts"].add_column("bundle_id", str)
    db["alerts"].transform(not_null={"watchlist": False, "story_id": False})
    db["alerts"].create_index(["channel", "status", "sent_at"])
    db["digests"].create({"channel": str, "last_run_at": str}, pk="channel")
    db["health_alerts"].create(
        {"subject": str, "problem": str, "since": str, "notified_at": str}, pk="subject"
    )


def _update_notices(db: sqlite_utils.Database) -> None:
    """Story update notices: `notice` 0 is a watchlist's alert on a story, 1, 2, … its update
    notices, so the outbox's unique key gains `notice`."""
    db["alerts"].add_column("notice", int, not_null_default=0)
    db.execute("DROP INDEX IF EXISTS idx_alerts_watchlist_story_id_channel")
    db["alerts"].create_index(["watchlist", "story_id", "channel", "notice"], unique=True)


def _reading_order(db: sqlite_utils.Database) -> None:
    """Pages of the outbox, newest first, and a story's messages read by index: without them
    each page of `newswatch alerts` or the web app sorted or scanned the whole outbox."""
    db["alerts"].create_index(["created_at"])
    db["alerts"].create_index(["story_id"])


def _event_keys(db: sqlite_utils.Database) -> None:
    """Alerts keyed on an event (the stories reporting one happening) rather than one story:
    `event_id` names it, NULL for alerts keyed on their story (a watchlist with `group: story`,
    and every row queued before events existed). Its index finds an event's alerts and notices
    when a new report of it arrives. The unique key becomes what the alert is keyed on: kept on
    the story, it refused an event's alert led by a story the watchlist had alerted on before
    it switched from `group: story` to `group: event`."""
    db["alerts"].add_column("event_id", str)
    db["alerts"].create_index(["event_id"])
    db.execute("DROP INDEX IF EXISTS idx_alerts_watchlist_story_id_channel_notice")
    db.execute(
        "CREATE UNIQUE INDEX idx_alerts_key ON alerts"
        " (watchlist, coalesce(event_id, story_id), channel, notice)"
    )


def _shared_delivery(db: sqlite_utils.Database) -> None:
    """Several senders on one outbox (the cluster mode), and one order on both engines.
    `seq` numbers the rows in the order they were queued: ordering by `rowid`, which only
    SQLite has, kept alerts queued in the same second in that order. `claimed_by` (host:pid)
    and `sending_until` are a sender's lease on a row it is sending: a row still `sending`
    after its lease ran out was left by a sender that died, and any sender takes it over."""
    db["alerts"].add_column("seq", int, not_null_default=0)
    db.execute("UPDATE alerts SET seq = rowid")
    db["alerts"].add_column("claimed_by", str)
    db["alerts"].add_column("sending_until", str)
    db["alerts"].create_index(["seq"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _outbox,
    _delivery_state,
    _update_notices,
    _reading_order,
    _event_keys,
    _shared_delivery,
]

SCHEMA_VERSION = len(MIGRATIONS)


def stored_version(db: Database) -> int:
    """The version the file's outbox tables are at; 0 when the library never ran on it. Reads
    only, so it works on a read-only connection."""
    if not _has_versions(db):
        return 0
    row = db.execute(f"SELECT version FROM {VERSIONS} WHERE part = ?", [PART]).fetchone()
    return int(row[0]) if row else 0


def _has_versions(db: Database) -> bool:
    if isinstance(db, PgDatabase):
        return db.execute("SELECT to_regclass(?)", [VERSIONS]).fetchone()[0] is not None
    return db[VERSIONS].exists()


def check(db: Database) -> None:
    """Refuse tables of a newer library before anything is changed: migrating the host's part
    of the file and then failing on ours would leave it half upgraded."""
    version = stored_version(db)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"the outbox tables are at version {version}, newer than this newswatch"
            f" ({SCHEMA_VERSION}); upgrade newswatch"
        )


def migrate(db: sqlite_utils.Database) -> None:
    """Create or bring forward the outbox tables, each step and its version in one transaction,
    so a crash between steps leaves a file that the next start finishes."""
    check(db)
    for number in range(stored_version(db), SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[number](db)
            _record(db, number + 1)


def adopt(db: sqlite_utils.Database, version: int) -> None:
    """Record the version of outbox tables a host created itself before the library owned them,
    so `migrate` neither recreates nor skips a step; a version already recorded stands."""
    _versions_table(db)
    db.execute(
        f"INSERT INTO {VERSIONS} (part, version) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [PART, version],
    )


def _record(db: Database, version: int) -> None:
    _versions_table(db)
    db.execute(
        f"INSERT INTO {VERSIONS} (part, version) VALUES (?, ?)"
        " ON CONFLICT (part) DO UPDATE SET version = excluded.version",
        [PART, version],
    )


def _versions_table(db: Database) -> None:
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSIONS} (part TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )


def open_outbox(path: Path | str) -> sqlite_utils.Database:
    """A database file with the outbox tables, for programs that use the library without the
    crawler (and the library's own tests); WAL, as the daemon's file, so readers never block."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    try:
        migrate(db)
    except (SchemaError, sqlite3.Error):
        conn.close()
        raise
    return db


# The same tables for PostgreSQL (the cluster mode), at the current version: a cluster starts
# at this version, and a later migration adds a step here as it does to MIGRATIONS.
POSTGRES_TABLES = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    watchlist TEXT,
    channel TEXT NOT NULL,
    story_id TEXT,
    article_id BIGINT,
    status TEXT NOT NULL,
    attempts INTEGER DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    payload TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'alert',
    bundle_id TEXT,
    notice INTEGER NOT NULL DEFAULT 0,
    event_id TEXT,
    seq BIGINT NOT NULL DEFAULT 0,
    claimed_by TEXT,
    sending_until TEXT
);
CREATE INDEX IF NOT EXISTS idx_alerts_status_next_attempt_at ON alerts (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS idx_alerts_channel_status_sent_at ON alerts (channel, status, sent_at);
CREATE INDEX IF NOT EXISTS idx_alerts_created_at ON alerts (created_at);
CREATE INDEX IF NOT EXISTS idx_alerts_story_id ON alerts (story_id);
CREATE INDEX IF NOT EXISTS idx_alerts_event_id ON alerts (event_id);
CREATE INDEX IF NOT EXISTS idx_alerts_seq ON alerts (seq);
CREATE UNIQUE INDEX IF NOT EXISTS idx_alerts_key
    ON alerts (watchlist, coalesce(event_id, story_id), channel, notice);
CREATE TABLE IF NOT EXISTS digests (channel TEXT PRIMARY KEY, last_run_at TEXT);
CREATE TABLE IF NOT EXISTS health_alerts (
    subject TEXT PRIMARY KEY, problem TEXT, since TEXT, notified_at TEXT
);
"""


def migrate_postgres(db: PgDatabase) -> None:
    """Create the outbox tables in a PostgreSQL database (the caller holds the schema lock)."""
    _versions_table(db)
    version = stored_version(db)
    if version > SCHEMA_VERSION:
        check(db)
    if version < SCHEMA_VERSION:
        with db.atomic():
            db.execute(POSTGRES_TABLES)
            _record(db, SCHEMA_VERSION)
