"""Near-duplicate detection (issue 4): prints its figures, asserts nothing.

1. Quality on a labelled pair set generated here, at run time, from public text read from
   ../shared/data (never copied into the project):
   - positives: real republications in SaudiNewsNet (the same headline of five words or more in
     two different papers), and edited copies of SaudiNewsNet (Arabic) and AEB (English) bodies —
     sentences dropped or added, title changed, byline/credit boilerplate changed, paragraphs
     reordered, and mixes of these;
   - hard negatives: two different stories of the same paper wrapped in that paper's template
     (same byline, same credit lines), and the closest other story on the same topic (highest
     share of common words, different headline, different day).
   Precision and recall of the exact content hash alone, and of each shingling (character
   5-grams, word 3-grams, word 5-grams) over a range of thresholds, candidates found through the
   LSH index exactly as the daemon finds them.
2. Speed and memory of the index with 100,000 stored stories: LSH query time (median over
   1,000 queries), rebuild from the database at start, memory per story; signature time per
   article.

Usage: python bench/dedup.py [--data DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crawler.config import DedupConfig
from crawler.dedup import (
    NUM_PERM,
    NearDuplicateIndex,
    char_shingles,
    fingerprint,
    flat_text,
    signature_of_shingles,
    similarity,
)
from crawler.store import open_db
from crawler.stories import Stories


def word_shingles(flat: str, size: int) -> set[str]:
    words = flat.split()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


# The daemon's choice first; word n-grams are what it was measured against.
SHINGLINGS: dict[str, Callable[[str], set[str]]] = {
    "char5": char_shingles,
    "word3": lambda flat: word_shingles(flat, 3),
    "word5": lambda flat: word_shingles(flat, 5),
}


def signature(title: str, paragraphs: list[str], shingling: str = "char5") -> bytes | None:
    return signature_of_shingles(SHINGLINGS[shingling](flat_text(title, paragraphs)))


THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
STORED = 100_000
QUERIES = 1_000
RUNS = 5
_SENTENCE = re.compile(r"(?<=[.!?؟])\s+")
CREDITS = {
    "en": ["Reporting by staff writers; editing by the news desk.", "(Wire services)"],
    "ar": ["(واس)", "المصدر: وكالة الأنباء"],
}
BYLINES = {"en": ["By a staff reporter", "Agency report"], "ar": ["الرياض - واس", "جدة - متابعات"]}


@dataclass(frozen=True)
class Doc:
    title: str
    paragraphs: tuple[str, ...]
    source: str
    day: str
    language: str


@dataclass(frozen=True)
class Pair:
    a: Doc
    b: Doc
    same: bool
    kind: str


def _paragraphs(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split("\n") if p.strip())


def load_saudinewsnet(folder: Path) -> list[Doc]:
    docs = []
    for path in sorted(folder.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                for item in json.loads(archive.read(name)):
                    paragraphs = _paragraphs(item["content"])
                    if sum(len(p) for p in paragraphs) >= 400:
                        title = " ".join(item["title"].split())
                        docs.append(Doc(title, paragraphs, item["source"], path.stem, "ar"))
    return docs


def load_aeb(folder: Path) -> list[Doc]:
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    docs = []
    for key, item in truth.items():
        paragraphs = _paragraphs(item["articleBody"])
        if sum(len(p) for p in paragraphs) >= 400:
            docs.append(Doc(paragraphs[0][:80], paragraphs, key, key, "en"))
    return docs


def _sentences(doc: Doc) -> list[list[str]]:
    return [[s for s in _SENTENCE.split(p) if s] for p in doc.paragraphs]


def _join(paragraphs: list[list[str]]) -> tuple[str, ...]:
    return tuple(" ".join(p) for p in paragraphs if p)


def drop_sentences(doc: Doc, rng: random.Random, other: Doc) -> Doc:
    paragraphs = _sentences(doc)
    flat = [(i, j) for i, p in enumerate(paragraphs) for j in range(len(p))]
    for i, j in sorted(rng.sample(flat, max(1, len(flat) // 8)), reverse=True):
        del paragraphs[i][j]
    return Doc(doc.title, _join(paragraphs), doc.source + "-copy", doc.day, doc.language)


def add_sentences(doc: Doc, rng: random.Random, other: Doc) -> Doc:
    paragraphs = _sentences(doc)
    extra = [s for p in _sentences(other) for s in p]
    for _ in range(max(1, sum(map(len, paragraphs)) // 10)):
        paragraphs[rng.randrange(len(paragraphs))].append(rng.choice(extra))
    return Doc(doc.title, _join(paragraphs), doc.source + "-copy", doc.day, doc.language)


def new_title(doc: Doc, rng: random.Random, other: Doc) -> Doc:
    return Doc(other.title, doc.paragraphs, doc.source + "-copy", doc.day, doc.language)


def boilerplate(doc: Doc, rng: random.Random, other: Doc) -> Doc:
    byline, credit = rng.choice(BYLINES[doc.language]), rng.choice(CREDITS[doc.language])
    paragraphs = (byline, *doc.paragraphs, credit)
    return Doc(doc.title, paragraphs, doc.source + "-copy", doc.day, doc.language)


def reorder(doc: Doc, rng: random.Random, other: Doc) -> Doc:
    paragraphs = list(doc.paragraphs)
    rng.shuffle(paragraphs)
    return Doc(doc.title, tuple(paragraphs), doc.source + "-copy", doc.day, doc.language)


def mixed(doc: Doc, rng: random.Random, other: Doc) -> Doc:
    for edit in rng.sample([drop_sentences, add_sentences, new_title, boilerplate, reorder], 3):
        doc = edit(doc, rng, other)
    return doc


EDITS: list[Callable[[Doc, random.Random, Doc], Doc]] = [
    drop_sentences,
    add_sentences,
    new_title,
    boilerplate,
    reorder,
    mixed,
]


def republications(docs: list[Doc], limit: int) -> list[Pair]:
    by_title: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        if len(doc.title.split()) >= 5:
            by_title[doc.title].append(doc)
    pairs = []
    for group in by_title.values():
        first = group[0]
        other = next((d for d in group[1:] if d.source != first.source), None)
        if other is not None:
            pairs.append(Pair(first, other, True, "real republication"))
    return pairs[:limit]


def edited_copies(docs: list[Doc], rng: random.Random, count: int) -> list[Pair]:
    pairs = []
    for i, doc in enumerate(rng.sample(docs, count)):
        edit = EDITS[i % len(EDITS)]
        copy = edit(doc, rng, rng.choice(docs))
        pairs.append(Pair(doc, copy, True, f"edited copy: {edit.__name__}"))
    return pairs


def template_negatives(docs: list[Doc], rng: random.Random, count: int) -> list[Pair]:
    by_source: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        by_source[doc.source].append(doc)
    sources = [s for s, d in by_source.items() if len(d) > 1]
    pairs = []
    while len(pairs) < count:
        a, b = rng.sample(by_source[rng.choice(sources)], 2)
        if a.title == b.title:
            continue
        pairs.append(Pair(_templated(a), _templated(b), False, "same outlet template"))
    return pairs


def _templated(doc: Doc) -> Doc:
    """The outlet's byline and credit line around the body, identical on all its stories."""
    byline, credit = BYLINES[doc.language][0], CREDITS[doc.language][0]
    return Doc(doc.title, (byline, *doc.paragraphs, credit), doc.source, doc.day, doc.language)


def topic_negatives(docs: list[Doc], rng: random.Random, count: int) -> list[Pair]:
    """For sampled stories, the other story sharing most of its words, from another day."""
    words = [set(" ".join(d.paragraphs).split()) for d in docs]
    pairs = []
    for i in rng.sample(range(len(docs)), count):
        best, best_score = None, 0.0
        for j in rng.sample(range(len(docs)), min(len(docs), 3000)):
            if docs[j].day == docs[i].day or docs[j].title == docs[i].title:
                continue
            score = len(words[i] & words[j]) / (len(words[i] | words[j]) or 1)
            if score > best_score:
                best, best_score = j, score
        if best is not None:
            pairs.append(Pair(docs[i], docs[best], False, "same topic, other story"))
    return pairs


def build_pairs(data: Path, rng: random.Random) -> list[Pair]:
    arabic = load_saudinewsnet(data / "saudinewsnet")
    english = load_aeb(data / "aeb")
    return (
        republications(arabic, 120)
        + edited_copies(arabic, rng, 90)
        + edited_copies(english, rng, 60)
        + template_negatives(arabic, rng, 80)
        + topic_negatives(arabic, rng, 60)
        + topic_negatives(english, rng, 30)
    )


def _rates(found: list[bool], pairs: list[Pair]) -> tuple[float, float]:
    tp = sum(f and p.same for f, p in zip(found, pairs, strict=True))
    fp = sum(f and not p.same for f, p in zip(found, pairs, strict=True))
    fn = sum(not f and p.same for f, p in zip(found, pairs, strict=True))
    return tp / ((tp + fp) or 1), tp / ((tp + fn) or 1)


def _hash(doc: Doc) -> str:
    return fingerprint(doc.title, doc.paragraphs).content_hash


def through_lsh(pairs: list[Pair], signatures: list[tuple[bytes, bytes]], threshold: float):
    """Whether the daemon would put b in a's story: a is stored, b is looked up."""
    index = NearDuplicateIndex(threshold)
    index.add_all((i, a) for i, (a, _) in enumerate(signatures))
    found = []
    for i, (a, b) in enumerate(signatures):
        found.append(i in index.candidates(b) and similarity(a, b) >= threshold)
    return found


def quality(pairs: list[Pair]) -> None:
    positives = sum(p.same for p in pairs)
    print(f"labelled pairs: {len(pairs)} ({positives} same story, {len(pairs) - positives} not)")
    for kind in sorted({p.kind for p in pairs}):
        print(f"  {sum(p.kind == kind for p in pairs):4d}  {kind}")
    exact = [_hash(p.a) == _hash(p.b) for p in pairs]
    precision, recall = _rates(exact, pairs)
    print(f"\nexact content hash alone: precision {precision:.3f} recall {recall:.3f}")
    print("\nshingling  threshold  precision  recall   (LSH candidates + signature check)")
    misses: dict[str, list[str]] = {}
    for name in SHINGLINGS:
        signatures = [
            (signature(p.a.title, p.a.paragraphs, name), signature(p.b.title, p.b.paragraphs, name))
            for p in pairs
        ]
        usable = [(p, s) for p, s in zip(pairs, signatures, strict=True) if s[0] and s[1]]
        kept = [p for p, _ in usable]
        for threshold in THRESHOLDS:
            found = through_lsh(kept, [s for _, s in usable], threshold)
            precision, recall = _rates(found, kept)
            print(f"  {name:<8} {threshold:9.2f}  {precision:9.3f}  {recall:6.3f}")
            if threshold == DedupConfig().threshold:
                misses[name] = [
                    f"{p.kind} ({'missed' if p.same else 'false match'})"
                    for f, p in zip(found, kept, strict=True)
                    if f != p.same
                ]
    chosen = DedupConfig().threshold
    print(f"\nerrors at the configured threshold {chosen}:")
    for name, errors in misses.items():
        counts: dict[str, int] = defaultdict(int)
        for error in errors:
            counts[error] += 1
        print(f"  {name}: {dict(counts) or 'none'}")


def _random_signature(rng: np.random.Generator) -> bytes:
    return rng.integers(0, 2**32, NUM_PERM, dtype=np.uint32).astype("<u4").tobytes()


def speed(docs: list[Doc]) -> None:
    rng = np.random.default_rng(7)
    blobs = [_random_signature(rng) for _ in range(STORED)]
    index = NearDuplicateIndex(DedupConfig().threshold)
    index.add_all(enumerate(blobs))
    probes = [_random_signature(rng) for _ in range(QUERIES)] + blobs[:QUERIES]
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for probe in probes:
            index.candidates(probe)
        runs.append((time.perf_counter() - started) / len(probes) * 1e6)
    query = statistics.median(runs)
    print(f"\nLSH query with {STORED:,} stored: {query:.1f} µs (median of {RUNS})")

    with tempfile.TemporaryDirectory() as folder:
        db = open_db(Path(folder) / "bench.db")
        db.execute("PRAGMA foreign_keys=OFF")
        with db.atomic():
            db["article_signatures"].insert_all(
                ({"article_id": i, "signature": b} for i, b in enumerate(blobs)), batch_size=5000
            )
        rebuilds = []
        for _ in range(3):
            started = time.perf_counter()
            Stories(db, DedupConfig())
            rebuilds.append(time.perf_counter() - started)
        db.close()
    rebuild = statistics.median(rebuilds)
    print(f"start-up rebuild of {STORED:,} signatures from SQLite: {rebuild:.2f} s")

    tracemalloc.start()
    measured = NearDuplicateIndex(DedupConfig().threshold)
    measured.add_all(enumerate(blobs))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"index memory: {size / STORED:,.0f} bytes per story ({size / 2**20:.0f} MiB for"
        f" {STORED:,}); on disk {NUM_PERM * 4} bytes of signature per article"
    )

    sample = docs[:300]
    if not sample:
        return
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for doc in sample:
            signature(doc.title, doc.paragraphs)
        times.append((time.perf_counter() - started) / len(sample) * 1000)
    chars = statistics.mean(sum(len(p) for p in d.paragraphs) for d in sample)
    print(f"signature: {statistics.median(times):.2f} ms per article ({chars:,.0f} chars average)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared" / "data")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if not (args.data / "saudinewsnet").is_dir() or not (args.data / "aeb").is_dir():
        print(f"{args.data}: saudinewsnet and aeb not found; skipping the quality figures")
        speed([])
        return 0
    pairs = build_pairs(args.data, random.Random(args.seed))
    quality(pairs)
    speed([p.a for p in pairs])
    return 0


if __name__ == "__main__":
    sys.exit(main())
