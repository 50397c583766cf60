"""Watchlist matching throughput (docs/matching.md §7): prints its figures, asserts nothing.

Times are CPU time of this one process (one core), so other load on the machine barely shows.

1. Synthetic: 1,000-word articles against 1,000 and 10,000 generated aliases (Arabic words with
   proclitics and suffixes, French/English words, stems, phrases, fuzzy phrases): articles/s on one
   core (median of 5 runs, after one cold pass that fills the token cache, reported on its own),
   index build time, and the same for a naive baseline — one big regex alternation over the
   normalised aliases applied to the normalised text.
2. Real Arabic news (SaudiNewsNet, read from ../shared/data/saudinewsnet when present; never copied
   into the project): articles/s and words/s, cold and warm.
3. Hostile pages (issue 13): "Maroc " repeated, an exclude phrase repeated with no hit, and
   "Maroc et la France " repeated under NEAR/5, at 2k/4k/8k/16k repetitions: time (best of 3) and
   its growth per doubling, which stays near 2 when matching is linear in the hits.

Usage: python bench/matching.py [--data DIR] [--real-articles N] [--repetitions 2000,4000,...]
                                [--hostile-only]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import statistics
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import snowballstemmer

from alerts.concepts import ConceptSpec
from alerts.document import Document
from alerts.matcher import Matcher
from alerts.normalize import normalise

T = TypeVar("T")
ARTICLE_WORDS = 1_000
PARAGRAPH_WORDS = 80
ARTICLES = 40
RUNS = 5
HOSTILE_RUNS = 5
ALIASES_PER_CONCEPT = 10
ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
LATIN_LETTERS = "abcdefghijklmnopqrstuvwxyzéè"
PROCLITICS = ["", "", "", "و", "ب", "ال", "بال", "وال", "لل"]
SUFFIXES = ["", "", "", "ه", "ها", "ين", "ات", "يه"]
PROJECT_CONCEPTS = {
    "morocco": {
        "ar": ["مغرب", "المغاربة", "الرباط", "المملكة المغربية"],
        "fr": ["Maroc", "marocain", "Rabat"],
        "en": ["Morocco", "Moroccan", "Rabat"],
        "exclude": ["صلاة المغرب", "أذان المغرب", "المملكة المتحدة"],
    },
    "france": {
        "ar": ["فرنسا", "فرنسي", "باريس"],
        "fr": ["France", "français", "Paris"],
        "en": ["France", "French", "Paris"],
        "exclude": ["باريس سان جيرمان", "Paris Saint-Germain"],
    },
    "extradition": {
        "ar": [{"term": "تسليم المطلوبين", "fuzzy": 1}, "تسليم المجرمين", "ترحيل", "استرداد"],
        "fr": [{"term": "extradition", "mode": "stem"}, {"term": "extrader", "mode": "stem"}],
        "en": [{"term": "extradition", "mode": "stem"}, {"term": "extradite", "mode": "stem"}],
    },
}
PROJECT_RULES = {
    "morocco-france-extradition": (
        '(morocco AND france) AND (extradition OR NEAR/10(france, "تسليم"))'
    ),
    "morocco-france": "morocco AND france",
}


def _word(rng: random.Random, letters: str, low: int, high: int) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(low, high)))


def synthetic_concepts(count: int, seed: int = 7) -> dict[str, dict]:
    """`count` aliases in concepts of ten; the first 1,000 are the same for every count."""
    rng = random.Random(seed)
    concepts: dict[str, dict] = {}
    for number in range(count):
        kind = rng.random()
        if kind < 0.45:
            language, alias = "ar", _word(rng, ARABIC_LETTERS, 4, 7)
        elif kind < 0.55:
            phrase = f"{_word(rng, ARABIC_LETTERS, 4, 7)} {_word(rng, ARABIC_LETTERS, 5, 7)}"
            language, alias = "ar", {"term": phrase, "fuzzy": 1}
        elif kind < 0.60:
            language, alias = "ar", {"term": _word(rng, ARABIC_LETTERS, 4, 6), "mode": "proclitics"}
        elif kind < 0.80:
            language, alias = rng.choice(["fr", "en"]), _word(rng, LATIN_LETTERS, 5, 9)
        elif kind < 0.95:
            term = _word(rng, LATIN_LETTERS, 6, 10) + rng.choice(["ation", "er", "ique", "ed"])
            language, alias = rng.choice(["fr", "en"]), {"term": term, "mode": "stem"}
        else:
            acronym = _word(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 2, 4)
            language, alias = "en", {"term": acronym, "mode": "case"}
        concept = concepts.setdefault(f"c{number // ALIASES_PER_CONCEPT}", {})
        concept.setdefault(language, []).append(alias)
    return concepts


def synthetic_rules(concepts: dict[str, dict]) -> dict[str, str]:
    names = list(concepts)
    rules = {name: name for name in names}
    for left, right in zip(names[::2], names[1::2], strict=False):
        rules[f"{left}-and-{right}"] = f"{left} AND NOT {right}"
        rules[f"{left}-near-{right}"] = f"NEAR/8({left}, {right})"
    return rules


def _terms(concepts: dict[str, dict]) -> list[str]:
    return [
        alias if isinstance(alias, str) else alias["term"]
        for spec in concepts.values()
        for language, aliases in spec.items()
        if language != "exclude"
        for alias in aliases
    ]


def synthetic_articles(concepts: dict[str, dict], seed: int = 11) -> list[Document]:
    """1,000-word articles, Arabic and Latin, Zipf-like vocabulary, ~2% words from aliases."""
    rng = random.Random(seed)
    vocabulary = [_word(rng, ARABIC_LETTERS, 3, 8) for _ in range(20_000)]
    vocabulary += [_word(rng, LATIN_LETTERS, 3, 10) for _ in range(10_000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    alias_words = [w for term in _terms(concepts) for w in term.split()]
    articles = []
    for _ in range(ARTICLES):
        words = rng.choices(vocabulary, weights, k=ARTICLE_WORDS)
        for position in rng.sample(range(ARTICLE_WORDS), ARTICLE_WORDS // 50):
            word = rng.choice(alias_words)
            if word[0] in ARABIC_LETTERS:
                word = rng.choice(PROCLITICS) + word + rng.choice(SUFFIXES)
            words[position] = word
        paragraphs = [
            " ".join(words[start : start + PARAGRAPH_WORDS]) + "."
            for start in range(PARAGRAPH_WORDS, ARTICLE_WORDS, PARAGRAPH_WORDS)
        ]
        articles.append(Document(" ".join(words[:PARAGRAPH_WORDS]), tuple(paragraphs)))
    return articles


class NaiveMatcher:
    """The baseline: every normalised alias in one regex alternation over the normalised text."""

    def __init__(self, concepts: dict[str, dict]) -> None:
        terms = sorted({normalise(term) for term in _terms(concepts)}, key=len, reverse=True)
        self.pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, terms)) + r")\b")

    def match(self, doc: Document) -> int:
        return len(self.pattern.findall(normalise(doc.text)))


def _timed(action: Callable[[], object]) -> float:
    """CPU seconds of this process: one core's throughput, whatever else the machine runs. The
    cyclic garbage collector is off while it runs, as in timeit: a collection that happens to
    fall inside one run walks the whole heap and says nothing about the code timed."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        action()
        return time.process_time() - start
    finally:
        gc.enable()


def _validated(concepts: dict[str, dict]) -> dict[str, ConceptSpec]:
    return {name: ConceptSpec.model_validate(spec) for name, spec in concepts.items()}


def _built(build: Callable[[], T]) -> tuple[T, float]:
    start = time.process_time()
    built = build()
    return built, time.process_time() - start


def _rate(documents: list[Document], match: Callable[[Document], object]) -> float:
    return len(documents) / _timed(lambda: [match(doc) for doc in documents])


def _median_rate(documents: list[Document], match: Callable[[Document], object]) -> float:
    return statistics.median(_rate(documents, match) for _ in range(RUNS))


def synthetic(counts: tuple[int, ...]) -> None:
    largest = synthetic_concepts(max(counts))
    articles = synthetic_articles(synthetic_concepts(min(counts)))
    print(f"# Synthetic: {ARTICLES} articles of {ARTICLE_WORDS} words, median of {RUNS} runs")
    rates = {}
    for count in counts:
        concepts = dict(list(largest.items())[: count // ALIASES_PER_CONCEPT])
        specs, validate = _built(lambda concepts=concepts: _validated(concepts))
        rules = synthetic_rules(concepts)
        matcher, build = _built(lambda specs=specs, rules=rules: Matcher(specs, rules))
        hits = sum(len(m.hits) for doc in articles for m in matcher.match(doc))
        cold_matcher = Matcher(specs, rules)
        cold = _rate(articles, cold_matcher.match)
        warm = _median_rate(articles, matcher.match)
        naive, naive_build = _built(lambda concepts=concepts: NaiveMatcher(concepts))
        naive_rate = _median_rate(articles[:5], naive.match)
        rates[count] = warm
        print(
            f"{count:>6} aliases, {len(rules)} watchlists: index built in {build:.3f} s"
            f" (+{validate:.3f} s config validation);"
            f" {warm:,.0f} articles/s warm, {cold:,.0f} cold (first pass), {hits} hits\n"
            f"{'':>6} naive regex: built in {naive_build:.3f} s; {naive_rate:,.1f} articles/s"
            f" -> index is {warm / naive_rate:,.0f}x faster"
        )
    low, high = min(counts), max(counts)
    print(f"slowdown {low:,} -> {high:,} aliases: {rates[low] / rates[high]:.2f}x (target <= 1.5x)")


def real_articles(data: Path, limit: int) -> Iterator[Document]:
    for archive in sorted(data.glob("*.zip")):
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                for item in json.loads(opened.read(name)):
                    paragraphs = tuple(p for p in item.get("content", "").splitlines() if p.strip())
                    yield Document(item.get("title", ""), paragraphs, "ar")
                    limit -= 1
                    if limit == 0:
                        return


def real(data: Path, limit: int) -> None:
    print("# Real Arabic news (SaudiNewsNet), project concepts + 1,000 synthetic aliases")
    documents = list(real_articles(data, limit)) if data.is_dir() else []
    if not documents:
        print(f"skipped: no SaudiNewsNet archives under {data}")
        return
    concepts = PROJECT_CONCEPTS | synthetic_concepts(1_000)
    matcher = Matcher(
        _validated(concepts), PROJECT_RULES | synthetic_rules(synthetic_concepts(1_000))
    )
    words = sum(len(doc.text.split()) for doc in documents)
    cold = _timed(lambda: [matcher.match(doc) for doc in documents])
    warm = _timed(lambda: [matcher.match(doc) for doc in documents])
    matched = sum(bool(matcher.match(doc, list(PROJECT_RULES))) for doc in documents)
    print(
        f"{len(documents):,} articles, {words / len(documents):,.0f} words on average;"
        f" {matched} match a project watchlist\n"
        f"cold: {len(documents) / cold:,.0f} articles/s, {words / cold:,.0f} words/s\n"
        f"warm: {len(documents) / warm:,.0f} articles/s, {words / warm:,.0f} words/s"
        f" = {words / warm / ARTICLE_WORDS:,.0f} articles/s of {ARTICLE_WORDS:,} words"
    )


HOSTILE_RULES = {"morocco": "morocco", "near": "NEAR/5(morocco, france)"}
HOSTILE_INPUTS = {
    "repeated word": ("morocco", "Maroc "),
    "repeated exclude": ("morocco", "صلاة المغرب "),
    "NEAR/5 pairs": ("near", "Maroc et la France "),
}


def hostile(repetitions: list[int]) -> None:
    print(f"# Hostile pages, project concepts: CPU time, best of {HOSTILE_RUNS}")
    matcher = Matcher(_validated(PROJECT_CONCEPTS), HOSTILE_RULES)
    for label, (watchlist, text) in HOSTILE_INPUTS.items():
        matcher.match(Document("", (text,)), [watchlist])
        previous = None
        cells = []
        for count in repetitions:
            doc = Document("", (text * count,))
            seconds = min(
                _timed(lambda doc=doc, wanted=[watchlist]: matcher.match(doc, wanted))
                for _ in range(HOSTILE_RUNS)
            )
            growth = f" ({seconds / previous:.2f}x)" if previous else ""
            cells.append(f"{count:,}: {seconds:.3f} s{growth}")
            previous = seconds
        page = len(text.encode()) * repetitions[-1] // 1000
        print(f"{label:<17} {'; '.join(cells)}  [largest page {page:,} KB of UTF-8]")


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "saudinewsnet"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default, help="SaudiNewsNet folder")
    parser.add_argument("--real-articles", type=int, default=5_000)
    parser.add_argument("--repetitions", default="2000,4000,8000,16000", help="hostile pages")
    parser.add_argument("--hostile-only", action="store_true", help="only the hostile pages")
    args = parser.parse_args()
    stemmer = type(snowballstemmer.stemmer("english")).__module__
    print(f"Python {sys.version.split()[0]}, one core; Snowball backend: {stemmer}")
    if not args.hostile_only:
        synthetic((1_000, 10_000))
        print()
        real(args.data, args.real_articles)
        print()
    hostile([int(count) for count in args.repetitions.split(",")])


if __name__ == "__main__":
    main()
