"""Matched words shown in place: text escaped, hits wrapped in `<mark>`, found by the hits'
offsets into the stored text (or, in a snippet, by their texts, as the alert messages do), never
by replacing anything in markup. Also the hits grouped by concept, as the pages list them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from alerts.document import PARAGRAPH_SEPARATOR
from alerts.message import split_hits

WORDS_SHOWN = 3


def highlight(text: str, spans: list[tuple[int, int]]) -> Markup:
    """`text` escaped, each (start, end) span of it marked; spans may overlap or run off the
    text (offsets from a text an update replaced): they are merged and clipped. Linear after
    sorting the spans."""
    parts: list[str] = []
    position = 0
    for start, end in _merged(spans, len(text)):
        parts += [escape(text[position:start]), Markup("<mark>"), escape(text[start:end])]
        parts.append(Markup("</mark>"))
        position = end
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def _merged(spans: list[tuple[int, int]], length: int) -> Iterator[tuple[int, int]]:
    current: tuple[int, int] | None = None
    for start, end in sorted((max(0, s), min(length, e)) for s, e in spans):
        if start >= end:
            continue
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current:
            yield current
        current = (start, end)
    if current:
        yield current


def hits_of(stored: str | None) -> list[dict[str, Any]]:
    """The hits of a `matches` row (JSON the pipeline wrote); unreadable → none."""
    try:
        hits = json.loads(stored or "[]")
    except ValueError:
        return []
    return [hit for hit in hits if isinstance(hit, dict)] if isinstance(hits, list) else []


def hit_spans(text: str, hits: Iterable[dict[str, Any]]) -> list[tuple[int, int]]:
    """Spans of the hits that are still where they were found: an updated article's text may
    have moved them, and a wrong mark is worse than none."""
    spans = []
    for hit in hits:
        offset, found = hit.get("offset"), str(hit.get("text") or "")
        if isinstance(offset, int) and found and text[offset : offset + len(found)] == found:
            spans.append((offset, offset + len(found)))
    return spans


def highlight_blocks(
    title: str, text: str, spans: list[tuple[int, int]]
) -> tuple[Markup, list[Markup]]:
    """The title and each paragraph, marked: hit offsets index `title + "\\n\\n" + text`, the
    matcher's document (`alerts.document.Document.text`)."""
    blocks = [title, *(text.split(PARAGRAPH_SEPARATOR) if text else [])]
    marked, start = [], 0
    for block in blocks:
        end = start + len(block)
        inside = [(s - start, e - start) for s, e in spans if s < end and e > start]
        marked.append(highlight(block, inside))
        start = end + len(PARAGRAPH_SEPARATOR)
    return marked[0], marked[1:]


def highlight_snippet(snippet: str, hits: list[dict[str, Any]]) -> Markup:
    """A snippet is cut from the text, so its hits are found again by their words."""
    spans, position = [], 0
    for part, is_hit in split_hits(snippet, [str(hit.get("text") or "") for hit in hits]):
        if is_hit:
            spans.append((position, position + len(part)))
        position += len(part)
    return highlight(snippet, spans)


@dataclass(frozen=True)
class ConceptWords:
    """One concept's matched words as the pages list them: `france: باريس · وباريس · +7`."""

    concept: str
    words: tuple[str, ...]
    more: int


def by_concept(hits: Iterable[dict[str, Any]], shown: int = WORDS_SHOWN) -> list[ConceptWords]:
    """Each concept once, in the order first found, with its distinct word forms."""
    forms: dict[str, dict[str, None]] = {}
    for hit in hits:
        forms.setdefault(str(hit.get("concept") or ""), {}).setdefault(str(hit.get("text") or ""))
    return [
        ConceptWords(concept, tuple(list(words)[:shown]), max(0, len(words) - shown))
        for concept, words in forms.items()
    ]
