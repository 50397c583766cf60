"""The labelled pairs the event grouping is measured on (issue 14), rebuilt at run time from
../shared/data/saudinewsnet (public text, never copied into the project: the labels name each
article by a hash of its URL).

How the pairs were drawn: articles of 400 characters or more; two articles from different papers
crawled within 24 hours of each other; not copies (character 5-gram Jaccard of the normalised
texts below the story threshold, 0.5); spread across similarity levels: the pairs' TF-IDF cosine
(normalised words) falls in one of `STRATA`, and the same number was drawn at random from each.
How they were labelled is in bench/README.md ("Events"); the labels are in `LABELS`.

Usage: python bench/event_pairs.py [--data DIR] --sheets DIR   (reading sheets for labellers)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from scipy import sparse

from alerts.normalize import words
from crawler.config import DedupConfig
from crawler.dedup import char_shingles, flat_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LABELS = Path(__file__).with_name("event_labels.tsv")
STRATA = ((0.05, 0.1), (0.1, 0.15), (0.15, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 1.01))
PER_STRATUM = 64
WITHIN = 24 * 3600
SEED = 14
SAME, DIFFERENT, COPY, UNCLEAR = "same", "different", "copy", "unclear"


@dataclass(frozen=True)
class Article:
    id: str
    url: str
    source: str
    at: datetime
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class LabelledPair:
    a: Article
    b: Article
    label: str


def article_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def load_articles(folder: Path) -> list[Article]:
    """Every article of the corpus with 400 characters of text or more, once per URL, in crawl
    order."""
    seen: dict[str, Article] = {}
    for path in sorted((folder / "saudinewsnet").glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                for item in json.loads(archive.read(name)):
                    paragraphs = tuple(p.strip() for p in item["content"].split("\n") if p.strip())
                    if sum(map(len, paragraphs)) < 400 or item["url"] in seen:
                        continue
                    seen[item["url"]] = Article(
                        article_id(item["url"]),
                        item["url"],
                        item["source"],
                        datetime.fromisoformat(item["date_extracted"]),
                        " ".join(item["title"].split()),
                        paragraphs,
                    )
    return sorted(seen.values(), key=lambda article: (article.at, article.id))


def tfidf(articles: list[Article]) -> sparse.csr_matrix:
    """Rows of sublinear TF-IDF over normalised words, L2-normalised: the plain baseline."""
    vocabulary: dict[str, int] = {}
    rows, cols, values = [], [], []
    for row, article in enumerate(articles):
        counts = Counter(words("\n".join((article.title, *article.paragraphs))))
        for word, count in counts.items():
            rows.append(row)
            cols.append(vocabulary.setdefault(word, len(vocabulary)))
            values.append(1.0 + np.log(count))
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=(len(articles), len(vocabulary)))
    df = np.bincount(matrix.indices, minlength=len(vocabulary))
    matrix = matrix @ sparse.diags(np.log((1 + len(articles)) / (1 + df)) + 1.0)
    norms = np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1
    return sparse.csr_matrix(sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix)


def jaccard(a: Article, b: Article) -> float:
    first = char_shingles(flat_text(a.title, a.paragraphs))
    second = char_shingles(flat_text(b.title, b.paragraphs))
    return len(first & second) / max(1, len(first | second))


def near_pairs(articles: list[Article], matrix: sparse.csr_matrix) -> list[tuple[int, int, float]]:
    """(i, j, cosine) of every pair from different papers crawled within `WITHIN` of each other
    with a cosine of `STRATA[0][0]` or more."""
    times = np.array([article.at.timestamp() for article in articles])
    found = []
    block = 500
    for start in range(0, len(articles), block):
        stop = min(start + block, len(articles))
        end = int(np.searchsorted(times, times[stop - 1] + WITHIN, side="right"))
        scores = (matrix[start:stop] @ matrix[start:end].T).tocoo()
        for i, j, score in zip(scores.row, scores.col, scores.data, strict=True):
            a, b = start + int(i), start + int(j)
            if (
                a < b
                and score >= STRATA[0][0]
                and times[b] - times[a] <= WITHIN
                and articles[a].source != articles[b].source
            ):
                found.append((a, b, float(score)))
    return found


def sample_pairs(articles: list[Article]) -> list[tuple[Article, Article, float]]:
    """`PER_STRATUM` non-copy pairs drawn at random from each similarity stratum."""
    rng = random.Random(SEED)
    copy_threshold = DedupConfig().threshold
    pairs = near_pairs(articles, tfidf(articles))
    drawn = []
    for low, high in STRATA:
        stratum = [pair for pair in pairs if low <= pair[2] < high]
        rng.shuffle(stratum)
        taken = 0
        for a, b, score in stratum:
            if taken == PER_STRATUM:
                break
            if jaccard(articles[a], articles[b]) < copy_threshold:
                drawn.append((articles[a], articles[b], score))
                taken += 1
    return drawn


def load_labels(articles: list[Article], path: Path = LABELS) -> list[LabelledPair]:
    """The labelled pairs whose two articles are in the corpus."""
    by_id = {article.id: article for article in articles}
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        first, second, label = line.split("\t")[:3]
        if first in by_id and second in by_id:
            pairs.append(LabelledPair(by_id[first], by_id[second], label))
    return pairs


def _excerpt(article: Article, chars: int = 1500) -> str:
    text = "\n".join(article.paragraphs)
    return text if len(text) <= chars else text[:chars] + " …"


def write_sheets(drawn: list[tuple[Article, Article, float]], folder: Path, per_sheet: int) -> None:
    """Reading sheets for the labellers, in a random order (the stratum is not shown)."""
    folder.mkdir(parents=True, exist_ok=True)
    order = list(drawn)
    random.Random(SEED + 1).shuffle(order)
    for number, start in enumerate(range(0, len(order), per_sheet), 1):
        lines = []
        for a, b, _ in order[start : start + per_sheet]:
            lines.append(f"## PAIR {a.id} {b.id}\n")
            for side, article in (("A", a), ("B", b)):
                lines.append(f"### {side}: {article.source}, crawled {article.at:%Y-%m-%d %H:%M}")
                lines.append(f"TITLE: {article.title}\n\n{_excerpt(article)}\n")
        (folder / f"sheet-{number}.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sheets", type=Path, required=True)
    parser.add_argument("--per-sheet", type=int, default=75)
    args = parser.parse_args()
    if not (args.data / "saudinewsnet").is_dir():
        print(f"no SaudiNewsNet data under {args.data}", file=sys.stderr)
        return 1
    drawn = sample_pairs(load_articles(args.data))
    write_sheets(drawn, args.sheets, args.per_sheet)
    for low, high in STRATA:
        count = sum(low <= score < high for *_, score in drawn)
        print(f"cosine {low:.2f}–{min(high, 1):.2f}: {count} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
