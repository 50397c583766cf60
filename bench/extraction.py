"""Article-extraction F1 on the article-extraction-benchmark pages, project vs plain trafilatura,
and the time teaser pruning takes as a hostile page's label headings double.

The project's extractor prunes teasers and related blocks before trafilatura and keeps only the
body paragraphs; this checks that doing so costs nothing on ordinary (mostly English) pages,
where plain trafilatura is the published reference. Metric as in the data set's README: 4-token
shingle multisets, TP/FP/FN summed over pages. Pruning must stay linear: each doubling of the
headings should at most double its time (goal ≤ 2.2×; it was 4–8× when the prose of a box was
counted afresh for each heading).

    python bench/extraction.py [DATA_DIR] [--headings 500,1000,2000,4000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from crawler import teasers
from crawler.extract import extract_article

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "aeb"
_WORD = re.compile(r"\w+")
_SHINGLE_SIZE = 4

Extractor = Callable[[str, str], str]


@dataclass(frozen=True)
class Page:
    page_id: str
    url: str
    html: str
    truth: str


@dataclass
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    seconds: float = 0.0
    pages: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 0.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def mean_ms(self) -> float:
        return 1000 * self.seconds / self.pages if self.pages else 0.0


def load_pages(data_dir: Path) -> list[Page]:
    truth = json.loads((data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        Page(
            page_id=page_id,
            url=entry["url"],
            html=gzip.decompress((data_dir / "html" / f"{page_id}.html.gz").read_bytes()).decode(
                "utf-8"
            ),
            truth=entry["articleBody"],
        )
        for page_id, entry in sorted(truth.items())
    ]


def shingles(text: str) -> Counter[tuple[str, ...]]:
    words = _WORD.findall(text)
    return Counter(
        tuple(words[i : i + _SHINGLE_SIZE]) for i in range(len(words) - _SHINGLE_SIZE + 1)
    )


def add_page(score: Score, prediction: str, truth: str) -> None:
    predicted, expected = shingles(prediction), shingles(truth)
    for key in predicted.keys() | expected.keys():
        found, wanted = predicted[key], expected[key]
        score.true_positives += min(found, wanted)
        score.false_positives += max(0, found - wanted)
        score.false_negatives += max(0, wanted - found)


def project_text(html: str, url: str) -> str:
    article = extract_article(html, url)
    return "\n".join(article.paragraphs) if article else ""


def trafilatura_text(html: str, url: str) -> str:
    return trafilatura.extract(html) or ""


EXTRACTORS: dict[str, Extractor] = {
    "newswatch extract_article": project_text,
    "trafilatura.extract (defaults)": trafilatura_text,
}


def evaluate(pages: list[Page]) -> dict[str, Score]:
    scores = {name: Score() for name in EXTRACTORS}
    for extractor in EXTRACTORS.values():
        extractor(pages[0].html, pages[0].url)  # one-off model and cache loading is not per page
    for page in pages:
        for name, extractor in EXTRACTORS.items():
            started = time.perf_counter()
            prediction = extractor(page.html, page.url)
            scores[name].seconds += time.perf_counter() - started
            scores[name].pages += 1
            add_page(scores[name], prediction, page.truth)
    return scores


def print_table(scores: dict[str, Score], pages: int) -> None:
    print(f"article-extraction-benchmark: {pages} pages, 4-token shingles, sums over pages")
    print(f"{'extractor':<32} {'F1':>6} {'P':>6} {'R':>6} {'ms/page':>8}")
    for name, score in scores.items():
        print(
            f"{name:<32} {score.f1:6.3f} {score.precision:6.3f} {score.recall:6.3f}"
            f" {score.mean_ms:8.1f}"
        )


def label_headings_page(headings: int) -> str:
    """An article, then a box of "Lire aussi" headings each over a one-link list: every heading
    opens the same box, whose prose the teaser rules weigh (4,000 of them: 290 KB)."""
    body = "".join(
        f"<p>Les magistrats marocains et français ont examiné à Rabat la demande numéro {n}.</p>"
        for n in range(5)
    )
    teasers = "".join(
        f"<h3>Lire aussi</h3><ul><li><a href='/afrique/{n}.html'>Titre {n}</a></li></ul>"
        for n in range(headings)
    )
    return f"<html><body><article><h1>T</h1>{body}<div>{teasers}</div></article></body></html>"


def pruning_seconds(html: str, runs: int = 3) -> float:
    """Best of `runs` over a fresh tree each time (pruning changes the tree)."""
    best = float("inf")
    for _ in range(runs):
        root = trafilatura.load_html(html)
        started = time.perf_counter()
        teasers.prune(root, "https://www.lejournal.example/afrique/article.html")
        best = min(best, time.perf_counter() - started)
    return best


def print_pruning(sizes: list[int]) -> None:
    print(f"teaser pruning, label headings: {'headings':>8} {'KB':>6} {'ms':>8} {'growth':>7}")
    previous = None
    for headings in sizes:
        html = label_headings_page(headings)
        seconds = pruning_seconds(html)
        growth = f"{seconds / previous:6.2f}x" if previous else ""
        print(f"{'':<31} {headings:>8} {len(html) // 1024:>6} {seconds * 1000:8.1f} {growth:>7}")
        previous = seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--headings", default="500,1000,2000,4000")
    args = parser.parse_args()
    print_pruning([int(size) for size in args.headings.split(",")])
    data_dir = args.data_dir
    if not (data_dir / "ground-truth.json").is_file():
        print(f"skipped: no benchmark data at {data_dir}")
        return
    logging.disable(logging.WARNING)  # trafilatura logs every page it finds too short
    pages = load_pages(data_dir)
    scores = evaluate(pages)
    print_table(scores, len(pages))
    project, reference = scores.values()
    verdict = "not lower" if project.f1 >= reference.f1 else "LOWER"
    print(f"newswatch F1 is {verdict} than plain trafilatura's ({project.f1 - reference.f1:+.3f})")


if __name__ == "__main__":
    main()
