"""`/search?q=…`: the archive searched with the watchlists' own engine, bounded.

A query is either bare words or a rule (it has operators, quotes, parentheses or names a
concept of the config). Each bare word becomes a one-off concept whose aliases
are the word with its Arabic proclitics peeled (`بالمغرب` → `المغرب`, `مغرب`), in the word mode
(Arabic light affixes, Latin endings) and, for Latin words, French and English stems; the words
are ANDed. A rule (`morocco AND "تسليم المطلوبين"`, `NEAR/10(…)`) reads the config's concepts:
what it would have alerted on, per story, as a backtest gives it. Either way FTS5 over the
normalised text narrows the archive to candidates (terms every match must contain), then the
matcher confirms each and finds the words to mark (docs/matching.md §2-§6).

Bounded: a query of at most `MAX_QUERY` characters, an FTS expression of at most `MAX_TERMS`
terms (past it, the newest articles are the candidates), at most `CANDIDATES` candidates
(newest first), a deadline on the matching. A bad rule is shown with its position, never a 500.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts.concepts import (
    ARABIC_PROCLITICS,
    ARABIC_WORD,
    AliasSpec,
    CompiledAlias,
    ConceptSpec,
    WordPattern,
    compile_concept,
    compile_phrase,
    stem_language,
)
from alerts.matcher import Matcher, WatchlistMatch
from alerts.message import http_link
from alerts.normalize import PROCLITICS, arabic_token_keys, is_arabic, normalise, words
from alerts.rules import And, ConceptRef, Near, Not, PhraseRef, Rule, RuleError, parse_rule
from crawler import store
from crawler.backtest import StoredArticle, stored_article
from crawler.config import Config
from crawler.web.app import read, render
from crawler.web.highlight import highlight_snippet
from crawler.web.overview import page_number
from crawler.web.stories import script_of

MAX_QUERY = 500
MAX_WORDS = 10
MAX_TERMS = 1000
CANDIDATES = 2000
DEADLINE_SECONDS = 5.0
STORIES_PER_PAGE = 20
SEARCH = "search"
MIN_KEY = 3
_RULE_SYNTAX = re.compile(r'["(),]|\b(?:AND|OR|NOT)\b|\bNEAR/')


class QueryError(ValueError):
    """A query that cannot be searched, with the character it went wrong at."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Query:
    """What a query means: a rule over concepts (the config's, or one per bare word)."""

    rule: str
    concepts: Mapping[str, ConceptSpec]
    is_rule: bool


def word_concept(word: str) -> ConceptSpec:
    """A bare word's variants: an Arabic word with each proclitic peeled (the matcher then adds
    the proclitics, `ال` and suffixes back), a Latin word in word mode and stemmed."""
    if is_arabic(word):
        peeled = [key for key in arabic_token_keys(word, suffix=False) if len(key) >= MIN_KEY]
        terms = list(dict.fromkeys(peeled or [word]))
        return ConceptSpec(aliases={"ar": [AliasSpec(term=term) for term in terms]})
    stemmed = AliasSpec(term=word, mode="stem")
    return ConceptSpec(aliases={"fr": [AliasSpec(term=word), stemmed], "en": [stemmed]})


def looks_like_rule(text: str, concepts: Mapping[str, ConceptSpec]) -> bool:
    """Operators, quotes or parentheses, or a concept's name: the analyst is writing a rule,
    and a mistake in it (`morocco and france`) is shown, not searched as words."""
    return bool(_RULE_SYNTAX.search(text)) or any(name in concepts for name in text.split())


def parse_query(text: str, config: Config) -> Query:
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is too long: at most {MAX_QUERY} characters", MAX_QUERY)
    concepts = config.concepts
    if looks_like_rule(text, concepts):
        try:
            parse_rule(text, concepts.keys())
        except RuleError as error:
            raise QueryError(error.message, error.position) from None
        return Query(text, concepts, is_rule=True)
    found = list(dict.fromkeys(words(text)))
    if not found:
        raise QueryError("nothing to search: type a word, or a rule over concepts", 0)
    if len(found) > MAX_WORDS:
        raise QueryError(f"at most {MAX_WORDS} words: or write a rule", 0)
    bare = {word: word_concept(word) for word in found}
    return Query(" AND ".join(bare), bare, is_rule=False)


@dataclass
class _Terms:
    """The FTS5 expression being built, and how many terms it has so far."""

    count: int = 0

    def word(self, word: WordPattern) -> str | None:
        """Prefixes every article word this alias word matches starts with (normalised, as the
        index holds it): the proclitics before an Arabic key, the key before a Latin ending; a
        stem may differ from its word in its last two letters (`happi`, `happy`)."""
        if word.kind in (ARABIC_WORD, ARABIC_PROCLITICS):
            prefixes = [proclitic + word.key for proclitic in sorted(PROCLITICS)]
        elif stem_language(word.kind) is not None:
            prefixes = [word.key[: max(MIN_KEY, len(word.key) - 2)]]
        else:
            prefixes = [normalise(word.key)]
        if not all(prefixes):
            return None
        self.count += len(prefixes)
        return _any(['"' + prefix.replace('"', '""') + '"*' for prefix in prefixes])

    def alias(self, alias: CompiledAlias) -> str | None:
        parts = [self.word(word) for word in alias.words]
        # A fuzzy phrase needs one exact word, any of them.
        return _any(parts) if alias.fuzzy else _all(parts)

    def rule(self, rule: Rule, concepts: Mapping[str, ConceptSpec]) -> str | None:
        """What every article the rule matches contains; None: anything may match (NOT)."""
        if isinstance(rule, ConceptRef):
            aliases, _ = compile_concept(rule.name, concepts[rule.name])
            return _any([self.alias(alias) for alias in aliases])
        if isinstance(rule, PhraseRef):
            return self.alias(compile_phrase(rule.text))
        if isinstance(rule, Not):
            return None
        if isinstance(rule, Near):
            return _all([self.rule(rule.left, concepts), self.rule(rule.right, concepts)])
        parts = [self.rule(operand, concepts) for operand in rule.operands]
        return _all(parts) if isinstance(rule, And) else _any(parts)


def _any(parts: list[str | None]) -> str | None:
    if not parts or None in parts:
        return None
    kept = list(dict.fromkeys(part for part in parts if part is not None))
    return kept[0] if len(kept) == 1 else "(" + " OR ".join(kept) + ")"


def _all(parts: list[str | None]) -> str | None:
    kept = list(dict.fromkeys(part for part in parts if part is not None))
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(" + " AND ".join(kept) + ")"


def fts_query(query: Query) -> str | None:
    """The FTS5 expression of the candidates; None (newest articles) when the rule has no
    term every match contains or more terms than the index is worth asking."""
    terms = _Terms()
    expression = terms.rule(parse_rule(query.rule, query.concepts.keys()), query.concepts)
    return expression if terms.count <= MAX_TERMS else None


@dataclass
class StoryResult:
    """A story the query matched: its matching copies, newest first."""

    story_id: str
    copies: list[tuple[StoredArticle, WatchlistMatch]] = field(default_factory=list)


@dataclass
class Results:
    stories: list[StoryResult]
    candidates: int
    confirmed: int
    stopped: bool  # the deadline passed before every candidate was confirmed


def search(db: sqlite_utils.Database, query: Query, deadline: float) -> Results:
    """Candidates from the index, each confirmed by the matcher until the deadline."""
    matcher = Matcher(query.concepts, {SEARCH: query.rule})
    stories: dict[str, StoryResult] = {}
    candidates = confirmed = 0
    stopped = False
    for row in store.search_candidates(db, fts_query(query), CANDIDATES):
        if time.monotonic() > deadline:
            stopped = True
            break
        candidates += 1
        article = stored_article(row)
        for match in matcher.match(article.document):
            confirmed += 1
            found = stories.setdefault(article.story_id, StoryResult(article.story_id))
            found.copies.append((article, match))
    return Results(list(stories.values()), candidates, confirmed, stopped)


def shown(result: StoryResult) -> dict[str, Any]:
    article, match = result.copies[0]
    hits = [hit.to_dict() for hit in match.hits]
    return {
        "story_id": result.story_id,
        "article": article,
        "copies": len(result.copies),
        "outlets": sorted({copy.source for copy, _ in result.copies}),
        "snippet": highlight_snippet(match.snippet, hits),
        "script": script_of(article.language),
        "link": http_link(article.url),
    }


async def search_page(request: Request) -> Response:
    text = request.query_params.get("q", "")
    page = page_number(request)
    context: dict[str, Any] = {"q": text, "page": page, "max_caret": MAX_QUERY}
    if not text.strip():
        return render(request, "search.html", **context)
    try:
        query = parse_query(text, request.app.state.config)
    except QueryError as error:
        return render(request, "search.html", error=error, **context)
    results = await read(request, search, query, time.monotonic() + DEADLINE_SECONDS)
    start = (page - 1) * STORIES_PER_PAGE
    return render(
        request,
        "search.html",
        query=query,
        results=results,
        stories=[shown(story) for story in results.stories[start : start + STORIES_PER_PAGE]],
        more=len(results.stories) > start + STORIES_PER_PAGE,
        **context,
    )


ROUTES = [Route("/search", search_page)]
