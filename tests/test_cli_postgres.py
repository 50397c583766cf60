"""The command line against a PostgreSQL database (the cluster mode): the commands that read
the store answer from it, the commands that work on the SQLite file refuse with one line naming
PostgreSQL's own tool, and the database password shows nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.times import timestamp
from crawler import store
from tests.support import CONCEPTS, newswatch

PASSWORD = "s3cret-pw"
MATCHING_URL = "https://example.org/maroc-extradition"


def _with_password(url: str) -> str:
    """The test server trusts loopback and never asks for it: the password is only carried."""
    return url.replace("postgresql://newswatch@", f"postgresql://newswatch:{PASSWORD}@")


def _fill(url: str) -> None:
    """What workers leave behind: two sources polled, two articles, one story in an event."""
    db = store.open_db(url)
    try:
        now = timestamp()
        for number, (link, title, text, language) in enumerate(
            [
                (
                    MATCHING_URL,
                    "Le Maroc extrade un trafiquant vers la France",
                    "Rabat a accepté l'extradition vers Paris d'un ressortissant français.",
                    "fr",
                ),
                (
                    "https://example.org/weather",
                    "Weather in Rabat",
                    "Sunny all week, 100% dry; no rain before :monday.",
                    "en",
                ),
            ]
        ):
            with db.atomic():
                article_id = store.insert_article(
                    db,
                    {
                        "url": link,
                        "canonical_url": link,
                        "source": "wire",
                        "title": title,
                        "text": text,
                        "language": language,
                        "fetched_at": now,
                        "content_hash": f"hash-{number}",
                        "story_id": f"st-{number}",
                    },
                )
                store.remember_urls(db, article_id, {link})
                store.add_to_event(db, f"st-{number}", "st-0", language, now, "p", [], None)
        store.record_poll(db, "wire", "http://127.0.0.1:9/feed.xml", "feed")
        store.record_poll(db, "quiet", "http://127.0.0.1:9/q.xml", "feed", error="HTTP 503")
    finally:
        db.close()


@pytest.fixture
def cluster_config(tmp_path: Path, pg_url: str, hook) -> Path:
    _fill(pg_url)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"database: {_with_password(pg_url)}\n"
        "sources:\n"
        "  - {name: wire, url: 'http://127.0.0.1:9/feed.xml', kind: feed}\n"
        "  - {name: quiet, url: 'http://127.0.0.1:9/q.xml', kind: feed}\n"
        f"{CONCEPTS}\nwatchlists:\n"
        "  - {name: mfe, rule: 'morocco AND france AND extradition', notify: [hook]}\n"
        f"channels:\n  hook: {{type: webhook, url: '{hook.url}'}}\n",
        encoding="utf-8",
    )
    return path


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    result = newswatch(*args, "--config", str(config))
    for output in (result.stdout, result.stderr):
        assert PASSWORD not in output
        assert "Traceback" not in output
    return result.returncode, result.stdout, result.stderr


def test_reading_commands_answer_from_postgresql(cluster_config: Path, hook):
    code, out, _ = _run(cluster_config, "check")
    assert code == 0 and "2 source(s), 1 watchlist(s)" in out

    code, out, _ = _run(cluster_config, "sources", "--json")
    by_name = {row["name"]: row for row in map(json.loads, out.splitlines())}
    assert code == 0
    assert by_name["wire"]["failures"] == 0 and by_name["wire"]["last_success_at"]
    assert by_name["wire"]["articles_per_day"] == pytest.approx(2 / 7)
    assert (by_name["quiet"]["failures"], by_name["quiet"]["last_error"]) == (1, "HTTP 503")

    code, out, err = _run(cluster_config, "match", "--archive", "--json")
    reports = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [report["article"]["url"] for report in reports] == [MATCHING_URL]
    assert [w["name"] for w in reports[0]["watchlists"]] == ["mfe"]
    assert "backtest: 2 stored article(s)" in err

    code, out, _ = _run(cluster_config, "stories", "--json")
    stories = {row["id"]: row for row in map(json.loads, out.splitlines())}
    assert code == 0 and set(stories) == {"st-0", "st-1"}
    assert stories["st-0"]["outlets"] == ["wire"] and stories["st-0"]["urls"] == [MATCHING_URL]

    code, out, _ = _run(cluster_config, "events")
    assert code == 0
    assert out.splitlines()[1].split()[:2] == ["st-0", "2"]
    assert "Le Maroc extrade un trafiquant" in out and out.endswith("1 event\n")

    code, out, _ = _run(cluster_config, "test-channel", "hook")
    assert code == 0 and "hook: delivered" in out
    assert len(hook.requests) == 1

    code, out, _ = _run(cluster_config, "db", "prune")
    assert code == 0
    assert out.startswith("postgresql://newswatch:") and "retention:" in out


@pytest.mark.parametrize(
    ("command", "tool"),
    [
        (("db", "stats"), "pg_stat_user_tables"),
        (("db", "backup", "copy.db"), "pg_dump"),
        (("db", "compact"), "autovacuum"),
        (("serve",), "psql"),
    ],
    ids=["stats", "backup", "compact", "serve"],
)
def test_file_commands_refuse_postgresql_naming_its_tool(cluster_config: Path, command, tool):
    code, out, err = _run(cluster_config, *command)
    assert code == 2
    assert out == ""
    [line] = err.splitlines()
    assert tool in line
    assert "is PostgreSQL" in line and "@127.0.0.1:" in line
    assert not (cluster_config.parent / "copy.db").exists()
