"""Event terms: what a text gives to find the other reports of its happening, counted in the
extraction workers (linear in the text's length): its words in the watchlists' own normalisation
(diacritics, case, hamza forms folded) with Arabic article clitics and plural endings dropped,
and the title's words apart. Function words are not listed per language: their rarity weight
(`crawler.events`) makes them count for next to nothing.

Numbers, weekdays (resolved to dates) and leads were measured as further signals on the labelled
pairs (bench/events.py) and added nothing over these: they are not counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.normalize import PROCLITICS, is_arabic, words

# the most frequent distinct terms of a text kept for its profile, and of its title's terms the
# first ones (a title of 100 KB is a site's, not a newsroom's)
MAX_TERMS = 400
MAX_TITLE_TERMS = 40

_ARTICLE_CLITICS = sorted(
    (p for p in PROCLITICS if p.endswith(("ال", "لل"))), key=len, reverse=True
)
_PLURAL_ENDINGS = ("ين", "ون", "ات")
# no word of a language is longer; a run of letters past it is a site's, and would be counted,
# stored and indexed whole
MAX_TERM_CHARS = 40


def term_key(word: str) -> str | None:
    """A normalised word's event term: Arabic words lose an article-bearing proclitic (وال، بال،
    لل…) and a plural ending, Latin words a plural `s`; one-letter words are dropped. Bare
    conjunctions are kept (وزير is not و + زير)."""
    if len(word) > MAX_TERM_CHARS:
        return None
    if is_arabic(word):
        for clitic in _ARTICLE_CLITICS:
            if word.startswith(clitic) and len(word) - len(clitic) >= 2:
                word = word[len(clitic) :]
                break
        for ending in _PLURAL_ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 4:
                word = word[: -len(ending)]
                break
    elif len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word if len(word) > 1 else None


@dataclass(frozen=True)
class Terms:
    """A text's term counts (its `MAX_TERMS` most frequent) and its title's distinct terms."""

    counts: dict[str, int]
    title: tuple[str, ...]


def terms_of(title: str, paragraphs: Sequence[str]) -> Terms:
    title_terms = [key for word in words(title) if (key := term_key(word))]
    counts = Counter(title_terms)
    for paragraph in paragraphs:
        counts.update(key for word in words(paragraph) if (key := term_key(word)))
    title = tuple(dict.fromkeys(title_terms))[:MAX_TITLE_TERMS]
    return Terms(dict(counts.most_common(MAX_TERMS)), title)
