"""A throwaway PostgreSQL server for the tests: a new cluster in a temporary folder, on a free
loopback port, fsync off (nothing in it outlives the run). Without a server binary the
PostgreSQL tests are skipped, unless `NEWSWATCH_REQUIRE_POSTGRES=1` (CI sets it): then they
fail, never silently skip.

As root, `initdb` refuses to run: the cluster is made and run as the `postgres` user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.support import free_port

BIN_DIRS = ("/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def _bin_dir() -> Path | None:
    for folder in (os.environ.get("NEWSWATCH_PG_BIN"), *BIN_DIRS):
        if folder and (Path(folder) / "initdb").is_file():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def unavailable(reason: str) -> None:
    if os.environ.get("NEWSWATCH_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (NEWSWATCH_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"no PostgreSQL server: {reason}")


class PostgresServer:
    """One cluster; `database()` gives each test its own empty database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = _bin_dir()
        self.port = free_port()
        self.data = folder / "data"
        self.log = folder / "server.log"
        self._as_postgres = os.geteuid() == 0
        self.admin_url = f"postgresql://newswatch@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str | Path) -> None:
        argv = [str(part) for part in command]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")

    def start(self) -> None:
        assert self.bin is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.folder, "postgres")
        self._run(
            self.bin / "initdb",
            "-D",
            self.data,
            "-U",
            "newswatch",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.pg_ctl("start", "-w", "-t", "60")

    def pg_ctl(self, action: str, *extra: str | Path) -> None:
        """`start`, `stop` or `restart` the server, as an operator would. A started server
        writes to the log file, never to pg_ctl's output, which would otherwise stay open."""
        assert self.bin is not None
        if action in ("start", "restart") and "-l" not in extra:
            extra = (*extra, "-l", self.log)
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(self.bin / "pg_ctl", "-D", self.data, "-o", options, action, *extra)

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(self.folder, ignore_errors=True)

    def database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"


def new_server() -> PostgresServer:
    """A started server in a new folder of its own: pytest's temporary folders are private to
    root, where the `postgres` user cannot enter."""
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="newswatch-pg-")))
    if server.bin is None:
        unavailable("no initdb (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install 'newswatch[postgres]')")
    server.start()
    return server
