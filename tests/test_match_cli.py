"""`newswatch match` on files, as an analyst checks a watchlist before trusting it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from alerts.document import Document
from tests.support import ROOT, newswatch

DATA = ROOT / "tests" / "data"
SEED_HTML = DATA / "extract" / "seed_article.html"
SEED_TXT = DATA / "seed_article.txt"
HIT_KEYS = {"concept", "alias", "text", "fuzzy", "offset"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The concepts and watchlists of the shared matching cases, as a config file."""
    cases = yaml.safe_load((DATA / "matching_cases.yaml").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("match") / "config.yaml"
    sections = {"concepts": cases["concepts"], "watchlists": cases["watchlists"]}
    path.write_text(yaml.safe_dump(sections, allow_unicode=True), encoding="utf-8")
    return path


def _match_json(config: Path, *documents: Path) -> list[dict]:
    result = newswatch("match", "--json", "--config", str(config), *map(str, documents))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_seed_article_as_html_matches_b1_and_not_b3(config: Path) -> None:
    html = SEED_HTML.read_text(encoding="utf-8")
    # Algeria is in the page, but only in "read also" teasers: inline in the body and in
    # the related block.
    assert html.count("الجزائر") >= 4

    [report] = _match_json(config, SEED_HTML)

    names = [w["name"] for w in report["watchlists"]]
    assert "all3" in names  # B1: morocco AND france AND extradition
    assert "alg" not in names  # B3
    texts = {hit["text"] for w in report["watchlists"] for hit in w["matches"]}
    assert not any("الجزائر" in text for text in texts)


def test_json_has_exactly_the_documented_shape(config: Path) -> None:
    reports = _match_json(config, SEED_TXT, SEED_HTML)

    assert [r["document"] for r in reports] == [str(SEED_TXT), str(SEED_HTML)]
    text = Document.from_plain_text(SEED_TXT.read_text(encoding="utf-8")).text
    for report in reports:
        assert set(report) == {"document", "watchlists"}
        for watchlist in report["watchlists"]:
            assert set(watchlist) == {"name", "matches", "matches_total"}
            assert watchlist["matches_total"] >= len(watchlist["matches"])
            assert watchlist["matches"]
            for hit in watchlist["matches"]:
                assert set(hit) == HIT_KEYS
                assert isinstance(hit["fuzzy"], bool) and isinstance(hit["offset"], int)
    for hit in reports[0]["watchlists"][0]["matches"]:
        assert text[hit["offset"] : hit["offset"] + len(hit["text"])] == hit["text"]


def test_text_report_groups_the_matched_words_by_concept(config: Path) -> None:
    result = newswatch("match", "--watchlist", "all3", "--config", str(config), str(SEED_TXT))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "  ✔ all3"
    extradition = next(line for line in lines if line.strip().startswith("extradition ("))
    assert "«وتسليم الملطلوبين» (fuzzy)" in extradition


def test_a_page_repeating_a_word_shows_twenty_hits_and_counts_them_all(
    config: Path, tmp_path: Path
) -> None:
    doc = tmp_path / "flood.txt"
    doc.write_text("Maroc\n" + "Maroc " * 5000 + "\n", encoding="utf-8")

    [report] = _match_json(config, doc)
    [mor] = [w for w in report["watchlists"] if w["name"] == "mor"]
    assert len(mor["matches"]) == 20
    assert mor["matches_total"] == 5001
    text = newswatch("match", "--watchlist", "mor", "--config", str(config), str(doc)).stdout
    assert "4981 more hit(s) not shown" in text


def test_a_document_without_matches_says_so(config: Path, tmp_path: Path) -> None:
    doc = tmp_path / "weather.txt"
    doc.write_text("Weather\nSunny tomorrow in Lyon.\n", encoding="utf-8")

    assert _match_json(config, doc) == [{"document": str(doc), "watchlists": []}]
    result = newswatch("match", "--config", str(config), str(doc))
    assert "no watchlist matched" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give FILE_OR_URL… or --archive"),
        (("--archive", str(SEED_TXT)), "give FILE_OR_URL… or --archive"),
        (("--since", "7d", str(SEED_TXT)), "--since reads the archive"),
        (("--watchlist", "nope", str(SEED_TXT)), "unknown watchlist nope (defined: mor, fra"),
        (("--archive", "--since", "soon"), "--since: 'soon' is not a duration"),
    ],
)
def test_usage_errors_exit_2(config: Path, args: tuple[str, ...], message: str) -> None:
    result = newswatch("match", "--config", str(config), *args)

    assert result.returncode == 2
    assert message in result.stderr
