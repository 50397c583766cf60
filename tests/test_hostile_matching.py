"""Matching a page built to be expensive: work grows with the text, alerts stay small.

Growth is measured as work, not time: the number of Python and builtin calls the matcher makes
(`sys.setprofile` sees every one), which is the same on a busy machine as on a quiet one. A
quadratic step (every hit against every other) makes that count quadruple when the page doubles.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from alerts.concepts import ConceptSpec
from alerts.document import Document
from alerts.matcher import Matcher
from alerts.snippets import HITS_SHOWN
from tests.support import demo_config, publish, rows, run_once, slug

CONCEPTS = {
    "morocco": {
        "ar": ["مغرب", "المملكة المغربية"],
        "fr": ["Maroc", "marocain"],
        "exclude": ["صلاة المغرب"],
    },
    "france": {"fr": ["France", "Paris"], "ar": ["فرنسا"]},
}
RULES = {"morocco": "morocco", "both": "morocco AND france", "near": "NEAR/5(morocco, france)"}
# (watchlist, text repeated n times): one hit per repetition, an exclude phrase hiding every
# hit, and n pairs five tokens apart at most.
INPUTS = {
    "repeated word": ("morocco", "Maroc "),
    "repeated exclude": ("morocco", "صلاة المغرب "),
    "NEAR pairs": ("near", "Maroc et la France "),
}
GROWTH_LIMIT = 2.5  # per doubling; a quadratic step gives ~4


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    specs = {name: ConceptSpec.model_validate(spec) for name, spec in CONCEPTS.items()}
    return Matcher(specs, RULES)


def calls(action: Callable[[], object]) -> int:
    """Function and builtin calls made by `action`: a measure of work that ignores machine load."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        count += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("name", list(INPUTS))
def test_matching_work_grows_linearly_with_repetitions(matcher: Matcher, name: str) -> None:
    watchlist, text = INPUTS[name]
    matcher.match(Document("warm-up", (text,)), [watchlist])  # fills the token cache
    work = {
        n: calls(lambda n=n: matcher.match(Document("title", (text * n,)), [watchlist]))
        for n in (1_000, 2_000, 4_000)
    }

    assert work[2_000] / work[1_000] <= GROWTH_LIMIT, work
    assert work[4_000] / work[2_000] <= GROWTH_LIMIT, work


def test_a_page_repeating_a_word_keeps_twenty_hits_and_counts_all(matcher: Matcher) -> None:
    doc = Document("Paris", ("Maroc " * 16_000, "Rendez-vous à Paris"))

    (match,) = matcher.match(doc, ["both"])

    assert match.hits_total == 16_002  # Maroc 16,000 times, Paris twice
    assert len(match.hits) == HITS_SHOWN
    assert {hit.concept for hit in match.hits} == {"morocco", "france"}, "one concept hid another"
    assert [hit.offset for hit in match.hits] == sorted(hit.offset for hit in match.hits)


def test_an_alert_from_a_16k_repetition_page_is_capped_where_stored_and_sent(
    tmp_path: Path, site, hook
) -> None:
    config = demo_config(
        tmp_path, site.base_url, f'  hook: {{type: webhook, url: "{hook.url}"}}', notify="hook"
    )
    publish(
        site,
        "maroc-repeated",
        "Extradition vers la France",
        ["Maroc " * 16_000, "Le Maroc accepte l'extradition demandée par la France."],
    )

    run_once(config)

    (sent,) = [r.json for r in hook.requests if slug(r.json["article"]["url"]) == "maroc-repeated"]
    assert len(sent["matches"]) <= HITS_SHOWN
    assert sent["matches_total"] > 16_000
    assert {m["concept"] for m in sent["matches"]} == {"morocco", "france", "extradition"}
    assert len(json.dumps(sent)) < 10_000, "the alert stays small"
    [stored] = rows(
        config,
        "SELECT m.hits FROM matches m JOIN articles a ON a.id = m.article_id"
        " WHERE a.url LIKE '%maroc-repeated%'",
    )
    assert json.loads(stored["hits"]) == sent["matches"]
