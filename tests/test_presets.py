"""Country presets: `{preset: country/MA}` as an analyst writes it, matched in ar/fr/en."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.concepts import ConceptSpec
from alerts.document import Document
from alerts.matcher import Matcher
from alerts.presets import PRESET_LANGUAGES, country_codes, load_preset
from tests.support import newswatch

MAGHREB_SAHEL_MIDDLE_EAST = "MA DZ TN LY MR SN ML NE TD SD EG SA AE QA IQ SY LB JO IL PS IR TR"
EU = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
G20 = "AR AU BR CA CN FR DE IN ID IT JP MX RU SA ZA KR TR GB US"


def _matcher(**concepts: dict) -> Matcher:
    return Matcher(concepts, {name: name for name in concepts})


def _hits(matcher: Matcher, text: str, watchlist: str) -> list[str]:
    found = matcher.match(Document.from_plain_text(text), [watchlist])
    return [hit.text for match in found for hit in match.hits]


@pytest.fixture(scope="module")
def morocco() -> Matcher:
    return _matcher(morocco={"preset": "country/MA", "fr": ["Chérifien"]})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("زيارة الصحراء المغربية", ["المغربية"]),
        ("المغاربة المقيمون في الخارج", ["المغاربة"]),
        ("وصل الوفد بالمغرب ثم إلى الرباط", ["بالمغرب", "الرباط"]),
        ("اتفاقية مع المملكة المغربية", ["المملكة المغربية"]),
        ("Les Marocaines de Rabat", ["Marocaines", "Rabat"]),
        ("Le Maroc et la France", ["Maroc"]),
        ("Moroccans abroad and Morocco's king", ["Moroccans", "Morocco"]),
    ],
)
def test_country_preset_matches_inflected_names_demonyms_and_capital(
    morocco: Matcher, text: str, expected: list[str]
) -> None:
    assert _hits(morocco, text, "morocco") == expected


def test_listed_aliases_add_to_the_preset(morocco: Matcher) -> None:
    assert _hits(morocco, "le royaume chérifien", "morocco") == ["chérifien"]
    assert _hits(_matcher(m={"preset": "country/MA"}), "le royaume chérifien", "m") == []


def test_preset_exclude_phrases_apply_and_listed_ones_add(morocco: Matcher) -> None:
    assert _hits(morocco, "بعد صلاة المغرب", "morocco") == []
    extra = _matcher(m={"preset": "country/MA", "exclude": ["Rabat Street"]})
    assert _hits(extra, "he lives on Rabat Street", "m") == []
    assert _hits(extra, "صلاة المغرب", "m") == []


@pytest.mark.parametrize(
    ("preset", "text", "expected"),
    [
        ("country/TR", "الأتراك والحكومة التركية", ["الأتراك", "التركية"]),
        ("country/DE", "الألمان في ألمانيا", ["الألمان", "ألمانيا"]),
        ("country/DZ", "la diplomatie algérienne à Alger", ["algérienne", "Alger"]),
        ("country/US", "US officials in Washington", ["US", "Washington"]),
        ("country/US", "let us talk about Latin America", []),
        ("country/TR", "a turkey for Thanksgiving", []),
        ("country/ML", "الجيش في مالي وبمالي", ["مالي", "وبمالي"]),
        ("country/ML", "الوضع المالي ووزير المالية", []),
        ("country/BG", "الطرق الصوفية", []),
        ("country/FR", "Paris Saint-Germain gagne", []),
        ("country/FR", "قالت وكالة الصحافة الفرنسية إن المغرب", []),
        ("country/JO", "أردنا أن نذهب إلى الأردن", ["الأردن"]),
    ],
)
def test_presets_keep_their_ambiguous_terms_apart(preset: str, text: str, expected: list) -> None:
    assert _hits(_matcher(c={"preset": preset}), text, "c") == expected


def test_presets_cover_the_regions_analysts_follow() -> None:
    wanted = set(f"{MAGHREB_SAHEL_MIDDLE_EAST} {EU} {G20}".split())
    assert wanted <= set(country_codes())


def test_every_preset_has_names_in_each_language_and_every_term_matches_itself() -> None:
    concepts = {code: {"preset": f"country/{code}"} for code in country_codes()}
    matcher = _matcher(**concepts)
    for code in country_codes():
        preset = load_preset(f"country/{code}")
        assert set(preset.aliases) == set(PRESET_LANGUAGES)
        for language, aliases in preset.aliases.items():
            assert aliases, f"{code} has no {language} alias"
            for alias in aliases:
                matched = [m.watchlist for m in matcher.match(Document(alias["term"], ()))]
                assert code in matched, f"{code}: {alias['term']!r} does not match itself"


def test_preset_code_is_case_insensitive() -> None:
    assert ConceptSpec.model_validate({"preset": "country/ma"}).preset == "country/MA"


@pytest.mark.parametrize("preset", ["country/ZZ", "region/maghreb", "MA"])
def test_unknown_preset_names_the_valid_form(preset: str) -> None:
    with pytest.raises(ValidationError) as error:
        ConceptSpec.model_validate({"preset": preset})
    assert "country/<ISO 3166-1 alpha-2 code>" in str(error.value)


def test_check_reports_an_unknown_preset_with_its_path(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "concepts:\n  morocco: {preset: country/MAR}\n  france: {preset: country/FR}\n"
        "watchlists:\n  - {name: mf, rule: morocco AND france}\n",
        encoding="utf-8",
    )

    result = newswatch("check", "--config", str(config))

    assert result.returncode == 2
    assert "concepts.morocco.preset: unknown preset 'country/MAR'" in result.stderr
    assert "country/<ISO 3166-1 alpha-2 code>" in result.stderr
    assert "france" not in result.stderr
