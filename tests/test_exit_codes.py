"""Every command keeps one rule a script can rely on: a usage error (bad option or value, unknown
name, invalid config) exits 2 with its message on stderr, before anything is opened or written;
a failure at run time exits 1 with its message on stderr; stdout only ever holds the answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import newswatch

CONFIG = """
database: news.db
concepts: {m: {en: [Morocco]}}
watchlists: [{name: w, rule: m}]
"""
HOSTILE = "\x1b]0;pwned\x07\u202e\r"
RAW = ("\x1b", "\x07", "\u202e", "\r")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    (tmp_path / "article.txt").write_text("Morocco\nRabat said so.\n", encoding="utf-8")
    (tmp_path / "taken.db").write_bytes(b"an earlier backup")
    return path


USAGE_ERRORS = [
    ((), "the following arguments are required: COMMAND"),
    (("bogus",), "invalid choice: 'bogus'"),
    (("stories", "--bogus", "--config", "{config}"), "unrecognized arguments: --bogus"),
    (("run", "--config", "{config}", "--once", "extra"), "unrecognized arguments: extra"),
    (("match", "--config", "{config}"), "give FILE_OR_URL… or --archive"),
    (("match", "--config", "{config}", "--since", "7d", "{dir}/article.txt"), "add --archive"),
    (("match", "--config", "{config}", "--watchlist", "x", "{dir}/article.txt"), "watchlist x"),
    (("match", "--config", "{config}", "--archive", "--since", "soon"), "'soon' is not a dur"),
    (("stories", "--config", "{config}", "--since", "soon"), "'soon' is not a duration"),
    (("stories", "--config", "{config}", "--since", "99999999d"), "reaches back before year 1"),
    (("events", "--config", "{config}", "--since", "1dd"), "'1dd' is not a duration"),
    (("alerts", "--config", "{config}", "retry"), "give message IDs or --all-failed"),
    (("alerts", "--config", "{config}", "--limit", "-1"), "'-1': give 1 or more"),
    (("test-channel", "--config", "{config}", "nope"), "unknown channel 'nope'"),
    (("sources", "--config", "{config}", "--json", "x"), "unrecognized arguments: x"),
    (("add", "--config", "{config}"), "the following arguments are required: URL"),
    (("db",), "the following arguments are required: ACTION"),
    (("db", "backup", "--config", "{config}", "{dir}/taken.db"), "exists; add --force"),
    (("demo", "--keep"), "expected one argument"),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS, ids=[m for _, m in USAGE_ERRORS])
def test_a_usage_error_exits_2_on_stderr_and_opens_nothing(config, args, message):
    argv = [a.format(config=config, dir=config.parent) for a in args]

    result = newswatch(*argv)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "newswatch: error: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (config.parent / "news.db").exists()


def test_backing_up_onto_the_database_itself_is_a_usage_error(config):
    database = config.parent / "news.db"
    database.write_bytes(b"")

    result = newswatch("db", "backup", "--force", "--config", str(config), str(database))

    assert result.returncode == 2 and result.stdout == ""
    assert "newswatch: error: " in result.stderr and "is the database itself" in result.stderr


@pytest.mark.parametrize("command", ["check", "run", "stories", "match"])
def test_an_invalid_config_exits_2_naming_the_yaml_path(tmp_path, command):
    config = tmp_path / "config.yaml"
    config.write_text("crawl: {user_agnet: bot}\n", encoding="utf-8")

    document = [str(tmp_path / "a.txt")] if command == "match" else []

    result = newswatch(command, "--config", str(config), *document)

    assert result.returncode == 2 and result.stdout == ""
    assert "crawl.user_agnet" in result.stderr and "Traceback" not in result.stderr


def test_what_the_user_typed_is_echoed_inert_in_a_usage_error(config):
    unknown = newswatch("match", "--config", str(config), "--watchlist", HOSTILE, "x.txt")
    stray = newswatch("stories", "--config", str(config), HOSTILE)

    for result in (unknown, stray):
        assert result.returncode == 2 and result.stdout == ""
        assert "\\x1b]0;pwned\\x07" in result.stderr
        assert not any(raw in result.stderr for raw in RAW)


def test_a_runtime_failure_exits_1_with_its_message_on_stderr(config):
    unreadable = newswatch("match", "--config", str(config), str(config.parent / "gone.txt"))
    unknown_id = newswatch("alerts", "--config", str(config), "retry", "no-such-id")

    assert unreadable.returncode == 1 and unreadable.stdout == ""
    assert "gone.txt: cannot read" in unreadable.stderr
    assert unknown_id.returncode == 1 and unknown_id.stdout == ""
    assert "no failed message with id no-such-id" in unknown_id.stderr
