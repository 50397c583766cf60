"""The store seam: the few calls the store modules make on a database, for both engines.

SQLite stays a `sqlite_utils.Database`, exactly as before. PostgreSQL (the cluster mode) is a
`PgDatabase`, which answers the same calls (`execute`, `query`, `atomic`, and `db[table]`'s
`insert`, `insert_all`, `upsert`, `get`, `update`) on one psycopg connection, so a store
function is written once in SQL both engines read. Statements keep SQLite's `?` and `:name`
marks; they are rewritten to psycopg's once per statement text. Where the engines' SQL really
differs (aggregates, list parameters, full-text), a store module asks `dialect(db)`.

psycopg is imported only when a PostgreSQL URL is opened: the SQLite mode never needs it.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sqlite_utils

if TYPE_CHECKING:
    import psycopg

SQLITE, POSTGRESQL = "sqlite", "postgresql"

# seconds a connection attempt may take: an unreachable server must not stall the daemon long
CONNECT_TIMEOUT = 5


def is_postgres_url(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


def dialect(db: Any) -> str:
    return POSTGRESQL if isinstance(db, PgDatabase) else SQLITE


# a quoted literal or identifier (kept as is), a `?`, a `:name` (not `::type`), or a `%`
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|(?<!:):([A-Za-z_]\w*)|%")


@lru_cache(maxsize=1024)
def postgres_sql(sql: str) -> str:
    """A statement written with SQLite's parameter marks, in psycopg's."""

    def mark(found: re.Match[str]) -> str:
        token = found.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if found.group(1):
            return f"%({found.group(1)})s"
        return token

    return _TOKENS.sub(mark, sql)


class DatabaseError(Exception):
    """PostgreSQL could not be reached or answered an error the caller cannot act on."""


def database_errors() -> tuple[type[Exception], ...]:
    """What a database call may raise on either engine, for the few places that report it and
    carry on (a daemon job, the CLI); psycopg's errors only once it was loaded, as the SQLite
    mode never imports it."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, DatabaseError, *((psycopg.Error,) if psycopg else ()))


class PgDatabase:
    """One autocommit psycopg connection; `atomic()` opens a transaction (a savepoint when
    nested). A connection lost outside a transaction (a restart of PostgreSQL) is opened again
    at the next call; inside a transaction the error reaches the caller, whose transaction
    rolled back as a whole, so nothing is half-written."""

    def __init__(self, url: str, *, application_name: str = "newswatch") -> None:
        self.url = url
        self.application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None
        self._depth = 0

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> psycopg.Connection[Any]:
        """One attempt, never a wait: the daemon's event loop calls this, and while it slept
        here a PostgreSQL shutting down would wait in turn for this process to read what its
        other connections were sent. Callers report the error and try again later."""
        import psycopg

        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                application_name=self.application_name,
                connect_timeout=CONNECT_TIMEOUT,
            )
        except psycopg.OperationalError as error:
            raise DatabaseError(f"cannot connect to PostgreSQL: {error}") from None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        return self._run(lambda conn: conn.execute(postgres_sql(sql), params))

    def query(
        self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        from psycopg.rows import dict_row

        def run(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute(postgres_sql(sql), params)
                return cursor.fetchall() if cursor.description else []

        yield from self._run(run)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        def run(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(postgres_sql(sql), list(rows))

        self._run(run)

    def _run(self, work: Any) -> Any:
        """Outside a transaction, a connection lost before the statement ran is opened again
        and the statement run once more; within one, the caller's transaction is lost anyway."""
        import psycopg

        try:
            return work(self.conn)
        except psycopg.OperationalError:
            if self._depth or not (self._conn is None or self._conn.closed or self._conn.broken):
                raise
            return work(self.conn)

    @contextmanager
    def atomic(self) -> Iterator[PgDatabase]:
        with self.conn.transaction():
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self, name)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PgTable:
    """The part of sqlite-utils' `Table` the store modules use, for one PostgreSQL table."""

    def __init__(self, db: PgDatabase, name: str) -> None:
        self.db = db
        self.name = name
        self.last_pk: Any = None

    def _insert_sql(self, columns: list[str], conflict: str, returning: bool) -> str:
        names = ", ".join(_quoted(column) for column in columns)
        marks = ", ".join(["%s"] * len(columns))
        tail = " RETURNING *" if returning else ""
        return f"INSERT INTO {_quoted(self.name)} ({names}) VALUES ({marks}){conflict}{tail}"

    def insert(
        self, row: dict[str, Any], *, alter: bool = False, ignore: bool = False, pk: Any = None
    ) -> PgTable:
        conflict = " ON CONFLICT DO NOTHING" if ignore else ""
        columns = list(row)
        sql = self._insert_sql(columns, conflict, returning=True)

        def run(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(sql, [row[column] for column in columns]).fetchone()

        stored = self.db._run(run)
        self.last_pk = stored[0] if stored else None
        return self

    def insert_all(
        self,
        rows: Iterable[dict[str, Any]],
        *,
        alter: bool = False,
        ignore: bool = False,
        pk: Any = None,
    ) -> PgTable:
        rows = list(rows)
        if not rows:
            return self
        columns = list(rows[0])
        conflict = " ON CONFLICT DO NOTHING" if ignore else ""
        sql = self._insert_sql(columns, conflict, returning=False)

        def run(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cursor:
                cursor.executemany(sql, [[row[column] for column in columns] for row in rows])

        self.db._run(run)
        return self

    def upsert(self, row: dict[str, Any], *, pk: str | Sequence[str], alter: bool = False) -> Any:
        keys = [pk] if isinstance(pk, str) else list(pk)
        columns = list(row)
        updates = [column for column in columns if column not in keys]
        action = (
            "DO UPDATE SET " + ", ".join(f"{_quoted(c)} = excluded.{_quoted(c)}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        conflict = f" ON CONFLICT ({', '.join(_quoted(k) for k in keys)}) {action}"
        sql = self._insert_sql(columns, conflict, returning=False)
        self.db._run(lambda conn: conn.execute(sql, [row[column] for column in columns]))
        return self

    def get(self, key: Any) -> dict[str, Any]:
        rows = list(
            self.db.query(f"SELECT * FROM {_quoted(self.name)} WHERE {self._pk()} = ?", [key])
        )
        if not rows:
            raise sqlite_utils.db.NotFoundError(f"{self.name}: no row {key!r}")
        return rows[0]

    def update(self, key: Any, changes: dict[str, Any], *, alter: bool = False) -> PgTable:
        assignments = ", ".join(f"{_quoted(column)} = ?" for column in changes)
        self.db.execute(
            f"UPDATE {_quoted(self.name)} SET {assignments} WHERE {self._pk()} = ?",
            [*changes.values(), key],
        )
        return self

    @property
    def columns_dict(self) -> dict[str, Any]:
        rows = self.db.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [self.name],
        )
        return {row["column_name"]: row["data_type"] for row in rows}

    def _pk(self) -> str:
        rows = list(
            self.db.query(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = ?::regclass AND i.indisprimary",
                [self.name],
            )
        )
        if len(rows) != 1:
            raise DatabaseError(f"{self.name}: get/update need a one-column primary key")
        return _quoted(rows[0]["attname"])


Database = sqlite_utils.Database | PgDatabase
