"""Text normalisation and tokenisation shared by article text, aliases and rules
(docs/matching.md §2).

Aliases and articles go through the very same functions, so whether a word matches never depends on
how it was typed: diacritics, tatweel, hamza forms, case, accents or invisible marks. Tokens are
found in the *original* text and normalised one by one, which keeps their spans exact: a hit can
always quote the article as it was written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_NFKC = "NFKC"


def _mark_ranges(points: Iterable[int]) -> str:
    """Combining marks (Mn, Mc, Me) among `points` as a regex class body.

    `re` has no \\p{M}; the ranges come from the running Python's Unicode database so they track
    its version.
    """
    ranges: list[tuple[int, int]] = []
    for point in points:
        if unicodedata.category(chr(point))[0] != "M":
            continue
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1] = (ranges[-1][0], point)
        else:
            ranges.append((point, point))
    return "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


# Invisible format characters: zero-width chars, bidi controls, ALM, BOM, soft hyphen.
_INVISIBLE = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_BMP_MARKS = _mark_ranges(range(0x10000))
_ALL_MARKS = _BMP_MARKS + _mark_ranges((*range(0x10000, 0x20000), *range(0xE0100, 0xE01F0)))
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _raw_token(marks: str) -> re.Pattern[str]:
    """A token of original text: word characters, with marks and invisible characters allowed
    inside (a tanween or a zero-width joiner in a word must not split it) but not at its edges."""
    return re.compile(rf"\w(?:[\w{marks}{_INVISIBLE}]*[\w{marks}])?")


def _word(marks: str) -> re.Pattern[str]:
    return re.compile(rf"\w[\w{marks}]*")


# `re` tests a class holding astral ranges range by range but a BMP-only class as a bitmap, twice
# as fast; astral marks (plane 1, plane 14) can only occur in text that has astral characters.
_BMP_RAW_TOKEN, _ALL_RAW_TOKEN = _raw_token(_BMP_MARKS), _raw_token(_ALL_MARKS)
_BMP_WORD, _ALL_WORD = _word(_BMP_MARKS), _word(_ALL_MARKS)


def raw_token_pattern(text: str) -> re.Pattern[str]:
    """The pattern of original-text tokens, the fastest one that is exact for `text`."""
    return _ALL_RAW_TOKEN if _ASTRAL.search(text) else _BMP_RAW_TOKEN


def _split_words(normalised: str) -> list[str]:
    return (_ALL_WORD if _ASTRAL.search(normalised) else _BMP_WORD).findall(normalised)


_ARABIC_LETTER = re.compile(
    "[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff\u0750-\u077f\u08a0-\u08c9]"
)


def _codepoints(spec: str) -> list[int]:
    """Expand a class body such as "\\u0610-\\u061a\\u0670" into code points."""
    points: list[int] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            points.extend(range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            points.append(ord(spec[i]))
            i += 1
    return points


# Harakat, tanween, shadda, sukun, superscript alef and Quranic annotation marks.
_ARABIC_DIACRITICS = (
    "\u0610-\u061a\u064b-\u065f\u0670"
    "\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u08d3-\u08e1\u08e3-\u08ff"
)
_TATWEEL = "\u0640"
# Elisions and compounds split words: d’extraditions → d extraditions (no ranges: "-" is literal).
_APOSTROPHES_AND_HYPHENS = (
    "'\u2019\u2018\u02bc\u02bb`\u00b4-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
)

_ARABIC_LETTERS = {
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ٱ": "ا",
    "ى": "ي",
    "ی": "ي",
    "ة": "ه",
    "ؤ": "ء",
    "ئ": "ء",
    "ک": "ك",
}
_DIGITS = {0x0660 + i: str(i) for i in range(10)} | {0x06F0 + i: str(i) for i in range(10)}

# Drop invisibles, diacritics and tatweel; keep letters as they are (needed for the plain-ال test).
_STRIP_TABLE: dict[int, str | None] = dict.fromkeys(
    _codepoints(_INVISIBLE + _ARABIC_DIACRITICS + _TATWEEL)
)
_CASED_TABLE: dict[int, str | None] = (
    _STRIP_TABLE
    | {ord(k): v for k, v in _ARABIC_LETTERS.items()}
    | _DIGITS
    | dict.fromkeys(map(ord, _APOSTROPHES_AND_HYPHENS), " ")
)
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})
_LATIN_ACCENTS = dict.fromkeys(range(0x0300, 0x0370))


@dataclass(frozen=True, slots=True)
class WordForms:
    """One word at the three levels the match modes compare (docs/matching.md §2.3)."""

    cased: str  # NFKC, invisibles/diacritics/tatweel dropped, Arabic letters unified: `case` mode
    folded: str  # `cased`, case-folded, œ/æ expanded, accents kept: what stemmers read
    key: str  # `folded` without Latin accents: the normalised word every other mode compares
    arabic: bool  # written in Arabic script, so the Arabic affix rules apply


def strip_marks(text: str) -> str:
    """NFKC with invisibles, Arabic diacritics and tatweel removed, letters left as written."""
    return unicodedata.normalize(_NFKC, text).translate(_STRIP_TABLE)


def _cased(text: str) -> str:
    return unicodedata.normalize(_NFKC, text).translate(_CASED_TABLE)


def _folded(cased: str) -> str:
    return cased.casefold().translate(_LIGATURES)


def strip_accents(text: str) -> str:
    """Remove Latin/Greek/Cyrillic accents only: other scripts' marks are letters' vowels."""
    if text.isascii():
        return text
    bare = unicodedata.normalize("NFD", text).translate(_LATIN_ACCENTS)
    return unicodedata.normalize(_NFKC, bare)


def normalise(text: str) -> str:
    """The normalised form of any text: what aliases and article words are compared in."""
    return strip_accents(_folded(_cased(text)))


def words(text: str) -> list[str]:
    """The normalised words of a text (an alias, a phrase, an exclude)."""
    return _split_words(normalise(text))


def word_forms(raw: str) -> tuple[WordForms, ...]:
    """The forms of each word a raw token normalises to: usually one, none for a lone tatweel.

    A few compatibility characters (U+02BC, U+FDFA…) normalise to several words; each is returned.
    """
    forms = []
    for cased in _split_words(_cased(raw)):
        folded = _folded(cased)
        forms.append(WordForms(cased, folded, strip_accents(folded), is_arabic(cased)))
    return tuple(forms)


@dataclass(frozen=True, slots=True)
class Token:
    """A normalised word and the span of original text it came from."""

    text: str
    start: int
    end: int


def tokenise(text: str) -> list[Token]:
    """Normalised words of `text`, each with its [start, end) span in `text` itself."""
    tokens = []
    for match in raw_token_pattern(text).finditer(text):
        for forms in word_forms(match.group()):
            tokens.append(Token(forms.key, match.start(), match.end()))
    return tokens


def is_arabic(word: str) -> bool:
    """Whether a word is written in Arabic script (and so takes the Arabic affix rules)."""
    return _ARABIC_LETTER.search(word) is not None


def text_direction(text: str) -> str:
    """ "rtl" or "ltr", from the first strongly directional character (Unicode bidi rule P2).

    Renderers need it: an Arabic snippet shown left to right scrambles its punctuation.
    """
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


# Arabic light affixes (docs/matching.md §3.1): closed lists, in normalised spelling (ة is ه here).
_CONJUNCTIONS = ("", "و", "ف")
_PREPOSITIONS = ("", "ب", "ك", "ل")
PROCLITICS: frozenset[str] = frozenset(
    conj + ("لل" if prep == "ل" and article else prep + article)
    for conj in _CONJUNCTIONS
    for prep in _PREPOSITIONS
    for article in ("", "ال")
)
_SUFFIX_LIST = "ه ا ي يه ين ون ان ات تان تين يين يون يات يا ها هم هما هن نا كم ك يته يتها يتهم"
SUFFIXES: frozenset[str] = frozenset(_SUFFIX_LIST.split(" "))
_PROCLITIC_LENGTHS = sorted({len(p) for p in PROCLITICS if p})
_SUFFIX_LENGTHS = sorted({len(s) for s in SUFFIXES})
_ARTICLE = "\u0627\u0644"


def has_plain_article(word: str) -> bool:
    """Whether an original word starts with a plain ال (not أل, as in ألمانيا, nor بال)."""
    return strip_marks(word).lstrip().startswith(_ARTICLE)


def arabic_alias_key(key: str, *, article: bool, suffix: bool) -> str:
    """The key of one normalised Arabic alias word: its ال dropped, then one closed suffix.

    `article` says the original word starts with a plain ال. Length floors keep short names whole.
    """
    if article and key.startswith(_ARTICLE) and len(key) - 2 >= 3:
        key = key[2:]
    if suffix:
        for length in reversed(_SUFFIX_LENGTHS):
            if len(key) - length >= 4 and key[-length:] in SUFFIXES:
                return key[:-length]
    return key


def arabic_token_keys(word: str, *, suffix: bool) -> list[str]:
    """Every key a normalised Arabic word can be `proclitics + key (+ suffix)` of."""
    remainders = [word]
    remainders += [word[n:] for n in _PROCLITIC_LENGTHS if len(word) > n and word[:n] in PROCLITICS]
    if not suffix:
        return remainders
    keys = list(remainders)
    for rest in remainders:
        keys += [rest[:-n] for n in _SUFFIX_LENGTHS if len(rest) > n and rest[-n:] in SUFFIXES]
    return keys


def osa_distance_at_most_one(a: str, b: str) -> bool:
    """Optimal string alignment distance ≤ 1: one insertion, deletion, substitution or swap."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    prefix = 0
    while prefix < min(la, lb) and a[prefix] == b[prefix]:
        prefix += 1
    if la == lb:
        if a[prefix + 1 :] == b[prefix + 1 :]:
            return True
        return (
            a[prefix] == b[prefix + 1]
            and a[prefix + 1] == b[prefix]
            and a[prefix + 2 :] == b[prefix + 2 :]
        )
    if la > lb:
        return a[prefix + 1 :] == b[prefix:]
    return a[prefix:] == b[prefix + 1 :]
