"""Watchlist matching as users rely on it (docs/matching.md): every case of matching_cases.yaml,
then what a match reports, how rules fail, and where phrases and NEAR stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from alerts.concepts import AliasSpec, ConceptSpec
from alerts.document import Document
from alerts.matcher import Hit, Matcher
from alerts.rules import RuleError, parse_rule, rule_concepts

DATA = Path(__file__).parent / "data"
CASES = yaml.safe_load((DATA / "matching_cases.yaml").read_text(encoding="utf-8"))
SEED = (DATA / "seed_article.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    concepts = {name: ConceptSpec.model_validate(spec) for name, spec in CASES["concepts"].items()}
    return Matcher(concepts, {w["name"]: w["rule"] for w in CASES["watchlists"]})


def _document(case: dict) -> Document:
    text = (DATA / case["file"]).read_text(encoding="utf-8") if "file" in case else case["text"]
    return Document.from_plain_text(text)


def _match(matcher: Matcher, text: str, watchlist: str) -> list:
    return matcher.match(Document.from_plain_text(text), [watchlist])


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_case(matcher: Matcher, case: dict) -> None:
    matches = matcher.match(_document(case), [case["watchlist"]])
    assert bool(matches) is case["expect"], case["why"]


# More cases in the spirit of the YAML ones: (id, watchlist, expect, text, why).
MORE_CASES = [
    ("P5", "mor", True, "رسالة وللمغرب", "و + لل (ل + ال)"),
    ("P6", "mor", True, "فبالمغرب", "ف + ب + ال"),
    ("I5", "fra", True, "الفرنسيون", "plural suffix يون"),
    ("I6", "offi", True, "مسئول والمسؤولين", "ؤ and ئ seats of hamza fold together"),
    ("I7", "ger", True, "بألمانيا", "أل of ألمانيا is not the article"),
    ("N3", "mor", False, "شارع غرب المدينة", "غرب is not مغرب"),
    ("N4", "fra", False, "البابا فرنسيس", "فرنسيس is not فرنسا + suffix"),
    ("N5", "mor", False, "روابط الاقتصاد", "no root matching (ربط)"),
    ("X2", "mor", False, "موعد أذان المغرب", "exclude: call to sunset prayer"),
    ("X3", "mor", False, "بعد مغرب الشمس", "exclude: sunset"),
    ("X6", "mor", False, "وزير خارجية المملكة العربية السعودية", "exclude: Saudi Arabia"),
    ("X9", "mor", True, "بعد صلاة المغرب في الرباط", "exclusion drops only its own hit"),
    ("X10", "fra", False, "Le Paris Saint-Germain", "Latin exclude across hyphens"),
    ("F7", "ext", True, "l’extradition", "elision splits words"),
    ("F8", "ext", True, "le Maroc extradera", "French stem of a future tense"),
    ("F9", "fra", False, "Francis Bacon", "no substring match"),
    ("E4", "usa", True, "the United States", "multi-word alias"),
    ("E5", "usa", False, "USA Today", "case-sensitive acronym is exact"),
    ("T5", "ext", True, "تسليم المطلوبن", "fuzzy deletion, anchored by تسليم"),
    ("T6", "ext", True, "تسلیم المطلوبين", "Persian yeh folds to Arabic yeh"),
    ("T7", "ext", False, "أكد استعداد المغرب", "never a single-word fuzzy match"),
    ("N6", "near5", True, "ترحيل كلمة كلمة كلمة كلمة كلمة المغرب", "NEAR is unordered"),
    ("N7", "near5", False, "المغرب كلمة كلمة كلمة كلمة كلمة كلمة ترحيل", "six tokens apart"),
    ("Q2", "phrase", False, "مكافحة ضد الإرهاب", "phrase words must be consecutive"),
]


@pytest.mark.parametrize(
    ("watchlist", "expect", "text", "why"),
    [case[1:] for case in MORE_CASES],
    ids=[case[0] for case in MORE_CASES],
)
def test_more_cases(matcher: Matcher, watchlist: str, expect: bool, text: str, why: str) -> None:
    assert bool(_match(matcher, text, watchlist)) is expect, why


# --- what a match reports ----------------------------------------------------------------------


def test_hit_quotes_the_original_text_with_diacritics(matcher: Matcher) -> None:
    doc = Document.from_plain_text("زيارة\n\nزَارَ الوَزِيرُ المَغْرِبَ أمس")
    [match] = matcher.match(doc, ["mor"])
    [hit] = match.hits
    assert hit == Hit("morocco", "مغرب", "المَغْرِبَ", fuzzy=False, offset=hit.offset)
    assert doc.text[hit.offset : hit.offset + len(hit.text)] == "المَغْرِبَ"


def test_offsets_index_document_text_across_title_and_paragraphs(matcher: Matcher) -> None:
    doc = Document("Paris et Rabat", ("La France et le Maroc.", "Une extradition vers la France."))
    [match] = matcher.match(doc, ["all3"])
    assert [(h.concept, h.text) for h in match.hits] == [
        ("france", "Paris"),
        ("france", "France"),
        ("morocco", "Maroc"),
        ("extradition", "extradition"),
        ("france", "France"),
    ]
    for hit in match.hits:
        assert doc.text[hit.offset : hit.offset + len(hit.text)] == hit.text
    assert [h.offset for h in match.hits] == sorted(h.offset for h in match.hits)


def test_fuzzy_hits_say_so_and_exact_ones_do_not(matcher: Matcher) -> None:
    [fuzzy] = _match(matcher, "وتسليم الملطلوبين يتصدر المباحثات", "ext")
    assert [(h.text, h.fuzzy) for h in fuzzy.hits] == [("وتسليم الملطلوبين", True)]
    [exact] = _match(matcher, "تسليم المطلوبين يتصدر المباحثات", "ext")
    assert [(h.text, h.fuzzy) for h in exact.hits] == [("تسليم المطلوبين", False)]


def test_a_single_word_is_never_matched_fuzzily(matcher: Matcher) -> None:
    assert not _match(matcher, "أكد استعداد المغرب للتعاون", "ext")  # استرداد is one edit away


def test_a_fuzzy_phrase_needs_one_exact_word(matcher: Matcher) -> None:
    assert not _match(matcher, "تسلييم الملطلوبين", "ext")


def test_hit_dict_is_the_webhook_shape(matcher: Matcher) -> None:
    [match] = _match(matcher, "استثمارات جديدة بالمغرب", "mor")
    assert match.hits[0].to_dict() == {
        "concept": "morocco",
        "alias": "مغرب",
        "text": "بالمغرب",
        "fuzzy": False,
        "offset": 16,
    }


def test_rule_phrase_hits_name_the_phrase(matcher: Matcher) -> None:
    [match] = _match(matcher, "لمكافحة الإرهاب والجريمة", "phrase")
    assert [(h.concept, h.alias, h.text) for h in match.hits] == [
        ("مكافحة الإرهاب", "مكافحة الإرهاب", "لمكافحة الإرهاب")
    ]


def test_not_ed_concepts_are_not_reported(matcher: Matcher) -> None:
    [match] = _match(matcher, "Le Maroc signe avec l'Espagne", "mor_not_fra")
    assert {h.concept for h in match.hits} == {"morocco"}
    assert not _match(matcher, "Le Maroc signe avec la France", "mor_not_fra")


def test_only_true_branches_of_or_are_reported() -> None:
    concepts = {
        "a": ConceptSpec.model_validate({"en": ["alpha"]}),
        "b": ConceptSpec.model_validate({"en": ["beta"]}),
        "c": ConceptSpec.model_validate({"en": ["gamma"]}),
    }
    matcher = Matcher(concepts, {"w": "(a AND c) OR b"})
    [match] = matcher.match(Document("alpha and beta", ()))
    assert [h.concept for h in match.hits] == ["b"]


def test_snippet_is_cut_between_words_around_the_best_hit(matcher: Matcher) -> None:
    filler = " ".join(f"كلمة{i}" for i in range(60))
    doc = Document("عنوان", (f"{filler} وتسليم الملطلوبين بين المغرب وفرنسا {filler}",))
    [match] = matcher.match(doc, ["all3"])
    snippet = match.snippet
    assert snippet.startswith("… ") and snippet.endswith(" …")
    assert "المغرب" in snippet and "وفرنسا" in snippet and "الملطلوبين" in snippet
    assert 150 <= len(snippet) <= 260
    words = set(doc.paragraphs[0].split())
    assert all(word in words for word in snippet.strip("… ").split())


def test_snippets_know_their_direction(matcher: Matcher) -> None:
    [arabic] = _match(matcher, "«المغرب» يرحب بالاتفاق", "mor")
    [french] = _match(matcher, "« 2026 » : le Maroc salue l’accord", "mor")
    assert (arabic.direction, french.direction) == ("rtl", "ltr")


def test_watchlists_come_back_in_construction_order(matcher: Matcher) -> None:
    doc = Document.from_plain_text("Le Maroc et la France")
    names = [m.watchlist for m in matcher.match(doc, ["fra", "mor", "ext"])]
    assert names == ["mor", "fra"]


def test_matching_scans_every_language_in_the_document(matcher: Matcher) -> None:
    doc = Document("Revue de presse", ("Le quotidien titre « تسليم المطلوبين » ce matin.",), "fr")
    assert matcher.match(doc, ["ext"])


def test_a_not_only_rule_matches_without_hits() -> None:
    concepts = {"france": ConceptSpec.model_validate({"fr": ["France"]})}
    matcher = Matcher(concepts, {"sans-france": "NOT france"})
    [match] = matcher.match(Document("Titre", ("Le Maroc signe un accord.", "Suite.")))
    assert match.hits == ()
    assert match.snippet == "Le Maroc signe un accord."
    assert not matcher.match(Document("La France", ()))


def test_a_lone_tatweel_is_no_token(matcher: Matcher) -> None:
    doc = Document.from_plain_text("طالب بتسليم ـ المطلوبين")
    [match] = matcher.match(doc, ["ext"])
    [hit] = match.hits
    assert hit.text == "بتسليم ـ المطلوبين"
    assert doc.text[hit.offset : hit.offset + len(hit.text)] == hit.text


def test_a_token_that_normalises_to_two_words_keeps_its_span(matcher: Matcher) -> None:
    doc = Document.from_plain_text("Demande d\u02bcextradition vers Paris")  # modifier apostrophe
    [match] = matcher.match(doc, ["ext"])
    assert [(h.text, h.offset) for h in match.hits] == [("d\u02bcextradition", 8)]


def test_plain_text_documents_drop_teasers() -> None:
    doc = Document.from_plain_text("\n  Titre  \n\nPremier\n-\nTeaser\nSecond\n-\n\nAutre teaser\n")
    assert doc.title == "Titre"
    assert doc.paragraphs == ("Premier", "Second")
    assert doc.text == "Titre\n\nPremier\n\nSecond"


# --- where matching stops: paragraphs, teasers, exclusions ---------------------------------------


def test_near_does_not_cross_paragraphs(matcher: Matcher) -> None:
    apart = Document("عنوان", ("وافق المغرب", "على تسليم المطلوبين"))
    together = Document("عنوان", ("وافق المغرب على تسليم المطلوبين",))
    assert not matcher.match(apart, ["near5"])
    assert matcher.match(together, ["near5"])


def test_near_counts_tokens_between_hits(matcher: Matcher) -> None:
    five = "المغرب " + " ".join(["كلمة"] * 5) + " ترحيل"
    six = "المغرب " + " ".join(["كلمة"] * 6) + " ترحيل"
    assert _match(matcher, five, "near5")
    assert not _match(matcher, six, "near5")


def test_phrase_does_not_cross_paragraphs(matcher: Matcher) -> None:
    assert not matcher.match(Document("عنوان", ("طالب الوزير بتسليم", "المطلوبين فورا")), ["ext"])
    assert not matcher.match(Document("بتسليم", ("المطلوبين فورا",)), ["ext"])


def test_seed_teasers_are_not_part_of_the_article(matcher: Matcher) -> None:
    doc = Document.from_plain_text(SEED)
    assert doc.title.startswith("باريس والرباط تعززان التعاون")
    assert "الجزائر" not in doc.text  # every mention of Algeria is in a teaser headline
    assert "ويعزز توقيع هذا الإعلان" in doc.text  # body lines after a teaser are kept
    assert not matcher.match(doc, ["alg"])
    assert matcher.match(doc, ["all3"])


def test_latin_exclude_phrases_and_other_mentions(matcher: Matcher) -> None:
    assert not _match(matcher, "Le Paris Saint-Germain gagne encore", "fra")
    assert _match(matcher, "Le Paris Saint-Germain gagne à Paris", "fra")


def test_exclusion_only_drops_the_hit_inside_it(matcher: Matcher) -> None:
    [match] = _match(matcher, "بعد صلاة المغرب زار الوزير المغرب", "mor")
    assert [h.offset for h in match.hits] == [27]


# --- rules: errors with positions ---------------------------------------------------------------

KNOWN = ("morocco", "france", "extradition")


@pytest.mark.parametrize(
    ("rule", "position", "words"),
    [
        ("morocco AND frnace", 12, "unknown concept 'frnace'"),
        ("morocco france", 8, "missing AND/OR"),
        ("morocco and france", 8, "upper-case"),
        ("(morocco AND france", 0, "unbalanced '('"),
        ("morocco AND france)", 18, "unbalanced ')'"),
        ("morocco AND", 11, "expected a concept"),
        ('NEAR/3(morocco, "تسليم)', 16, "unterminated"),
        ("NEAR(morocco, france)", 0, "NEAR/n"),
        ("", 0, "empty rule"),
    ],
)
def test_rule_errors_say_what_and_where(rule: str, position: int, words: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule, KNOWN)
    assert caught.value.position == position
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"position {position}: ")


@pytest.mark.parametrize(
    ("rule", "position"),
    [
        ("(" * 300 + "morocco" + ")" * 300, 50),
        ("NOT " * 1000 + "morocco", 200),
        ("NEAR/3(" * 200 + "morocco, france" + ")" * 200, 350),
    ],
    ids=["parentheses", "NOT", "NEAR"],
)
def test_a_rule_nested_hundreds_deep_is_an_error_not_a_crash(rule: str, position: int) -> None:
    """Rules come from the config and, in the web app, from a search box: nesting past Python's
    recursion limit must be a rule error with its position."""
    with pytest.raises(RuleError, match="nested more than 50 levels") as caught:
        parse_rule(rule, KNOWN)
    assert caught.value.position == position
    assert rule_concepts(parse_rule("(" * 49 + "morocco" + ")" * 49, KNOWN)) == {"morocco"}


def test_unknown_concept_lists_the_known_ones() -> None:
    with pytest.raises(RuleError, match=r"known: extradition, france, morocco"):
        parse_rule("frnace", KNOWN)


def test_matcher_names_the_watchlist_of_a_bad_rule() -> None:
    concepts = {"morocco": ConceptSpec.model_validate({"fr": ["Maroc"]})}
    with pytest.raises(RuleError) as caught:
        Matcher(concepts, {"ok": "morocco", "broken": "morocco OR france"})
    assert caught.value.watchlist == "broken"
    assert str(caught.value) == (
        "watchlist 'broken': position 11: unknown concept 'france' (known: morocco)"
    )


def test_rule_concepts_and_precedence() -> None:
    rule = parse_rule('NOT morocco OR france AND NEAR/2(extradition, "x y")', KNOWN)
    assert rule_concepts(rule) == {"morocco", "france", "extradition"}
    concepts = {name: ConceptSpec.model_validate({"en": [name]}) for name in KNOWN}
    matcher = Matcher(concepts, {"w": "morocco OR france AND extradition"})
    # AND binds tighter than OR: morocco alone is enough.
    assert matcher.match(Document("morocco", ()))
    assert not matcher.match(Document("france", ()))


# --- concept config ------------------------------------------------------------------------------


def test_concept_accepts_the_config_shape() -> None:
    spec = ConceptSpec.model_validate(
        {"ar": ["مغرب"], "en": [{"term": "US", "mode": "case"}], "exclude": ["صلاة المغرب"]}
    )
    assert spec.aliases == {
        "ar": [AliasSpec(term="مغرب")],
        "en": [AliasSpec(term="US", mode="case")],
    }
    assert spec.exclude == ["صلاة المغرب"]
    assert ConceptSpec.model_validate(spec.model_dump()) == spec


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"FR": ["Maroc"]}, "'FR'"),
        ({"french": ["Maroc"]}, "'french'"),
        ({"ar": [{"term": "مغرب", "mode": "stem"}]}, "no stemmer"),
        ({"fr": [{"term": "Mali", "mode": "proclitics"}]}, "Arabic-only"),
        ({"fr": [{"term": "Maroc", "fuzzy": 2}]}, "fuzzy"),
        ({"fr": ["..."]}, "no letters"),
    ],
)
def test_bad_concepts_are_config_errors(spec: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        ConceptSpec.model_validate(spec)
