"""Concepts as users write them (config models) and what each alias word means
(docs/matching.md §3, §4).

A concept is aliases per language plus exclude phrases. Each alias word compiles to a
`WordPattern`: a kind (which rule applies) and a key. `token_keys` gives, for an article word, the
keys it can stand for under a kind; a word matches a pattern when the pattern's key is among them.
Both sides of every rule live here so they cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import snowballstemmer
from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from alerts.normalize import (
    WordForms,
    arabic_alias_key,
    arabic_token_keys,
    has_plain_article,
    raw_token_pattern,
    strip_accents,
    word_forms,
)
from alerts.presets import PRESET_KEY, Preset, load_preset, preset_name

Mode = Literal["word", "proclitics", "exact", "stem", "case"]

ARABIC = "ar"
EXCLUDE_KEY = "exclude"
FUZZY_MIN_LETTERS = 5
LATIN_ENDINGS = ("s", "x", "e", "es")

_ISO_639_1_CODES = (
    "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da"
    " de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy"
    " hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg"
    " li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or"
    " os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta"
    " te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
)
ISO_639_1 = frozenset(_ISO_639_1_CODES.split(" "))
_SNOWBALL = {
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "eo": "esperanto",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "st": "sesotho",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
_LANGUAGE_KEY = re.compile(r"[a-z]{2}")
_ARABIC_SCRIPT_STEMMERS = frozenset({"fa"})

# Word-pattern kinds; a stem kind is "stem:<language>".
ARABIC_WORD = "arabic"
ARABIC_PROCLITICS = "arabic-proclitics"
EXACT = "exact"
LATIN_WORD = "latin"
CASE = "case"
_STEM_PREFIX = "stem:"


@functools.cache
def stem_languages() -> dict[str, str]:
    """ISO code → Snowball algorithm for the stemmers this install has (Arabic is excluded)."""
    available = set(snowballstemmer.algorithms())
    return {code: name for code, name in _SNOWBALL.items() if name in available}


@functools.cache
def _stemmer(language: str) -> Any:
    return snowballstemmer.stemmer(stem_languages()[language])


def _stem_key(language: str, forms: WordForms) -> str:
    """Stem the case-folded, still-accented word, then drop accents (docs/matching.md §3.4)."""
    return strip_accents(_stemmer(language).stemWord(forms.folded))


def stem_language(kind: str) -> str | None:
    """The language of a stem kind, None for other kinds."""
    return kind.removeprefix(_STEM_PREFIX) if kind.startswith(_STEM_PREFIX) else None


class AliasSpec(BaseModel):
    """One way a concept is written in one language, and how loosely it may match (`mode`,
    `fuzzy`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    term: str
    mode: Mode = "word"
    fuzzy: Literal[0, 1] = 0

    @model_validator(mode="after")
    def _has_words(self) -> AliasSpec:
        if not _alias_words(self.term):
            raise ValueError(f"alias {self.term!r} has no letters or digits to match")
        return self


class ConceptSpec(BaseModel):
    """A concept as the YAML writes it: aliases per language (or a preset's), and phrases whose
    hits do not count for it (`exclude`)."""

    model_config = ConfigDict(extra="forbid")

    aliases: dict[str, list[AliasSpec]]
    exclude: list[str] = []
    preset: Annotated[str, AfterValidator(preset_name)] | None = None  # already in `aliases`

    @model_validator(mode="before")
    @classmethod
    def _from_config_shape(cls, data: Any) -> Any:
        """Accept `{preset: …, ar: [...], fr: [...], exclude: [...]}` as written in config.yaml.

        Listed aliases and exclude phrases add to the preset's: a preset is a starting point the
        analyst extends (`{preset: country/MA, fr: [chérifien]}`), never a closed list.
        """
        if not isinstance(data, Mapping) or "aliases" in data:
            return data
        preset = _known_preset(data.get(PRESET_KEY))
        aliases = (
            {lang: list(entries) for lang, entries in preset.aliases.items()} if preset else {}
        )
        for language, entries in data.items():
            if language in (EXCLUDE_KEY, PRESET_KEY):
                continue
            _check_language(language)
            listed = [entries] if isinstance(entries, str | Mapping) else entries
            aliases.setdefault(language, [])
            aliases[language] += [{"term": e} if isinstance(e, str) else e for e in listed]
        exclude = data.get(EXCLUDE_KEY, [])
        if preset and isinstance(exclude, list):
            exclude = [*preset.exclude, *exclude]
        return {"aliases": aliases, "exclude": exclude, PRESET_KEY: data.get(PRESET_KEY)}

    @model_validator(mode="after")
    def _check_modes(self) -> ConceptSpec:
        if not any(self.aliases.values()):
            raise ValueError("a concept needs at least one alias")
        stemmable = stem_languages()
        for language, aliases in self.aliases.items():
            _check_language(language)
            for alias in aliases:
                if alias.mode == "proclitics" and language != ARABIC:
                    raise ValueError(
                        f"alias {alias.term!r} ({language}): mode 'proclitics' is Arabic-only"
                    )
                if alias.mode == "stem" and language not in stemmable:
                    raise ValueError(
                        f"alias {alias.term!r} ({language}): no stemmer for {language!r}"
                        " (Arabic is never stemmed; use mode 'word')"
                    )
        for phrase in self.exclude:
            if not _alias_words(phrase):
                raise ValueError(f"exclude {phrase!r} has no letters or digits to match")
        return self


def _known_preset(value: Any) -> Preset | None:
    """The preset named by `value`, or None (an unknown name is reported by the `preset` field)."""
    try:
        return load_preset(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _check_language(key: Any) -> None:
    if not (isinstance(key, str) and _LANGUAGE_KEY.fullmatch(key) and key in ISO_639_1):
        raise ValueError(
            f"unknown key {key!r} in concept: expected 'preset', 'exclude' or a lowercase ISO 639-1"
            " language code such as ar, fr, en"
        )


@dataclass(frozen=True, slots=True)
class WordPattern:
    """One alias word: a token matches it when `key` is among `token_keys(kind, token)`."""

    kind: str
    key: str
    fuzzy: bool  # may be one edit away (only inside a fuzzy phrase, only 5+ letter keys)


@dataclass(frozen=True)
class CompiledAlias:
    """An alias, exclude phrase or rule phrase, ready to be indexed word by word."""

    concept: str  # reported as Hit.concept (a rule phrase reports itself)
    term: str  # as configured, reported as Hit.alias
    words: tuple[WordPattern, ...]
    fuzzy: bool


def _alias_words(term: str) -> list[tuple[bool, WordForms]]:
    """(starts with a plain ال, forms) for each word of a term, as written."""
    words = []
    for match in raw_token_pattern(term).finditer(term):
        article = has_plain_article(match.group())
        words += [(article and i == 0, f) for i, f in enumerate(word_forms(match.group()))]
    return words


def _word_kind(language: str, mode: Mode, forms: WordForms) -> str:
    if mode == "word":
        return ARABIC_WORD if language == ARABIC and forms.arabic else LATIN_WORD
    if mode == "proclitics":
        return ARABIC_PROCLITICS if forms.arabic else EXACT
    if mode == "stem":
        return _STEM_PREFIX + language
    return CASE if mode == "case" else EXACT


def _alias_key(kind: str, article: bool, forms: WordForms) -> str:
    if kind in (ARABIC_WORD, ARABIC_PROCLITICS):
        return arabic_alias_key(forms.key, article=article, suffix=kind == ARABIC_WORD)
    if kind == CASE:
        return forms.cased
    language = stem_language(kind)
    return forms.key if language is None else _stem_key(language, forms)


def _compile(
    concept: str, term: str, kinds: list[str], words: list[tuple[bool, WordForms]], fuzzy: bool
) -> CompiledAlias:
    patterns = []
    for kind, (article, forms) in zip(kinds, words, strict=True):
        key = _alias_key(kind, article, forms)
        patterns.append(WordPattern(kind, key, fuzzy and len(key) >= FUZZY_MIN_LETTERS))
    return CompiledAlias(concept, term, tuple(patterns), fuzzy)


def compile_alias(concept: str, language: str, alias: AliasSpec) -> CompiledAlias:
    words = _alias_words(alias.term)
    kinds = [_word_kind(language, alias.mode, forms) for _, forms in words]
    # A single-word fuzzy match is never made: one edit turns استرداد into استعداد.
    fuzzy = bool(alias.fuzzy) and len(words) > 1
    return _compile(concept, alias.term, kinds, words, fuzzy)


def compile_exclude(concept: str, phrase: str) -> CompiledAlias:
    """Exclude words match whole (Arabic ones with proclitics only): they name a fixed phrase."""
    words = _alias_words(phrase)
    kinds = [ARABIC_PROCLITICS if forms.arabic else EXACT for _, forms in words]
    return _compile(concept, phrase, kinds, words, fuzzy=False)


def compile_phrase(phrase: str) -> CompiledAlias:
    """A quoted rule phrase: a one-off alias in the default mode of each word's script."""
    words = _alias_words(phrase)
    kinds = [ARABIC_WORD if forms.arabic else LATIN_WORD for _, forms in words]
    return _compile(phrase, phrase, kinds, words, fuzzy=False)


def compile_concept(
    name: str, spec: ConceptSpec
) -> tuple[list[CompiledAlias], list[CompiledAlias]]:
    """(aliases, exclude phrases) of a concept."""
    aliases = [
        compile_alias(name, language, alias)
        for language, entries in spec.aliases.items()
        for alias in entries
    ]
    return aliases, [compile_exclude(name, phrase) for phrase in spec.exclude]


def token_keys(kind: str, forms: WordForms) -> list[str]:
    """The keys an article word stands for under a kind (what an index is looked up with)."""
    if kind == ARABIC_WORD:
        return arabic_token_keys(forms.key, suffix=True) if forms.arabic else []
    if kind == ARABIC_PROCLITICS:
        return arabic_token_keys(forms.key, suffix=False) if forms.arabic else []
    if kind == LATIN_WORD:
        key = forms.key
        bases = [key[: -len(e)] for e in LATIN_ENDINGS if len(key) > len(e) and key.endswith(e)]
        return [key, *bases]
    if kind == CASE:
        return [forms.cased]
    language = stem_language(kind)
    if language is None:
        return [forms.key]
    # A stemmer only reads words of its own script: Arabic words never reach a French stem.
    if forms.arabic != (language in _ARABIC_SCRIPT_STEMMERS):
        return []
    return [_stem_key(language, forms)]
