"""Built-in concept presets: `{preset: country/MA}` stands for a country's aliases in ar/fr/en.

An analyst should not have to remember that Morocco is also الرباط, المغاربة and marocain.
Country names come from CLDR (babel), so they follow Unicode's spelling; capitals, demonyms,
other common names, match modes and exclude phrases are data this project maintains
(alerts/data/countries.yaml), because CLDR has none of them and the Arabic word mode cannot
derive broken plurals.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from babel import Locale

PRESET_KEY = "preset"
PRESET_LANGUAGES = ("ar", "fr", "en")
PRESET_FORM = "country/<ISO 3166-1 alpha-2 code>"
_COUNTRY = "country/"
_TERM_GROUPS = ("names", "demonyms", "capital")


@dataclass(frozen=True)
class Preset:
    """What a preset adds to a concept, in the shape config.yaml writes a concept."""

    name: str
    aliases: dict[str, list[dict[str, str]]]  # language → [{term, mode}]
    exclude: list[str]


@functools.cache
def _countries() -> dict[str, dict[str, Any]]:
    data = resources.files("alerts").joinpath("data", "countries.yaml").read_text("utf-8")
    return yaml.safe_load(data)


def country_codes() -> list[str]:
    """The ISO 3166-1 codes `country/…` presets exist for."""
    return sorted(_countries())


def preset_name(value: str) -> str:
    """The canonical name of a known preset (`country/ma` → `country/MA`), else ValueError
    showing the valid form and the known codes, since a typo here would silently match nothing."""
    kind, _, code = value.partition("/")
    canonical = _COUNTRY + code.strip().upper()
    if f"{kind.strip().lower()}/" == _COUNTRY and canonical[len(_COUNTRY) :] in _countries():
        return canonical
    raise ValueError(
        f"unknown preset {value!r}: write preset: {PRESET_FORM}, one of "
        + ", ".join(country_codes())
    )


def load_preset(name: str) -> Preset:
    """A known preset's aliases per language (CLDR name first) and its exclude phrases."""
    canonical = preset_name(name)
    code = canonical[len(_COUNTRY) :]
    country = _countries()[code]
    modes: dict[str, str] = country.get("modes", {})
    aliases = {}
    for language in PRESET_LANGUAGES:
        terms = [Locale(language).territories[code]]
        for group in _TERM_GROUPS:
            terms += country.get(group, {}).get(language, [])
        unique = list(dict.fromkeys(terms))
        aliases[language] = [{"term": t, "mode": modes.get(t, "word")} for t in unique]
    return Preset(canonical, aliases, list(country.get("exclude", [])))
