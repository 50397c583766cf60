"""Event terms: what a text gives to find the other reports of its happening, counted in the
extraction workers (linear in the text's length): content words in the watchlists' own
normalisation (diacritics, case, hamza forms folded) with Arabic article clitics and plural
endings dropped, the title's words apart, the specific numbers and the weekdays named."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.normalize import PROCLITICS, is_arabic, words

# the most frequent distinct terms of a text kept for its profile (counted in the worker)
MAX_TERMS = 400

_ARTICLE_CLITICS = sorted(
    (p for p in PROCLITICS if p.endswith(("ال", "لل"))), key=len, reverse=True
)
_PLURAL_ENDINGS = ("ين", "ون", "ات")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# years and small counts say little about which happening a text reports
_TRIVIAL_NUMBERS = re.compile(r"(?:\d{1,2}|1[34]\d\d|20\d\d|19\d\d)")
# weekday names, and the words that make an Arabic one a date (الأحد is also "the one",
# الاثنين "the two"): يوم الأحد، اليوم (الأحد)، أمس الأحد، مساء الأحد…
WEEKDAYS = {
    "الاثنين": "mon",
    "الثلاثاء": "tue",
    "الاربعاء": "wed",
    "الخميس": "thu",
    "الجمعه": "fri",
    "السبت": "sat",
    "الاحد": "sun",
    "monday": "mon",
    "lundi": "mon",
    "tuesday": "tue",
    "mardi": "tue",
    "wednesday": "wed",
    "mercredi": "wed",
    "thursday": "thu",
    "jeudi": "thu",
    "friday": "fri",
    "vendredi": "fri",
    "saturday": "sat",
    "samedi": "sat",
    "sunday": "sun",
    "dimanche": "sun",
}
_DAY_WORDS = frozenset(
    ["يوم", "اليوم", "امس", "مساء", "صباح", "ليله", "فجر", "ظهر", "عصر", "ظهيره"]
)


def term_key(word: str) -> str | None:
    """A normalised word's event term: Arabic words lose an article-bearing proclitic (وال، بال،
    لل…) and a plural ending, Latin words a plural `s`; one-letter words are dropped. Bare
    conjunctions are kept (وزير is not و + زير)."""
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
    """What a text gives to compare with others, counted once in the extraction worker."""

    counts: dict[str, int]
    title: tuple[str, ...]
    numbers: tuple[str, ...]
    weekdays: tuple[str, ...]


def terms_of(title: str, paragraphs: Sequence[str]) -> Terms:
    """The event terms of an article."""
    title_terms = [key for word in words(title) if (key := term_key(word))]
    counts: Counter[str] = Counter(title_terms)
    numbers: set[str] = set()
    weekdays: set[str] = set()
    for paragraph in paragraphs:
        previous = ""
        for word in words(paragraph):
            day = WEEKDAYS.get(word)
            if day and (word.isascii() or previous in _DAY_WORDS):
                weekdays.add(day)
            previous = word
            key = term_key(word)
            if key is None:
                continue
            counts[key] += 1
            if _NUMBER.fullmatch(key) and not _TRIVIAL_NUMBERS.fullmatch(key):
                numbers.add(key)
    kept = dict(counts.most_common(MAX_TERMS))
    return Terms(
        kept, tuple(dict.fromkeys(title_terms)), tuple(sorted(numbers)), tuple(sorted(weekdays))
    )
