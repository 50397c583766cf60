"""What a match shows of the document: about SNIPPET_CHARS of text around its best hit, cut
between words, and at most HITS_SHOWN of its hits, chosen so that one concept repeated
thousands of times cannot hide the others. Each is one pass over the hits in reading order.
"""

from __future__ import annotations

from collections import Counter, defaultdict

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
