"""Whether a watchlist's rule holds over the hits found in one document, and which hits make
it hold (never those of NOT-ed terms).

Hits are placed by token positions per block (the title, then each paragraph): NEAR counts the
tokens between two hits of one block, and an exclude phrase drops the hits it covers. Both
questions are answered with one bisect per hit, so a page of hits against a page of exclude
phrases or NEAR partners stays n·log n.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from alerts.rules import And, ConceptRef, Near, Not, Or, PhraseRef, Rule


@dataclass(frozen=True, slots=True)
class Found:
    """A hit and where it lies in the token stream (NEAR and exclusions need token positions).

    The matcher's `Hit` is only built for the few hits a match shows: a page repeating a word
    thousands of times should not cost thousands of copies of it."""

    concept: str
    alias: str
    fuzzy: bool
    offset: int  # char offset of the hit in Document.text
    end: int  # char offset just after the hit in Document.text
    block: int  # 0 for the title, then one per paragraph
    first: int  # token positions in the block
    last: int


def phrase_atom(text: str) -> str:
    """Atom key of a rule phrase: quoted, so it can never collide with a concept name."""
    return f'"{text}"'


class Spans:
    """Token spans per block, asked whether one of them covers a given span.

    Spans sorted by start with the running maximum of their ends: the spans starting at or
    before `first` cover [first, last] if the farthest end among them reaches `last`. A bisect
    per question, so a page of hits against a page of exclude phrases stays n·log n.
    """

    def __init__(self, spans: Collection[tuple[int, int, int]]) -> None:
        self._starts: dict[int, list[int]] = defaultdict(list)
        self._reach: dict[int, list[int]] = defaultdict(list)
        for block, start, end in sorted(spans):
            reach = self._reach[block]
            self._starts[block].append(start)
            reach.append(max(end, reach[-1]) if reach else end)

    def covers(self, block: int, first: int, last: int) -> bool:
        starts = self._starts.get(block)
        if not starts:
            return False
        before = bisect_right(starts, first)
        return before > 0 and self._reach[block][before - 1] >= last


def outermost(hits: list[Found]) -> list[Found]:
    """Drop hits lying inside a longer (or exact, over fuzzy) hit of the same atom."""
    hits.sort(key=lambda f: (f.block, f.first, -f.last, f.fuzzy))
    kept: list[Found] = []
    for found in hits:
        if kept and kept[-1].block == found.block and found.last <= kept[-1].last:
            continue
        kept.append(found)
    return kept


def evaluate(rule: Rule, found: Mapping[str, list[Found]]) -> tuple[bool, list[Found]]:
    """Whether the rule holds, and the hits that make it hold (none from NOT-ed terms)."""
    if isinstance(rule, ConceptRef | PhraseRef):
        atom = rule.name if isinstance(rule, ConceptRef) else phrase_atom(rule.text)
        hits = found.get(atom, [])
        return bool(hits), hits
    if isinstance(rule, Not):
        return not evaluate(rule.operand, found)[0], []
    if isinstance(rule, And):
        hits = []
        for operand in rule.operands:
            holds, operand_hits = evaluate(operand, found)
            if not holds:
                return False, []
            hits += operand_hits
        return True, hits
    if isinstance(rule, Or):
        results = [evaluate(operand, found) for operand in rule.operands]
        return any(h for h, _ in results), [f for h, hits in results if h for f in hits]
    return _near(rule, found)


def _near(rule: Near, found: Mapping[str, list[Found]]) -> tuple[bool, list[Found]]:
    """Hits of both sides with at most `distance` tokens between them, in one paragraph."""
    left = _distinct(evaluate(rule.left, found)[1])
    right = _distinct(evaluate(rule.right, found)[1])
    close = _with_partner(left, right, rule.distance) + _with_partner(right, left, rule.distance)
    return bool(close), list(_distinct(close))


def _distinct(hits: list[Found]) -> list[Found]:
    """Each hit once (sides often share hits, as in NEAR(a OR b, b)); identity, as NEAR means it."""
    return list({id(found): found for found in hits}.values())


def _with_partner(hits: list[Found], partners: list[Found], distance: int) -> list[Found]:
    """The hits that have another hit of `partners` at most `distance` tokens away.

    At most `distance` tokens between a and b means b starts by a.last + distance + 1 and ends
    from a.first - distance - 1 on. Partners sorted by first token, with the two farthest ends
    (of two different hits) among those starting by each point, answer that with one bisect.
    """
    table = _PartnerTable(partners)
    return [
        a for a in hits if table.reaches(a, a.last + distance + 1, max(0, a.first - distance - 1))
    ]


class _PartnerTable:
    """Per block: partners' first tokens in order, and the two farthest last tokens up to each."""

    def __init__(self, partners: list[Found]) -> None:
        self._firsts: dict[int, list[int]] = defaultdict(list)
        self._top: dict[int, list[tuple[int, Found | None, int]]] = defaultdict(list)
        for found in sorted(partners, key=lambda f: (f.block, f.first)):
            top = self._top[found.block]
            best, holder, second = top[-1] if top else (-1, None, -1)
            if found.last > best:
                best, holder, second = found.last, found, best
            elif found.last > second:
                second = found.last
            self._firsts[found.block].append(found.first)
            top.append((best, holder, second))

    def reaches(self, found: Found, first_by: int, last_from: int) -> bool:
        """Some partner other than `found` starts by `first_by` and ends at `last_from` (≥ 0, so
        the table's -1 for "no such partner" never qualifies) or later."""
        firsts = self._firsts.get(found.block)
        if not firsts:
            return False
        before = bisect_right(firsts, first_by)
        if before == 0:
            return False
        best, holder, second = self._top[found.block][before - 1]
        return (second if holder is found else best) >= last_from
