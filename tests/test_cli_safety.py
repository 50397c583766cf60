"""The reading commands on a database they cannot write (read-only file, folder or medium) and
on stored strings that try to drive the terminal: they read, or fail in one clear line."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import MATCHING, change, newswatch, rows

HOSTILE = "\x1b]0;pwned\x07Morocco \u202eextradition\x9b2J\r"
RAW = ("\x1b", "\x07", "\u202e", "\x9b", "\r")
READING = (
    ("stories",),
    ("events",),
    ("alerts",),
    ("sources",),
    ("db", "stats"),
    ("match", "--archive"),
)
# A private read-only bind mount of the folder: a read-only medium, which binds root too.
READ_ONLY_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


@contextmanager
def read_only(config: Path, what: str) -> Iterator[Callable[..., subprocess.CompletedProcess]]:
    """Runs the CLI with the database file, or its whole folder, read-only. Root writes through
    permission bits: for root the file is made immutable and the folder a read-only mount."""
    database, root = config.parent / "news.db", os.geteuid() == 0
    prefix: list[str] = []
    if what == "file" and root:
        subprocess.run(["chattr", "+i", str(database)], check=True)
    elif what == "file":
        database.chmod(0o444)
    elif root:
        prefix = ["unshare", "-m", "sh", "-c", READ_ONLY_MOUNT, str(config.parent)]
    else:
        config.parent.chmod(0o555)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return newswatch(*args, prefix=prefix)

    try:
        yield run
    finally:
        if what == "file" and root:
            subprocess.run(["chattr", "-i", str(database)], check=True)
        config.parent.chmod(0o755)
        database.chmod(0o644)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_reading_commands_work_on_a_read_only_database(archive, what):
    with read_only(archive, what) as run:
        results = {command: run(*command, "--config", str(archive)) for command in READING}
    for command, result in results.items():
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr, command
    assert "Le Maroc extrade vers la France" in results[("stories",)].stdout
    assert "Le Maroc extrade vers la France" in results[("events",)].stdout
    assert f"{len(MATCHING)} sent" in results[("alerts",)].stdout
    assert "articles_fts" in results[("db", "stats")].stdout


@pytest.mark.parametrize(
    ("what", "refused"),
    [
        # the file itself: SQLite refuses the write, newswatch says what to do
        ("file", "the database: cannot write here (attempt to write a readonly database)"),
        # the folder: the daemon's lock file beside the database cannot be made
        ("folder", "news.db.lock: cannot write here ("),
    ],
    ids=["file", "folder"],
)
def test_the_daemon_says_it_cannot_write_never_that_a_healthy_file_is_not_a_database(
    archive, what, refused
):
    with read_only(archive, what) as run:
        result = run("run", "--once", "--config", str(archive))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "not a newswatch database" not in result.stderr
    assert refused in result.stderr


def test_a_file_that_is_not_a_database_is_called_so_in_one_line(tmp_path):
    (tmp_path / "news.db").write_bytes(b"this is a spreadsheet, not SQLite" * 200)
    config = tmp_path / "config.yaml"
    config.write_text("database: news.db\n", encoding="utf-8")

    for command in (("stories",), ("alerts",), ("sources",), ("db", "stats")):
        result = newswatch(*command, "--config", str(config))
        assert result.returncode == 1, command
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, command
        assert "not a newswatch database" in result.stderr, command


def _poison(config: Path) -> None:
    """Titles, an outbox payload and a source error as a hostile site would leave them."""
    change(config, "UPDATE articles SET title = ?", (HOSTILE,))
    change(config, "UPDATE sources SET last_error = ?", (HOSTILE,))
    for alert in rows(config, "SELECT id, payload FROM alerts"):
        message = json.loads(alert["payload"])
        message["article"]["title"] = HOSTILE
        change(
            config, "UPDATE alerts SET payload = ? WHERE id = ?", (json.dumps(message), alert["id"])
        )


@pytest.mark.parametrize("command", [("stories",), ("events",), ("sources",), ("alerts",)])
def test_control_characters_never_reach_the_terminal(archive, command):
    _poison(archive)

    result = newswatch(*command, "--config", str(archive))

    assert result.returncode == 0, result.stderr
    assert not [c for c in RAW if c in result.stdout]
    assert "\\x1b]0;pwned\\x07" in result.stdout
    assert "\\u202e" in result.stdout


def test_json_output_keeps_stored_strings_exact(archive):
    _poison(archive)

    for command in ("stories", "events"):
        result = newswatch(command, "--json", "--config", str(archive))

        assert {json.loads(line)["title"] for line in result.stdout.splitlines()} == {HOSTILE}
