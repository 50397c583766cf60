"""Normalisation and tokenisation (docs/matching.md §2): examples, then properties over
generated text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.concepts import ConceptSpec
from alerts.document import Document
from alerts.matcher import Matcher
from alerts.normalize import (
    arabic_alias_key,
    arabic_token_keys,
    has_plain_article,
    normalise,
    osa_distance_at_most_one,
    tokenise,
    words,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("زَارَ الوَزِيرُ المَغْرِبَ", "زار الوزير المغرب"),  # harakat
        ("مغربيًّا", "مغربيا"),  # tanween + shadda
        ("وفـــرنـــســا", "وفرنسا"),  # tatweel
        ("أحمد إلى آخر ٱلكتاب", "احمد الي اخر الكتاب"),  # hamza forms, alef maqsura
        ("المدرسة مسؤول رئيس", "المدرسه مسءول رءيس"),  # ta marbuta, hamza seats
        ("کتاب ی", "كتاب ي"),  # Persian keheh and yeh
        ("عام ٢٠٢٤ و۱۹", "عام 2024 و19"),  # Arabic-Indic and extended digits
        ("الرحمٰن", "الرحمن"),  # superscript alef
        ("فر\u200cنسا\u200f \u061cباريس\ufeff", "فرنسا باريس"),  # ZWNJ, RLM, ALM, BOM
        ("ex\u00adtradition", "extradition"),  # soft hyphen
        ("La Diplomatie FRANÇAISE", "la diplomatie francaise"),  # casefold, accents
        ("Œuvre et Cæsar, Straße", "oeuvre et caesar, strasse"),
        ("d’extraditions l'Algérie Saint-Germain", "d extraditions l algerie saint germain"),
        ("ﬁn ＡＢＣ", "fin abc"),  # NFKC compatibility forms
    ],
)
def test_normalise_examples(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_tokens_span_the_original_text_diacritics_and_all() -> None:
    text = "هجوم «مغربيًّا» فرنسيًّا، وفـــرنـــســا"
    tokens = tokenise(text)
    assert [t.text for t in tokens] == ["هجوم", "مغربيا", "فرنسيا", "وفرنسا"]
    assert [text[t.start : t.end] for t in tokens] == ["هجوم", "مغربيًّا", "فرنسيًّا", "وفـــرنـــســا"]


def test_invisible_marks_at_word_edges_stay_out_of_the_span() -> None:
    text = "\u200fFrance\u200f et \u061cالمغرب"
    assert [text[t.start : t.end] for t in tokenise(text)] == ["France", "et", "المغرب"]


def test_elisions_and_hyphens_split_words() -> None:
    assert words("d’extraditions vers Paris-Saint-Germain") == [
        "d",
        "extraditions",
        "vers",
        "paris",
        "saint",
        "germain",
    ]


@pytest.mark.parametrize(
    ("alias", "key"),
    [
        ("المطلوبين", "مطلوب"),  # article dropped, suffix ين stripped
        ("الرباط", "رباط"),  # no suffix: ط is none
        ("المغاربة", "مغارب"),  # ة (normalised ه) stripped
        ("فرنسي", "فرنس"),
        ("مغرب", "مغرب"),
        ("ألمانيا", "المان"),  # أل is not the article; يا stripped
        ("لبنان", "لبنان"),  # stripping ان would leave 3 letters
        ("الم", "الم"),  # dropping ال would leave 1 letter
    ],
)
def test_arabic_alias_keys(alias: str, key: str) -> None:
    assert arabic_alias_key(normalise(alias), article=has_plain_article(alias), suffix=True) == key


def test_arabic_token_keys_peel_proclitics_and_one_suffix() -> None:
    keys = arabic_token_keys(normalise("وبالفرنسية"), suffix=True)
    assert "فرنس" in keys  # و + ب + ال + فرنس + يه
    assert "فرنسيه" in keys
    assert "ترحيل" not in arabic_token_keys(normalise("مرحلة"), suffix=True)
    assert arabic_token_keys(normalise("المالية"), suffix=False) == ["الماليه", "ماليه"]


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("مطلوب", "ملطلوب", True),  # insertion
        ("مطلوب", "مطلب", True),  # deletion
        ("استرداد", "استعداد", True),  # why a single word is never matched fuzzily
        ("ترحيل", "مرحلة", False),
        ("extradition", "extradtiion", True),  # one transposition counts once
        ("extradition", "extradition", True),
        ("abcdef", "badcef", False),  # two transpositions
    ],
)
def test_osa_distance(a: str, b: str, close: bool) -> None:
    assert osa_distance_at_most_one(a, b) is close
    assert osa_distance_at_most_one(b, a) is close


# --- properties --------------------------------------------------------------------------------

_ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهويءأإآةىؤئ"
_LATIN_LETTERS = "abcdefghijklmnopqrstuvwxyzéèêàçôûïœæßABCDEFÉÇŒ"
_DECORATION_SAMPLE = "\u064e\u0651\u064b\u0640\u200c\u200f\u00ad"
_MIXED_TEXT = st.text(
    alphabet=st.sampled_from([*_ARABIC_LETTERS, *_LATIN_LETTERS, *" -’'.،١٢", *_DECORATION_SAMPLE]),
    max_size=60,
)


@given(st.text(max_size=40))
def test_normalise_is_idempotent_on_any_text(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(_MIXED_TEXT)
def test_normalise_is_idempotent_on_news_alphabets(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(_MIXED_TEXT)
def test_tokens_are_the_words_of_the_normalised_text(text: str) -> None:
    assert [t.text for t in tokenise(text)] == words(text)


# Decorations a keyboard, a CMS or a copy-paste adds to Arabic without changing the words:
# harakat, tanween, shadda, sukun, superscript alef, tatweel, zero-width and bidi marks.
_DECORATIONS = (
    "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0670"  # tanween, harakat, shadda, sukun
    "\u0640\u200b\u200c\u200d\u200e\u200f\u061c\ufeff\u00ad"  # tatweel, invisibles
)
_MATCHING_ARABIC = [
    ("وقع الوزير اتفاقا والمغرب يرحب", "morocco"),
    ("زيارة الصحراء المغربية", "morocco"),
    ("القطيعة بين الجزائر وفرنسا", "france"),
    ("رفض التحدث بالفرنسية", "france"),
    ("اتفاقية لتسليم المطلوب", "extradition"),
    ("وتسليم الملطلوبين يتصدر المباحثات", "extradition"),
    ("طلب إسترداد المتهم", "extradition"),
]
_CONCEPTS = {
    "morocco": ConceptSpec.model_validate({"ar": ["مغرب"], "exclude": ["صلاة المغرب"]}),
    "france": ConceptSpec.model_validate({"ar": ["فرنسا", "فرنسي"]}),
    "extradition": ConceptSpec.model_validate(
        {"ar": [{"term": "تسليم المطلوبين", "fuzzy": 1}, "استرداد"]}
    ),
}
_ARABIC_MATCHER = Matcher(_CONCEPTS, {name: name for name in _CONCEPTS})


@st.composite
def _decorated(draw: st.DrawFn) -> tuple[str, str, str]:
    text, concept = draw(st.sampled_from(_MATCHING_ARABIC))
    size = len(text) + 1
    marks = draw(st.lists(st.sampled_from(_DECORATIONS), min_size=size, max_size=size))
    keep = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    pieces = zip(text + " ", marks, keep, strict=True)
    return text, "".join((mark if add else "") + char for char, mark, add in pieces), concept


@given(_decorated())
def test_decorating_arabic_never_loses_a_match(case: tuple[str, str, str]) -> None:
    plain, decorated, concept = case
    matches = _ARABIC_MATCHER.match(Document.from_plain_text(decorated), [concept])
    assert [m.watchlist for m in matches] == [concept]
    for hit in matches[0].hits:
        # The hit quotes the decorated text, and undecorated it is a piece of the plain text.
        assert "".join(c for c in hit.text if c not in _DECORATIONS) in plain


_LATIN_WORD = st.text(alphabet=st.sampled_from(_LATIN_LETTERS), min_size=2, max_size=8)
_ALLOWED_ENDINGS = ("", "s", "x", "e", "es")


@given(_LATIN_WORD, _LATIN_WORD, st.booleans())
def test_a_latin_term_never_matches_inside_a_longer_word(
    term: str, affix: str, before: bool
) -> None:
    longer = affix + term if before else term + affix
    matcher = Matcher({"c": ConceptSpec.model_validate({"fr": [term]})}, {"c": "c"})
    matched = bool(matcher.match(Document("2026", (f"1, {longer} 2.",))))
    key, term_key = normalise(longer), normalise(term)
    # The only longer words that match are the term's plural/feminine forms (docs/matching.md §3.3).
    assert matched == any(key == term_key + ending for ending in _ALLOWED_ENDINGS)
