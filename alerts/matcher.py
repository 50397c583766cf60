"""Which watchlists a document matches, and the words that made it match (the rules:
docs/matching.md §3-§6).

At construction every alias word, exclude word and rule phrase word is indexed by (kind, key). An
article token is looked up with the few keys it can stand for (its proclitics and suffixes peeled
off, its plural ending dropped, its stem), so a token costs the same against 10 or 10,000 aliases.
Results per distinct token are cached: news vocabulary repeats from one article to the next.
Phrases are then assembled from consecutive tokens of one paragraph, fuzzy words only next to an
exact anchor, and hits inside an exclude phrase dropped before the rules are evaluated
(`alerts.evaluate`); `alerts.snippets` chooses what each match shows.
"""

from __future__ import annotations

import re
from collections import defaultdict
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
from alerts.evaluate import Found, Spans, evaluate, outermost, phrase_atom
from alerts.normalize import (
    WordForms,
    osa_distance_at_most_one,
    raw_token_pattern,
    text_direction,
    word_forms,
)
from alerts.rules import Rule, RuleError, parse_rule, rule_concepts, rule_phrases
from alerts.snippets import best_hit, reading_order, shown_hits, window

_CACHE_LIMIT = 200_000
_NO_SLOTS: frozenset[int] = frozenset()
_PLAIN_WORD = (_NO_SLOTS,)


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
            entries.append(_Entry(compile_phrase(phrase), phrase_atom(phrase), excludes=False))
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
        snippets: dict[Found | None, str] = {}  # watchlists often share their best hit
        for number in sorted(candidates):
            watchlist = self._watchlists[number]
            holds, hits = evaluate(watchlist.rule, found)
            if not holds:
                continue
            ordered = sorted(set(hits), key=reading_order)
            best = best_hit(ordered)
            if best not in snippets:
                snippets[best] = _snippet(blocks, best)
            shown = tuple(_hit(f, blocks) for f in shown_hits(ordered, best))
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

    def _find(self, blocks: list[_Block]) -> dict[str, list[Found]]:
        """Hits per atom: excluded ones and those nested in a longer hit of the atom dropped."""
        hits: dict[str, list[Found]] = defaultdict(list)
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
            inside = Spans(excluded.get(atom, ()))
            counted = [f for f in atom_hits if not inside.covers(f.block, f.first, f.last)]
            if counted:
                kept[atom] = outermost(counted)
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
    atoms = rule_concepts(rule) | {phrase_atom(p) for p in rule_phrases(rule)}
    return _Watchlist(name, rule, frozenset(atoms), evaluate(rule, {})[0])


def _found(entry: _Entry, block: _Block, number: int, first: int, last: int, fuzzy: bool) -> Found:
    raw = block.token(first)[0]
    start, end = raw.start(), (raw if last == first else block.token(last)[0]).end()
    alias = entry.alias
    offset = block.offset
    return Found(
        alias.concept, alias.term, fuzzy, offset + start, offset + end, number, first, last
    )


def _hit(found: Found, blocks: list[_Block]) -> Hit:
    block = blocks[found.block]
    text = block.text[found.offset - block.offset : found.end - block.offset]
    return Hit(found.concept, found.alias, text, found.fuzzy, found.offset)


def _snippet(blocks: list[_Block], best: Found | None) -> str:
    if best is None:  # a rule true without hits (NOT-only): show how the article starts
        block = blocks[1] if len(blocks) > 1 else blocks[0]
        return window(block.text, 0, 0)
    block = blocks[best.block]
    return window(block.text, best.offset - block.offset, best.end - block.offset)
