"""Pipeline throughput, memory and idle-poll cost of `newswatch run --once`, on loopback.

Prints:
- articles/s of `run --once` end to end (process start to exit) over N article pages, beside
  `trafilatura.extract` alone over the same HTML in this process, and their ratio;
- peak RSS of the daemon (main process, and with its extraction workers) after 1,000 articles;
- requests of an idle poll of 20 unchanged feeds (all should be conditional, 0 article fetches).

The pages are real news pages from ../shared/data/aeb (served as they were fetched), cycled with
distinct URLs; when that folder is absent, Arabic bodies from ../shared/data/saudinewsnet rendered
into a news-page template, else the bundled demo site's articles. Nothing is copied into the
project.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import trafilatura

from crawler.demo.site import DemoSite

ROOT = Path(__file__).resolve().parent.parent
NEWSWATCH = (sys.executable, "-m", "crawler.cli")
SAUDI = ROOT.parent / "shared" / "data" / "saudinewsnet"
AEB = ROOT.parent / "shared" / "data" / "aeb" / "html"
CONFIG = """
database: bench.db
crawl: {{max_new_articles_per_poll: 5000, per_domain_concurrency: 8}}
schedule: {{jitter: 0}}
sources:
{sources}
concepts:
  morocco: {{ar: [مغرب, الرباط], en: [Morocco]}}
  saudi: {{ar: [السعودية, الرياض]}}
watchlists:
  - {{name: saudi, rule: saudi, notify: [out]}}
channels:
  out: {{type: file, path: alerts.jsonl}}
"""


def bodies(count: int) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) pairs: real Arabic articles when the data set is there."""
    found: list[tuple[str, list[str]]] = []
    if SAUDI.is_dir():
        for archive in sorted(SAUDI.glob("*.zip")):
            with zipfile.ZipFile(archive) as opened:
                for name in opened.namelist():
                    for item in json.loads(opened.read(name)):
                        paragraphs = [p.strip() for p in item["content"].split("\n") if p.strip()]
                        if item.get("title") and len(paragraphs) >= 2:
                            found.append((item["title"], paragraphs))
                        if len(found) >= count:
                            return found
    else:
        print(f"note: {SAUDI} absent; using the demo site's articles as bodies")
        demo = ROOT / "seeds" / "demo" / "site" / "articles"
        for page in sorted(demo.glob("*.html")):
            text = trafilatura.extract(page.read_text(encoding="utf-8")) or ""
            found.append((page.stem, [p for p in text.split("\n") if p.strip()]))
    return [found[i % len(found)] for i in range(count)]


def page(title: str, paragraphs: list[str], number: int) -> str:
    related = "".join(f"<li><a href='/articles/{number + k}.html'>خبر {k}</a></li>" for k in (1, 2))
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        "<!doctype html><html lang='ar' dir='rtl'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><header><nav><a href='/'>الرئيسية</a>"
        f"<a href='/sport'>رياضة</a></nav></header><main><article><h1>{html.escape(title)}</h1>"
        f"<time datetime='2026-11-28T10:00:00Z'>28/11/2026</time>{body}</article>"
        f"<aside class='related'><h2>اقرأ أيضا</h2><ul>{related}</ul></aside></main>"
        "<footer>© bench</footer></body></html>"
    )


def real_pages(count: int) -> list[str]:
    """Real fetched news pages (mostly English), or rendered bodies when they are absent."""
    if AEB.is_dir():
        found = [gzip.decompress(p.read_bytes()).decode("utf-8") for p in sorted(AEB.glob("*.gz"))]
    else:
        print(f"note: {AEB} absent; rendering article bodies into a page template")
        found = [page(t, p, n) for n, (t, p) in enumerate(bodies(min(count, 200)))]
    return [found[i % len(found)] for i in range(count)]


def build_site(root: Path, pages: list[str], feeds: int) -> None:
    """Write article pages and `feeds` RSS feeds that share the articles out between them."""
    (root / "articles").mkdir(parents=True)
    for number, html_text in enumerate(pages):
        (root / "articles" / f"{number}.html").write_text(html_text, encoding="utf-8")
    for feed in range(feeds):
        items = "".join(
            f"<item><title>Article {n}</title>"
            f"<link>{{{{BASE_URL}}}}/articles/{n}.html</link><guid>{n}</guid></item>"
            for n in range(feed, len(pages), feeds)
        )
        (root / f"feed{feed}.xml").write_text(
            f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>b</title>"
            f"{items}</channel></rss>",
            encoding="utf-8",
        )


class RssSampler(threading.Thread):
    """Peak memory of a process and of its whole tree, sampled every 50 ms: RSS of the main
    process, and PSS of the tree (forked workers share pages with it; RSS would count them twice).
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_main = 0
        self.peak_tree = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_main = max(self.peak_main, _memory(self.pid, "/status", "VmRSS:"))
            tree = sum(_memory(pid, "/smaps_rollup", "Pss:") for pid in self._tree(self.pid))
            self.peak_tree = max(self.peak_tree, tree)
            time.sleep(0.05)

    def _tree(self, pid: int) -> list[int]:
        """The process and its descendants; one that exits while being read is left out."""
        found = [pid]
        try:
            tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
        except OSError:
            return found
        for task in tasks:
            try:
                children = task.read_text().split()
            except OSError:
                continue
            for child in children:
                found += self._tree(int(child))
        return found


def _memory(pid: int, table: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}{table}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_once(folder: Path) -> tuple[float, RssSampler, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            *NEWSWATCH,
            "--log-level",
            "warning",
            "run",
            "--once",
            "--config",
            f"{folder}/config.yaml",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = RssSampler(process.pid)
    sampler.start()
    _, errors = process.communicate()
    elapsed = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"run --once failed:\n{errors}")
    return elapsed, sampler, errors


def stored(folder: Path) -> int:
    import sqlite3

    with sqlite3.connect(folder / "bench.db") as conn:
        return conn.execute("SELECT count(*) FROM articles").fetchone()[0]


def pipeline_run(
    pages: list[str], feeds: int
) -> tuple[float, int, RssSampler, DemoSite, Path, tempfile.TemporaryDirectory]:
    scratch = tempfile.TemporaryDirectory(prefix="nw-bench-")
    folder = Path(scratch.name)
    build_site(folder / "site", pages, feeds)
    site = DemoSite(folder / "site").start()
    sources = "\n".join(
        f"  - {{name: feed{n}, url: '{site.base_url}/feed{n}.xml', kind: feed}}"
        for n in range(feeds)
    )
    (folder / "config.yaml").write_text(CONFIG.format(sources=sources), encoding="utf-8")
    elapsed, sampler, _ = run_once(folder)
    return elapsed, stored(folder), sampler, site, folder, scratch


def baseline_rate(pages: list[str]) -> float:
    started = time.perf_counter()
    for html_text in pages:
        trafilatura.extract(html_text)
    return len(pages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-articles", type=int, default=1000)
    args = parser.parse_args()
    everything = real_pages(max(args.articles, args.memory_articles))
    pages = everything[: args.articles]
    trafilatura.extract(pages[0])

    rates, baselines, fixed, streams = [], [], [], []
    for _ in range(args.runs):
        baselines.append(baseline_rate(pages))
        empty, _, _, site, _, scratch = pipeline_run([], feeds=4)
        site.stop()
        scratch.cleanup()
        elapsed, count, _, site, _, scratch = pipeline_run(pages, feeds=4)
        site.stop()
        scratch.cleanup()
        assert count == args.articles, f"stored {count} of {args.articles}"
        rates.append(count / elapsed)
        fixed.append(empty)
        streams.append(count / (elapsed - empty))
    rate, base = statistics.median(rates), statistics.median(baselines)
    stream = statistics.median(streams)
    print(f"cores: {os.cpu_count()}; runs: {args.runs} (median)")
    print(f"run --once, {args.articles} pages end to end: {rate:.1f} articles/s")
    print(f"trafilatura.extract alone, same HTML, one process: {base:.1f} articles/s")
    print(f"ratio pipeline / trafilatura alone: {rate / base:.2f} (goal >= 0.8)")
    print(
        f"fixed cost of a run (start-up, 4 empty polls, shutdown):"
        f" {statistics.median(fixed):.1f} s; without it: {stream:.1f} articles/s,"
        f" ratio {stream / base:.2f}"
    )

    _, count, sampler, site, folder, scratch = pipeline_run(
        everything[: args.memory_articles], feeds=20
    )
    print(
        f"peak memory after {count} articles: daemon RSS {sampler.peak_main / 2**20:.0f} MB,"
        f" daemon + extraction workers PSS {sampler.peak_tree / 2**20:.0f} MB (goal <= 300 MB)"
    )
    site.reset_log()
    run_once(folder)
    robots = [r for r in site.requests if r.path == "/robots.txt"]
    feeds = [r for r in site.requests if r.path.startswith("/feed")]
    fetched = [r for r in site.requests if r.path.startswith("/articles/")]
    conditional = sum(r.conditional for r in feeds)
    not_modified = sum(r.status == 304 for r in feeds)
    print(
        f"idle poll of 20 unchanged feeds: {len(site.requests)} request(s), {len(feeds)} to"
        f" feeds ({conditional} conditional, {not_modified} answered 304),"
        f" {len(robots)} to robots.txt (once per site per process), {len(fetched)} article"
        " fetch(es) (goal: 20, all conditional, 0)"
    )
    site.stop()
    scratch.cleanup()


if __name__ == "__main__":
    main()
