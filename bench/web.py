"""Web app response times on a big archive: prints its figures, asserts nothing.

Generates N stored articles (default 100,000; Arabic, French and English, 1.5–4 KB of text each,
from a few hundred sources; a few thousand stories of 2–8 copies, the rest single), written
through the store's own `insert_article` (so the FTS index is the daemon's); a few percent carry
a paragraph of the demo site's Morocco–France stories, are matched by the daemon's `Watchlists`
and queued by its `AlertQueue` on three watchlists and two channels, then dated over the last
30 days and given sent, failed and pending statuses. Then `crawler.web.app.create_app` is served
by uvicorn in a thread on 127.0.0.1 and each page is fetched with httpx: the median of --runs
requests (after one warm-up) for the overview, a watchlist, a story, an Arabic article and a
search for a bare Arabic word (`/search?q=بالمغرب`; "not available" while it answers 404).

Targets (issue 12): pages ≤ 200 ms, search ≤ 1 s.

Usage: python bench/web.py [--articles N] [--runs R] [--keep DIR]
"""

from __future__ import annotations

import argparse
import html
import random
import re
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlite_utils
import uvicorn

from alerts.document import Document
from alerts.times import timestamp
from alerts.watchlists import Watchlists
from crawler import store
from crawler.config import Config, load_config
from crawler.enqueue import AlertQueue
from crawler.stories import Filed
from crawler.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
DEMO_ARTICLES = ROOT / "seeds" / "demo" / "site" / "articles"
SOURCES = 300
STORIES = 3000
MATCHED_SHARE = 0.04
TARGETS = {"search": 1.0}
PAGE_TARGET = 0.2
SEARCH_WORD = "بالمغرب"

# Sentences that name none of the watched concepts, so only the articles given a demo
# paragraph match.
FILLER = {
    "ar": [
        "أعلنت وزارة الاقتصاد عن ارتفاع طفيف في معدلات النمو خلال الربع الثالث من السنة الجارية.",
        "وقال المتحدث باسم الحكومة إن الإجراءات الجديدة ستدخل حيز التنفيذ مطلع الشهر المقبل.",
        "وشهدت الأسواق المحلية إقبالا كبيرا على المنتجات الزراعية بعد موسم أمطار وفير.",
        "ودعا خبراء إلى تعزيز الاستثمار في الطاقات المتجددة وتحسين البنية التحتية للنقل.",
        "وأكد رئيس الجمعية أن المبادرة تهدف إلى دعم الشباب وتشجيع روح المقاولة في الجهات.",
        "وتوقعت مصالح الأرصاد الجوية تساقطات مطرية متفرقة ورياحا قوية على المرتفعات.",
        "واختتمت فعاليات المهرجان الثقافي بحضور عدد كبير من الفنانين والمثقفين والزوار.",
        "وأشار التقرير السنوي إلى تحسن مؤشرات التعليم والصحة في المناطق القروية.",
    ],
    "fr": [
        "Le ministère de l'Économie a annoncé une légère hausse de la croissance au troisième"
        " trimestre.",
        "Les nouvelles mesures entreront en vigueur le mois prochain, selon le porte-parole.",
        "Les marchés locaux ont connu une forte affluence après une saison de pluies abondantes.",
        "Des experts appellent à renforcer l'investissement dans les énergies renouvelables.",
        "Le festival culturel s'est achevé en présence de nombreux artistes et visiteurs.",
        "Le rapport annuel note une amélioration des indicateurs de santé en milieu rural.",
    ],
    "en": [
        "The economy ministry reported a slight rise in growth in the third quarter of the year.",
        "The new measures will take effect at the start of next month, a spokesman said.",
        "Local markets saw strong demand for farm produce after an abundant rainy season.",
        "Experts called for more investment in renewable energy and transport infrastructure.",
        "The cultural festival closed with many artists, writers and visitors in attendance.",
        "The annual report noted better health and education indicators in rural areas.",
    ],
}
CONFIG_HEAD = """database: web.db
concepts:
  morocco:
    ar: [مغرب, المغاربة, الرباط, المملكة المغربية]
    fr: [Maroc, marocain, Rabat]
    en: [Morocco, Moroccan, Rabat]
  france:
    ar: [فرنسا, فرنسي, باريس]
    fr: [France, français, Paris]
    en: [France, French, Paris]
  extradition:
    ar: [{term: "تسليم المطلوبين", fuzzy: 1}, "تسليم المجرمين", ترحيل, استرداد]
    fr: [{term: extradition, mode: stem}, {term: extrader, mode: stem}]
    en: [{term: extradition, mode: stem}, {term: extradite, mode: stem}]
watchlists:
  - {name: morocco-france-extradition, rule: "morocco AND france AND extradition",
     notify: [desk-mail, siem]}
  - {name: morocco, rule: "morocco", notify: [siem]}
  - {name: france-justice, rule: "france AND extradition", notify: [desk-mail]}
channels:
  desk-mail: {type: email, smtp_host: 127.0.0.1, smtp_port: 9, security: none,
              from: "newswatch <a@newswatch.invalid>", to: [desk@newswatch.invalid]}
  siem: {type: webhook, url: "http://127.0.0.1:9/hook"}
sources:
"""


def demo_paragraphs() -> dict[str, list[str]]:
    """The demo site's article paragraphs by language: the Morocco–France stories."""
    found: dict[str, list[str]] = {"ar": [], "fr": [], "en": []}
    for page in sorted(DEMO_ARTICLES.glob("*.html")):
        text = page.read_text("utf-8")
        language = re.search(r'<html lang="(\w+)"', text)
        if language and language.group(1) in found:
            found[language.group(1)] += [
                html.unescape(p) for p in re.findall(r"<p>([^<]{80,})</p>", text)
            ]
    return found


def write_config(folder: Path) -> Path:
    config = folder / "config.yaml"
    sources = "".join(
        f"  - {{name: src-{n:03d}, url: 'http://127.0.0.1:9/src-{n:03d}/feed.xml', kind: feed}}\n"
        for n in range(SOURCES)
    )
    config.write_text(CONFIG_HEAD + sources, "utf-8")
    return config


def article_text(rng: random.Random, language: str, extra: str | None) -> str:
    sentences = FILLER[language]
    paragraphs = [
        " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 5)))
        + f" ({rng.randint(1, 10**6)})"
        for _ in range(rng.randint(4, 9))
    ]
    if extra:
        paragraphs.insert(rng.randint(0, len(paragraphs)), extra)
    return "\n\n".join(paragraphs)


def story_plan(rng: random.Random, count: int) -> list[str]:
    """Story ids, article by article: copies of a story are spread through the archive."""
    ids = [f"st-big{n:05d}" for n in range(STORIES) for _ in range(rng.randint(2, 8))][:count]
    ids += [f"st-one{n:06d}" for n in range(count - len(ids))]
    rng.shuffle(ids)
    return ids


def fill(config: Config, count: int, rng: random.Random) -> int:
    """Articles, matches and alerts; returns how many articles matched."""
    demo = demo_paragraphs()
    watchlists = Watchlists(config.concepts, config.watchlists)
    db = store.open_db(config.database)
    queue = AlertQueue(db, watchlists, update_interval=3600)
    now = datetime.now(UTC)
    matched = 0
    db.execute("BEGIN")
    for number, story in enumerate(story_plan(rng, count)):
        language = rng.choices(("ar", "fr", "en"), (5, 3, 2))[0]
        extra = rng.choice(demo[language]) if rng.random() < MATCHED_SHARE else None
        text = article_text(rng, language, extra)
        fetched = timestamp(now - timedelta(seconds=rng.randint(0, 90 * 86400)))
        title = text[: rng.randint(40, 90)].split("\n")[0]
        url = f"https://news{number % SOURCES}.example/{number}.html"
        article_id = store.insert_article(
            db,
            {
                "url": url,
                "canonical_url": url,
                "source": f"src-{number % SOURCES:03d}",
                "title": title,
                "text": text,
                "language": language,
                "published_at": fetched,
                "fetched_at": fetched,
                "content_hash": f"{number:016x}",
                "story_id": story,
            },
        )
        if extra:
            found = watchlists.match(Document(title, text.split("\n\n"), language))
            if found:
                matched += 1
                queue.queue(Filed(article_id, story, story, ""), tuple(found))
        if number % 5000 == 4999:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    age(db, now, rng)
    db.close()
    return matched


def age(db: sqlite_utils.Database, now: datetime, rng: random.Random) -> None:
    """Matches spread over 30 days, the sources' last polls, alerts sent, failed or pending."""
    rows = db.execute("SELECT rowid FROM matches").fetchall()
    db.conn.executemany(
        "UPDATE matches SET matched_at = ? WHERE rowid = ?",
        [(timestamp(now - timedelta(seconds=rng.randint(0, 30 * 86400))), row[0]) for row in rows],
    )
    db.execute(
        "UPDATE alerts SET status = CASE abs(random()) % 20 WHEN 0 THEN 'failed'"
        " WHEN 1 THEN 'pending' ELSE 'sent' END, sent_at = created_at, attempts = 1"
    )
    db.conn.executemany(
        "INSERT OR REPLACE INTO sources (name, url, kind, last_polled_at, last_success_at,"
        " consecutive_failures) VALUES (?, ?, 'feed', ?, ?, ?)",
        [
            (
                f"src-{n:03d}",
                f"http://127.0.0.1:9/src-{n:03d}/feed.xml",
                timestamp(now),
                timestamp(now),
                3 if n % 50 == 0 else 0,
            )
            for n in range(SOURCES)
        ],
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(config: Config) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def pages(database: Path) -> dict[str, str]:
    """A watchlist, its biggest alerted story and that story's first Arabic copy."""
    with sqlite_utils.Database(database) as db:
        story = db.execute(
            "SELECT a.story_id FROM matches m JOIN articles a ON a.id = m.article_id"
            " WHERE m.watchlist = 'morocco' GROUP BY a.story_id"
            " ORDER BY (SELECT count(*) FROM articles c WHERE c.story_id = a.story_id) DESC"
            " LIMIT 1"
        ).fetchone()[0]
        (article,) = db.execute(
            "SELECT a.id FROM matches m JOIN articles a ON a.id = m.article_id"
            " WHERE a.language = 'ar' LIMIT 1"
        ).fetchone()
    return {
        "overview": "/",
        "watchlist": "/watchlists/morocco",
        "story": f"/stories/{story}",
        "article": f"/articles/{article}",
        "search": f"/search?q={SEARCH_WORD}",
    }


def median_time(client: httpx.Client, path: str, runs: int) -> float | None:
    """Seconds, median of `runs` after a warm-up; None when the route is not there."""
    if client.get(path).status_code == 404:
        return None
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the archive in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newswatch-bench-web-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        config = load_config(write_config(folder))
        if not config.database.exists():
            started = time.perf_counter()
            matched = fill(config, args.articles, random.Random(12))
            print(
                f"archive: {args.articles:,} articles ({matched:,} matched) in"
                f" {time.perf_counter() - started:.0f} s,"
                f" {config.database.stat().st_size / 2**20:.0f} MB"
            )
        server, url = serve(config)
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                for name, path in pages(config.database).items():
                    seconds = median_time(client, path, args.runs)
                    target = TARGETS.get(name, PAGE_TARGET)
                    if seconds is None:
                        print(f"{name}: not available ({path} answers 404)")
                        continue
                    verdict = "ok" if seconds <= target else "SLOW"
                    print(
                        f"{name}: {seconds * 1000:.0f} ms median of {args.runs}"
                        f" (target ≤ {target * 1000:.0f} ms: {verdict})  {path}"
                    )
        finally:
            server.should_exit = True


if __name__ == "__main__":
    main()
