"""The cluster mode's own rows (PostgreSQL only): when each source is next due, the fencing
token that makes a poll's commit conditional on no later poll having started, the config hash
every worker must share, and procrastinate's queue tables."""

from __future__ import annotations

from alerts.database import PgDatabase
from crawler.store.database import one_row
from crawler.store.postgres import schema_lock


def install_queue(db: PgDatabase) -> None:
    """procrastinate's tables and functions, created by the first worker to start. Its schema
    text carries plpgsql with literal `%`: it goes to the connection as it is, unparameterised."""
    from procrastinate.schema import SchemaManager

    with schema_lock(db):
        exists = db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
        if exists is None:
            with db.atomic():
                db.conn.execute(SchemaManager.get_schema())


def claim_config(db: PgDatabase, config_hash: str, now: str, live_since: str) -> str | None:
    """Store this worker's config hash as the cluster's, unless another config is in use:
    returns that other hash then. A config is in use while a worker running it beats
    (procrastinate's heartbeats) or was stored since `live_since` (a worker starting now has
    not registered yet)."""
    with db.atomic():
        db.execute(
            "INSERT INTO cluster_config (id, config_hash, stored_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [config_hash, now],
        )
        row = one_row(
            db, "SELECT config_hash, stored_at FROM cluster_config WHERE id = 1 FOR UPDATE", []
        )
        assert row is not None
        if row["config_hash"] == config_hash:
            return None
        live = db.execute(
            "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > ?::timestamptz",
            [live_since],
        ).fetchone()[0]
        if live or row["stored_at"] > live_since:
            return str(row["config_hash"])
        db.execute(
            "UPDATE cluster_config SET config_hash = ?, stored_at = ? WHERE id = 1",
            [config_hash, now],
        )
        return None


def seed_sources(db: PgDatabase, first_polls: dict[str, str]) -> None:
    """Every configured source gets its first due time; a source already scheduled keeps its
    time (another worker set it, or an earlier run did)."""
    db.executemany(
        "INSERT INTO source_schedule (name, next_poll_at) VALUES (?, ?)"
        " ON CONFLICT (name) DO NOTHING",
        list(first_polls.items()),
    )


def due_sources(db: PgDatabase, names: list[str], now: str) -> list[str]:
    """Configured sources whose time has come and whose poll is not waiting in the queue yet,
    the longest waiting first. Left to procrastinate's queueing lock, every waiting source
    would cost each tick a refused insert (and an ERROR line in PostgreSQL's log): with
    sources due faster than the workers poll them, most of them at every tick."""
    rows = db.execute(
        "SELECT name FROM source_schedule s WHERE name = ANY(?) AND next_poll_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j"
        " WHERE j.queueing_lock = s.name AND j.status = 'todo')"
        " ORDER BY next_poll_at, name",
        [names, now],
    ).fetchall()
    return [name for (name,) in rows]


def take_fence(db: PgDatabase, name: str, due_by: str | None) -> int | None:
    """A new fencing token for a poll of `name` starting now, if the source is due by `due_by`
    (None: whenever); None when it is not, because a poll since it was queued covered it."""
    row = db.execute(
        "UPDATE source_schedule SET fence = fence + 1"
        " WHERE name = ? AND (?::text IS NULL OR next_poll_at <= ?)"
        " RETURNING fence",
        [name, due_by, due_by],
    ).fetchone()
    return int(row[0]) if row else None


def fence_holds(db: PgDatabase, name: str, token: int) -> bool:
    """Inside the caller's transaction: whether no poll of `name` started after the one holding
    `token`. The row stays share-locked until the commit, so a poll starting meanwhile waits
    for the commit before it takes its token."""
    row = db.execute(
        "SELECT fence FROM source_schedule WHERE name = ? FOR SHARE", [name]
    ).fetchone()
    return row is not None and int(row[0]) == token


def schedule_poll(db: PgDatabase, name: str, at: str) -> None:
    db.execute("UPDATE source_schedule SET next_poll_at = ? WHERE name = ?", [at, name])


def auto_interval(db: PgDatabase, name: str) -> float | None:
    """The `interval: auto` interval the latest retune gave the source (None before one)."""
    row = db.execute("SELECT auto_interval FROM source_schedule WHERE name = ?", [name]).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def retune(db: PgDatabase, name: str, seconds: float, due_by: str) -> None:
    """A new automatic interval; a source now due sooner than scheduled is brought forward."""
    db.execute(
        "UPDATE source_schedule SET auto_interval = ?, next_poll_at = LEAST(next_poll_at, ?)"
        " WHERE name = ?",
        [seconds, due_by, name],
    )
