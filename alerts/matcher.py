"""Which watchlists a document matches, and the words that made it match (SPEC §3-§7).

At construction every alias word, exclude word and rule phrase word is indexed by (kind, key). An
article token is looked up with the few keys it can stand for (its proclitics and suffixes peeled
off, its plural ending dropped, its stem), so a token costs the same against 10 or 10,000 aliases.
Results per distinct token are cached: news vocabulary repeats from one article to the next.
Phrases are then assembled from consecutive tokens of one paragraph, fuzzy words only next to an
exact anchor, and hits inside an exclude phrase dropped before the rules are evaluated.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from alerts.concepts import (
    CompiledAlias,
    ConceptSpec,
    WordPattern,
    compile_concept,
    compile_phrase,
    token_keys,
)
from alerts.document import Document
from alerts.normalize import (
    WordForms,
    osa_distance_at_most_one,
    raw_token_pattern,
    text_direction,
    word_forms,
)
from alerts.rules import (
    And,
    ConceptRef,
    Near,
    Not,
    Or,
    PhraseRef,
    Rule,
    RuleError,
    parse_rule,
    rule_concepts,
    rule_phrases,
)

SNIPPET_CHARS = 200
HITS_SHOWN = 20  # hits a match keeps for the matches table, payloads and messages
_CACHE_LIMIT = 200_000
_NO_SLOTS: frozenset[int] = frozenset()
_PLAIN_WORD = (_NO_SLOTS,)
_ELLIPSIS = "…"


@dataclass(frozen=True)
class Hit:
    """One occurrence of an alias (or rule phrase) in the document: what an analyst checks."""

    concept: str  # concept name, or the quoted phrase itself for a rule phrase
    alias: str  # alias term as configured
    text: str  # exact original text of the hit in Document.text
    fuzzy: bool
    offset: int  # char offset of the hit in Document.text

    def to_dict(self) -> dict[str, Any]:
        """The hit as the webhook payload and `newswatch match --json` carry it."""
        return {
            "concept": self.concept,
            "alias": self.alias,
            "text": self.text,
            "fuzzy": self.fuzzy,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class WatchlistMatch:
    """A watchlist the document matches, and why."""

    watchlist: str
    hits: tuple[Hit, ...]  # sorted by offset; only what made the rule true (never NOT-ed hits)
    snippet: str  # ~200 chars of original text around the best hit, "…" where cut
    hits_total: int  # hits that made the rule true; `hits` shows at most HITS_SHOWN of them

    @property
    def more_hits(self) -> int:
        """Hits not listed in `hits`: reports say "and N more"."""
        return self.hits_total - len(self.hits)

    @property
    def direction(self) -> str:
        """ "rtl" or "ltr": the direction to display the snippet in (HTML dir, Slack)."""
        return text_direction(self.snippet)


@dataclass(frozen=True, slots=True)
class _Found:
    """A hit and where it lies in the token stream (NEAR and exclusions need token positions).

    The `Hit` itself is only built for the few hits a match shows: a page repeating a word
    thousands of times should not cost thousands of copies of it."""

    concept: str
    alias: str
    fuzzy: bool
    offset: int  # char offset of the hit in Document.text
    end: int  # char offset just after the hit in Document.text
    block: int  # 0 for the title, then one per paragraph
    first: int  # token positions in the block
    last: int

    def hit(self, blocks: list[_Block]) -> Hit:
        block = blocks[self.block]
        text = block.text[self.offset - block.offset : self.end - block.offset]
        return Hit(self.concept, self.alias, text, self.fuzzy, self.offset)


@dataclass(frozen=True, slots=True)
class _Entry:
    """What an indexed alias stands for in a match."""

    alias: CompiledAlias
    atom: str  # the concept name, or the quoted phrase as the rule writes it
    excludes: bool  # an exclude phrase of `atom`, not an alias of it


class _Block:
    """A title or paragraph: its token count, which tokens hit aliases, and (lazily) their spans."""

    def __init__(
        self,
        offset: int,
        text: str,
        raw_slots: list[tuple[frozenset[int], ...]],
        slots: dict[int, frozenset[int]],
        regular: bool,
    ) -> None:
        self.offset = offset  # of the block in Document.text
        self.text = text
        self.raw_slots = raw_slots  # per raw token, the slots of each of its words
        self.slots = slots  # token position → indexed alias words it matches exactly
        self.regular = regular  # every raw token is exactly one word
        self.size = len(raw_slots) if regular else sum(map(len, raw_slots))  # tokens (words)
        self._raws: list[re.Match[str]] | None = None
        self._words: list[tuple[int, int]] | None = None

    def token(self, position: int) -> tuple[re.Match[str], int]:
        """(raw token, which of its words) at a position: spans are only needed around hits."""
        if self._raws is None:
            self._raws = list(raw_token_pattern(self.text).finditer(self.text))
            if not self.regular:
                self._words = [
                    (number, part)
                    for number, words in enumerate(self.raw_slots)
                    for part in range(len(words))
                ]
        if self._words is None:
            return self._raws[position], 0
        number, part = self._words[position]
        return self._raws[number], part


class _Index:
    """Alias words by kind and key, and the per-token lookups against them."""

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        self.first_slot: list[int] = []
        self.slot_entry: list[int] = []
        self.slot_word: list[int] = []
        tables: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for number, entry in enumerate(entries):
            self.first_slot.append(len(self.slot_entry))
            for position, word in enumerate(entry.alias.words):
                tables[word.kind][word.key].append(len(self.slot_entry))
                self.slot_entry.append(number)
                self.slot_word.append(position)
        self.tables = [(kind, dict(table)) for kind, table in tables.items()]
        self.cache: dict[str, tuple[frozenset[int], ...]] = {}

    def lookup(self, raws: list[str]) -> list[tuple[frozenset[int], ...]]:
        """Slots matched by each word of each raw token (cached: most tokens were seen before)."""
        results = list(map(self.cache.get, raws))
        if None in results:
            for number, slots in enumerate(results):
                if slots is None:
                    results[number] = self._lookup_one(raws[number])
        return results

    def _lookup_one(self, raw: str) -> tuple[frozenset[int], ...]:
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        slots = tuple(self._slots(forms) for forms in word_forms(raw))
        # One shared object for "one word, no alias": the scan skips it by identity.
        self.cache[raw] = slots = _PLAIN_WORD if slots == _PLAIN_WORD else slots
        return slots

    def _slots(self, forms: WordForms) -> frozenset[int]:
        slots: list[int] = []
        for kind, table in self.tables:
            for key in token_keys(kind, forms):
                slots += table.get(key, ())
        return frozenset(slots) if slots else _NO_SLOTS


def _near_miss(word: WordPattern, forms: WordForms) -> bool:
    """One edit away from the alias word, under the word's own affix rules."""
    return any(osa_distance_at_most_one(key, word.key) for key in token_keys(word.kind, forms))


@dataclass(frozen=True)
class _Watchlist:
    name: str
    rule: Rule
    atoms: frozenset[str]  # concepts and phrases the rule reads
    true_when_empty: bool  # the rule holds for a text without any of its atoms (NOT-only rules)


def _phrase_atom(text: str) -> str:
    """Atom key of a rule phrase: quoted, so it can never collide with a concept name."""
    return f'"{text}"'


class Matcher:
    """Watchlist rules over concepts, compiled once into an index that every document reuses."""

    def __init__(self, concepts: Mapping[str, ConceptSpec], rules: Mapping[str, str]) -> None:
        specs = {
            name: spec if isinstance(spec, ConceptSpec) else ConceptSpec.model_validate(spec)
            for name, spec in concepts.items()
        }
        self._watchlists = [_watchlist(name, text, specs) for name, text in rules.items()]
        self._numbers = {watchlist.name: n for n, watchlist in enumerate(self._watchlists)}
        # Only watchlists reading an atom the document hits can match (or NOT-only ones).
        self._readers: dict[str, list[int]] = defaultdict(list)
        for number, watchlist in enumerate(self._watchlists):
            for atom in watchlist.atoms:
                self._readers[atom].append(number)
        self._always = {
            n for n, watchlist in enumerate(self._watchlists) if watchlist.true_when_empty
        }
        used = set().union(*(rule_concepts(w.rule) for w in self._watchlists))
        phrases = set().union(*(rule_phrases(w.rule) for w in self._watchlists))
        entries = []
        for name in sorted(used):
            aliases, excludes = compile_concept(name, specs[name])
            entries += [_Entry(alias, name, excludes=False) for alias in aliases]
            entries += [_Entry(alias, name, excludes=True) for alias in excludes]
        for phrase in sorted(phrases):
            entries.append(_Entry(compile_phrase(phrase), _phrase_atom(phrase), excludes=False))
        self._index = _Index(entries)

    def match(
        self, doc: Document, watchlists: Collection[str] | None = None
    ) -> list[WatchlistMatch]:
        """The watchlists (all, or those named) that `doc` matches, in construction order."""
        wanted = self._wanted(watchlists)
        blocks = [self._scan(offset, text) for offset, text in doc.blocks()]
        found = self._find(blocks)
        candidates = self._always.union(*(self._readers.get(atom, ()) for atom in found))
        if wanted is not None:
            candidates &= wanted
        matches = []
        snippets: dict[_Found | None, str] = {}  # watchlists often share their best hit
        for number in sorted(candidates):
            watchlist = self._watchlists[number]
            holds, hits = _evaluate(watchlist.rule, found)
            if not holds:
                continue
            ordered = sorted(set(hits), key=_reading_order)
            best = _best(ordered)
            if best not in snippets:
                snippets[best] = _snippet(blocks, best)
            shown = tuple(f.hit(blocks) for f in _shown(ordered, best))
            matches.append(WatchlistMatch(watchlist.name, shown, snippets[best], len(ordered)))
        return matches

    def _wanted(self, names: Collection[str] | None) -> set[int] | None:
        if names is None:
            return None
        unknown = set(names) - self._numbers.keys()
        if unknown:
            raise ValueError(f"unknown watchlist(s): {', '.join(sorted(unknown))}")
        return {self._numbers[name] for name in names}

    def _scan(self, offset: int, text: str) -> _Block:
        raw_slots = self._index.lookup(raw_token_pattern(text).findall(text))
        hits = [number for number, slots in enumerate(raw_slots) if slots is not _PLAIN_WORD]
        if all(len(raw_slots[number]) == 1 for number in hits):
            slots = {number: raw_slots[number][0] for number in hits if raw_slots[number][0]}
            return _Block(offset, text, raw_slots, slots, regular=True)
        # Some raw token is no word (a lone tatweel) or several: positions shift after it.
        starts = [0, *accumulate(map(len, raw_slots))]
        slots = {
            starts[number] + part: word_slots
            for number in hits
            for part, word_slots in enumerate(raw_slots[number])
            if word_slots
        }
        return _Block(offset, text, raw_slots, slots, regular=False)

    def _find(self, blocks: list[_Block]) -> dict[str, list[_Found]]:
        """Hits per atom: excluded ones and those nested in a longer hit of the atom dropped."""
        hits: dict[str, list[_Found]] = defaultdict(list)
        excluded: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for number, block in enumerate(blocks):
            for entry_number, first, last, fuzzy in self._occurrences(block):
                entry = self._index.entries[entry_number]
                if entry.excludes:
                    excluded[entry.atom].append((number, first, last))
                else:
                    hits[entry.atom].append(_found(entry, block, number, first, last, fuzzy))
        kept = {}
        for atom, atom_hits in hits.items():
            inside = _Spans(excluded.get(atom, ()))
            counted = [f for f in atom_hits if not inside.covers(f.block, f.first, f.last)]
            if counted:
                kept[atom] = _outermost(counted)
        return kept

    def _occurrences(self, block: _Block) -> Iterator[tuple[int, int, int, bool]]:
        """(entry, first token, last token, fuzzy) for every alias occurrence in the block."""
        index = self._index
        tried: set[tuple[int, int]] = set()
        for position, slots in block.slots.items():
            for slot in slots:
                number, word = index.slot_entry[slot], index.slot_word[slot]
                alias = index.entries[number].alias
                length = len(alias.words)
                if length == 1:
                    yield number, position, position, False
                    continue
                start = position - word
                # A fuzzy phrase may be anchored on any exact word; others start at word 0.
                if (word and not alias.fuzzy) or (number, start) in tried:
                    continue
                tried.add((number, start))
                if start < 0 or start + length > block.size:
                    continue
                fuzzy = self._phrase_at(block, number, start)
                if fuzzy is not None:
                    yield number, start, start + length - 1, fuzzy

    def _phrase_at(self, block: _Block, number: int, start: int) -> bool | None:
        """None if the alias is not at `start`, else whether some word matched only fuzzily."""
        first_slot = self._index.first_slot[number]
        fuzzy = False
        for offset, word in enumerate(self._index.entries[number].alias.words):
            slots = block.slots.get(start + offset, _NO_SLOTS)
            if first_slot + offset in slots:
                continue
            raw, part = block.token(start + offset)
            if not (word.fuzzy and _near_miss(word, word_forms(raw.group())[part])):
                return None
            fuzzy = True
        return fuzzy


def _watchlist(name: str, text: str, specs: Mapping[str, ConceptSpec]) -> _Watchlist:
    try:
        rule = parse_rule(text, specs.keys())
    except RuleError as error:
        raise RuleError(error.message, error.position, watchlist=name) from None
    atoms = rule_concepts(rule) | {_phrase_atom(p) for p in rule_phrases(rule)}
    return _Watchlist(name, rule, frozenset(atoms), _evaluate(rule, {})[0])


def _found(entry: _Entry, block: _Block, number: int, first: int, last: int, fuzzy: bool) -> _Found:
    raw = block.token(first)[0]
    start, end = raw.start(), (raw if last == first else block.token(last)[0]).end()
    alias = entry.alias
    offset = block.offset
    return _Found(
        alias.concept, alias.term, fuzzy, offset + start, offset + end, number, first, last
    )


class _Spans:
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


def _outermost(hits: list[_Found]) -> list[_Found]:
    """Drop hits lying inside a longer (or exact, over fuzzy) hit of the same atom."""
    hits.sort(key=lambda f: (f.block, f.first, -f.last, f.fuzzy))
    kept: list[_Found] = []
    for found in hits:
        if kept and kept[-1].block == found.block and found.last <= kept[-1].last:
            continue
        kept.append(found)
    return kept


def _evaluate(rule: Rule, found: Mapping[str, list[_Found]]) -> tuple[bool, list[_Found]]:
    """Whether the rule holds, and the hits that make it hold (none from NOT-ed terms)."""
    if isinstance(rule, ConceptRef | PhraseRef):
        atom = rule.name if isinstance(rule, ConceptRef) else _phrase_atom(rule.text)
        hits = found.get(atom, [])
        return bool(hits), hits
    if isinstance(rule, Not):
        return not _evaluate(rule.operand, found)[0], []
    if isinstance(rule, And):
        hits = []
        for operand in rule.operands:
            holds, operand_hits = _evaluate(operand, found)
            if not holds:
                return False, []
            hits += operand_hits
        return True, hits
    if isinstance(rule, Or):
        results = [_evaluate(operand, found) for operand in rule.operands]
        return any(h for h, _ in results), [f for h, hits in results if h for f in hits]
    return _near(rule, found)


def _near(rule: Near, found: Mapping[str, list[_Found]]) -> tuple[bool, list[_Found]]:
    """Hits of both sides with at most `distance` tokens between them, in one paragraph."""
    left = _distinct(_evaluate(rule.left, found)[1])
    right = _distinct(_evaluate(rule.right, found)[1])
    close = _with_partner(left, right, rule.distance) + _with_partner(right, left, rule.distance)
    return bool(close), list(_distinct(close))


def _distinct(hits: list[_Found]) -> list[_Found]:
    """Each hit once (sides often share hits, as in NEAR(a OR b, b)); identity, as NEAR means it."""
    return list({id(found): found for found in hits}.values())


def _with_partner(hits: list[_Found], partners: list[_Found], distance: int) -> list[_Found]:
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

    def __init__(self, partners: list[_Found]) -> None:
        self._firsts: dict[int, list[int]] = defaultdict(list)
        self._top: dict[int, list[tuple[int, _Found | None, int]]] = defaultdict(list)
        for found in sorted(partners, key=lambda f: (f.block, f.first)):
            top = self._top[found.block]
            best, holder, second = top[-1] if top else (-1, None, -1)
            if found.last > best:
                best, holder, second = found.last, found, best
            elif found.last > second:
                second = found.last
            self._firsts[found.block].append(found.first)
            top.append((best, holder, second))

    def reaches(self, found: _Found, first_by: int, last_from: int) -> bool:
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


def _snippet(blocks: list[_Block], best: _Found | None) -> str:
    if best is None:  # a rule true without hits (NOT-only): show how the article starts
        block = blocks[1] if len(blocks) > 1 else blocks[0]
        return _window(block.text, 0, 0)
    block = blocks[best.block]
    return _window(block.text, best.offset - block.offset, best.end - block.offset)


def _reading_order(found: _Found) -> tuple[int, int, str]:
    return found.offset, found.end, found.concept


def _best(hits: list[_Found]) -> _Found | None:
    """The hit with the most distinct concepts around it (exact before fuzzy, then earliest).

    `hits` are in reading order, so the hits within reach of each one (same block, at most
    SNIPPET_CHARS // 2 characters away) form a window that only moves forward: one pass with a
    count per concept in the window.
    """
    reach = SNIPPET_CHARS // 2
    places = [(f.block, f.offset) for f in hits]
    concepts = [f.concept for f in hits]
    window: Counter[str] = Counter()
    best: tuple[int, bool, int] | None = None
    chosen = low = high = 0
    for number, (block, offset) in enumerate(places):
        while high < len(hits) and places[high][0] == block and places[high][1] <= offset + reach:
            window[concepts[high]] += 1
            high += 1
        while places[low][0] != block or places[low][1] < offset - reach:
            window[concepts[low]] -= 1
            if not window[concepts[low]]:
                del window[concepts[low]]
            low += 1
        score = (-len(window), hits[number].fuzzy, offset)
        if best is None or score < best:
            best, chosen = score, number
    return hits[chosen] if hits else None


def _shown(hits: list[_Found], best: _Found | None) -> list[_Found]:
    """At most HITS_SHOWN hits, in reading order: the snippet's hit, then the earliest of every
    concept in turn, so one concept repeated 10,000 times cannot hide the others."""
    if len(hits) <= HITS_SHOWN:
        return hits
    by_concept: dict[str, list[_Found]] = defaultdict(list)
    for found in hits:
        if len(by_concept[found.concept]) < HITS_SHOWN:
            by_concept[found.concept].append(found)
    chosen: dict[int, _Found] = {id(best): best} if best is not None else {}
    for rank in range(HITS_SHOWN):
        for concept_hits in by_concept.values():
            if rank < len(concept_hits) and len(chosen) < HITS_SHOWN:
                chosen.setdefault(id(concept_hits[rank]), concept_hits[rank])
    return sorted(chosen.values(), key=_reading_order)


def _window(text: str, start: int, end: int) -> str:
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
