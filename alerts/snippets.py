"""What a match shows of the document: about SNIPPET_CHARS of text around its best hit, cut
between words, and at most HITS_SHOWN of its hits, chosen so that one concept repeated
thousands of times cannot hide the others; and those hits as people read them, one line per
concept with its word forms (`words_by_concept`). Each is one pass over the hits.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from alerts.evaluate import Found

SNIPPET_CHARS = 200
HITS_SHOWN = 20  # hits a match keeps for the matches table, payloads and messages
_ELLIPSIS = "…"


def reading_order(found: Found) -> tuple[int, int, str]:
    return found.offset, found.end, found.concept


def best_hit(hits: list[Found]) -> Found | None:
    """The hit with the most distinct concepts around it (exact before fuzzy, then earliest).

    `hits` are in reading order, so the hits within reach of each one (same block, at most
    SNIPPET_CHARS // 2 characters away) form a window that only moves forward: one pass with a
    count per concept in the window.
    """
    reach = SNIPPET_CHARS // 2
    places = [(f.block, f.offset) for f in hits]
    concepts = [f.concept for f in hits]
    around: Counter[str] = Counter()
    best: tuple[int, bool, int] | None = None
    chosen = low = high = 0
    for number, (block, offset) in enumerate(places):
        while high < len(hits) and places[high][0] == block and places[high][1] <= offset + reach:
            around[concepts[high]] += 1
            high += 1
        while places[low][0] != block or places[low][1] < offset - reach:
            around[concepts[low]] -= 1
            if not around[concepts[low]]:
                del around[concepts[low]]
            low += 1
        score = (-len(around), hits[number].fuzzy, offset)
        if best is None or score < best:
            best, chosen = score, number
    return hits[chosen] if hits else None


def shown_hits(hits: list[Found], best: Found | None) -> list[Found]:
    """At most HITS_SHOWN hits, in reading order: the snippet's hit, then the earliest of every
    concept in turn, so one concept repeated 10,000 times cannot hide the others."""
    if len(hits) <= HITS_SHOWN:
        return hits
    by_concept: dict[str, list[Found]] = defaultdict(list)
    for found in hits:
        if len(by_concept[found.concept]) < HITS_SHOWN:
            by_concept[found.concept].append(found)
    chosen: dict[int, Found] = {id(best): best} if best is not None else {}
    for rank in range(HITS_SHOWN):
        for concept_hits in by_concept.values():
            if rank < len(concept_hits) and len(chosen) < HITS_SHOWN:
                chosen.setdefault(id(concept_hits[rank]), concept_hits[rank])
    return sorted(chosen.values(), key=reading_order)


def window(text: str, start: int, end: int) -> str:
    """About SNIPPET_CHARS of `text` around [start, end), cut between words, cuts marked."""
    if len(text) <= SNIPPET_CHARS:
        return " ".join(text.split())
    left = max(0, min((start + end - SNIPPET_CHARS) // 2, len(text) - SNIPPET_CHARS))
    right = max(min(len(text), left + SNIPPET_CHARS), end)
    left = min(left, start)
    if left > 0:
        left = _next_word_start(text, left, start)
    if right < len(text):
        right = _previous_word_end(text, right, end)
    body = " ".join(text[left:right].split())
    head = _ELLIPSIS + " " if left > 0 else ""
    tail = " " + _ELLIPSIS if right < len(text) else ""
    return head + body + tail


def _next_word_start(text: str, position: int, limit: int) -> int:
    """Move a cut forward to the start of the next word, never past `limit`."""
    if text[position - 1].isspace():
        return position
    while position < limit and not text[position].isspace():
        position += 1
    return position


def _previous_word_end(text: str, position: int, limit: int) -> int:
    """Move a cut back to the end of the previous word, never before `limit`."""
    if text[position].isspace():
        return position
    while position > limit and not text[position - 1].isspace():
        position -= 1
    return position


WORDS_SHOWN = 3  # word forms a message lists per concept before "+N"
WORD_CHARS = 60  # a longer form (a fuzzy multi-word hit, a hostile page) is cut
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class MatchedWord:
    """One form of a concept as the article wrote it (`باريس`, `وباريس`)."""

    text: str
    fuzzy: bool  # every hit of this form was a one-edit match
    hits: int  # listed hits with this form


@dataclass(frozen=True)
class ConceptWords:
    """A concept and the forms that matched it: messages, the CLI and the pages show one line
    per concept (`france: باريس · وباريس · الفرنسي · +7`) rather than one per form."""

    concept: str
    words: tuple[MatchedWord, ...]  # at most `shown`, in order of first appearance
    more: int  # further distinct forms among the listed hits
    hits: int  # listed hits of this concept

    def line(self) -> str:
        """The plain-text line that email, the demo and logs share."""
        forms = [word.text + (" (fuzzy)" if word.fuzzy else "") for word in self.words]
        return f"{self.concept}: " + " · ".join(forms + ([f"+{self.more}"] if self.more else []))


def readable(text: str) -> str:
    """A hit's text fit for one line: white space collapsed, bidi embeddings, overrides and
    isolates dropped (a U+202E would show the rest of the line reversed), at most WORD_CHARS."""
    text = " ".join(_BIDI_CONTROLS.sub("", str(text)).split())
    return text if len(text) <= WORD_CHARS else text[: WORD_CHARS - 1].rstrip() + _ELLIPSIS


def words_by_concept(
    matches: Iterable[Mapping[str, Any]], shown: int = WORDS_SHOWN
) -> list[ConceptWords]:
    """The listed hits (payload dicts, `Hit.to_dict()`) grouped by concept, concepts and forms
    in order of first appearance. `more` counts only forms among the hits given: hits beyond
    HITS_SHOWN are not listed anywhere, so their forms are unknown ("and N more hit(s)")."""
    counts: dict[str, Counter[str]] = {}
    exact: set[tuple[str, str]] = set()
    for match in matches:
        concept, text = readable(match.get("concept") or ""), readable(match.get("text") or "")
        counts.setdefault(concept, Counter())[text] += 1
        if not match.get("fuzzy"):
            exact.add((concept, text))
    return [
        ConceptWords(
            concept=concept,
            words=tuple(
                MatchedWord(text, (concept, text) not in exact, hits)
                for text, hits in islice(texts.items(), shown)
            ),
            more=max(0, len(texts) - shown),
            hits=texts.total(),
        )
        for concept, texts in counts.items()
    ]
