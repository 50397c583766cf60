"""Stories across hosts: on PostgreSQL the near-duplicate index is the `story_bands` table, and
it must decide as the in-memory index of one daemon does, while several hosts store at once."""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from alerts.database import PgDatabase
from crawler import dedup, store
from crawler.articles import Record
from crawler.config import DedupConfig
from crawler.dedup import NearDuplicateIndex
from crawler.event_terms import terms_of
from crawler.stories import Filed, Stories, new_story_id
from tests.test_stories import COPY_B, COPY_C, STORY

OTHER = [
    "RABAT — Morocco and France signed on Monday a plan to train magistrates together, the"
    " justice ministry said in a statement, after talks in Paris last month.",
    "The plan covers exchanges of judges and prosecutors between Rabat and Paris, and a joint"
    " course on cybercrime for investigators of both countries starting next year.",
]
ARABIC = [
    "سلمت السلطات المغربية يوم الجمعة إلى فرنسا مواطنا فرنسيا مطلوبا في قضية سطو مسلح على متجر"
    " للمجوهرات في مدينة ليون، حسب ما أعلنته وزارة العدل في بيان.",
    "وكان الرجل قد اعتقل في شهر غشت بمدينة أكادير حيث كان يكتري فيلا بهوية مستعارة.",
]
ARABIC_COPY = [*ARABIC, "المصدر: وكالة المغرب العربي للأنباء."]
SHORT = ["Breaking."]


def pg_open(url: str) -> PgDatabase:
    """The cluster's database as a worker opens it."""
    return store.open_db(url)


@pytest.fixture
def pg(pg_url: str) -> Iterator[PgDatabase]:
    db = pg_open(pg_url)
    yield db
    db.close()


def record(outlet: str, slug: str, title: str, paragraphs: list[str]) -> Record:
    url = f"https://{outlet}.example/{slug}"
    return Record(outlet, url, url, frozenset({url}), title, tuple(paragraphs), "en", None, "page")


def file(stories: Stories, article: Record) -> Filed | None:
    """One article stored as the ingest stores it: a new one in its story, or a new version of
    the stored one, in one transaction; the index told once it committed."""
    fingerprint = dedup.fingerprint(article.title, article.paragraphs)
    with stories.db.atomic():
        known = store.first_known(stories.db, article.aliases)
        if known is None:
            filed = stories.add(
                article, fingerprint, None, terms_of(article.title, article.paragraphs)
            )
        else:
            filed = stories.revise(known, article, fingerprint)
    if filed is not None:
        stories.index_article(filed.article_id, fingerprint.signature)
    return filed


def band_rows(db: PgDatabase) -> set[tuple[int, int, int]]:
    """(band, hash as the in-memory index holds it, article id) of every stored band."""
    rows = db.execute("SELECT band, hash, article_id FROM story_bands").fetchall()
    return {(band, int(np.int64(value).view(np.uint64)), key) for band, value, key in rows}


ARTICLES = [
    record("a", "extradition", "Morocco extradites Lyon robbery suspect", STORY),
    record("b", "fugitive", "French fugitive sent home from Morocco", COPY_B),
    record("c", "12345", "Lyon jewellery robbery suspect handed to France", COPY_C),
    record("d", "plan", "Morocco and France sign a judicial cooperation plan", OTHER),
    record("e", "taslim", "المغرب يسلم فرنسا مطلوبا", ARABIC),
    record("f", "taslim", "المغرب يسلم فرنسا مطلوبا في قضية سطو", ARABIC_COPY),
    record("g", "flash", "Flash", SHORT),
    record("a", "extradition-again", "Morocco extradites Lyon robbery suspect", STORY),
]


def test_band_rows_are_the_in_memory_index_band_keys(pg):
    stories = Stories(pg, DedupConfig())
    for article in ARTICLES:
        file(stories, article)

    memory = NearDuplicateIndex(DedupConfig().threshold)
    memory.add_all(store.all_signatures(pg))
    stored = band_rows(pg)
    # the in-memory index's band keys: its sorted hashes beside their article ids
    assert {(value, key) for _, value, key in stored} == set(
        zip(memory._hashes.tolist(), memory._ids.tolist(), strict=True)
    )
    bands = memory.banding.bands
    for article in {key for _, _, key in stored}:
        numbers = sorted(band for band, _, key in stored if key == article)
        assert numbers == list(range(bands))
    # the short text gives no signature, hence no bands; each other article has one per band
    assert len(stored) == bands * (len(ARTICLES) - 1)


def test_stories_on_postgresql_are_those_of_the_in_memory_index(pg, tmp_path):
    """The same articles, in the same order, make the same stories on both engines: same
    story of each article, same sizes, outlets and titles in `newswatch stories`."""
    decided = {}
    db = store.open_db(tmp_path / "news.db")
    for engine, database in (("sqlite", db), ("postgresql", pg)):
        stories = Stories(database, DedupConfig())
        decided[engine] = [file(stories, article).story_id for article in ARTICLES]
    assert decided["postgresql"] == decided["sqlite"]
    story = new_story_id("https://a.example/extradition")
    arabic = new_story_id("https://e.example/taslim")
    flash = new_story_id("https://g.example/flash")
    plan = new_story_id("https://d.example/plan")
    assert decided["sqlite"] == [story, story, story, plan, arabic, arabic, flash, story]

    def shown(database):
        return {
            (row.id, row.articles, tuple(row.outlets), row.title, tuple(row.urls))
            for row in store.list_stories(database)
        }

    assert shown(pg) == shown(db)
    assert store.story_reach(pg, story) == store.story_reach(db, story) == (4, 3)
    assert store.stories_by_id(pg, [story]).keys() == {story}


def test_a_restarted_worker_finds_what_others_stored(pg_url, pg):
    """Nothing is rebuilt at start: a worker opened after the articles were stored by another
    finds them in the table."""
    file(Stories(pg, DedupConfig()), ARTICLES[0])
    other = pg_open(pg_url)
    try:
        filed = file(Stories(other, DedupConfig()), ARTICLES[1])
    finally:
        other.close()
    assert filed.story_id == new_story_id("https://a.example/extradition")


def test_a_replaced_text_replaces_its_bands_and_a_dropped_signature_drops_them(pg):
    stories = Stories(pg, DedupConfig())
    first = file(stories, ARTICLES[0])
    before = band_rows(pg)
    rewritten = record("a", "extradition", "Morocco and France sign a plan", OTHER)
    assert file(stories, rewritten).revised

    after = band_rows(pg)
    assert after and after.isdisjoint(before)
    assert {key for _, _, key in after} == {first.article_id}
    # the old text no longer finds the article; the new one does
    copy = file(stories, record("b", "fugitive", "French fugitive sent home", COPY_B))
    assert copy.story_id == new_story_id("https://b.example/fugitive")
    plan = file(stories, record("d", "plan", "Judicial cooperation plan", [*OTHER, "AFP"]))
    assert plan.story_id == first.story_id

    file(stories, record("a", "extradition", "Flash", SHORT))
    assert first.article_id not in {key for _, _, key in band_rows(pg)}


def test_pruning_an_article_drops_its_band_rows(pg):
    """Retention deletes a pruned article's signature (`store.prune_articles`): its bands go
    with it, whichever code deletes it, and the pruned text is no longer a candidate."""
    stories = Stories(pg, DedupConfig())
    pruned = file(stories, ARTICLES[0])
    kept = file(stories, ARTICLES[3])
    pg.execute(
        "UPDATE articles SET fetched_at = '2000-01-01T00:00:00Z' WHERE id = ?", [pruned.article_id]
    )
    assert store.prune_articles(pg, "2001-01-01T00:00:00Z", 10) == 1

    assert {key for _, _, key in band_rows(pg)} == {kept.article_id}
    copy = file(stories, ARTICLES[1])
    assert copy.story_id == new_story_id("https://b.example/fugitive")


def words(rng: random.Random, count: int) -> str:
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(count)
    )


def near_pairs(count: int) -> list[tuple[Record, Record]]:
    """`count` stories, each as two outlets carry it: the second with a sentence and a credit
    line added (similar enough for LSH to miss one pair in 20,000). Every story is unlike every
    other."""
    rng = random.Random(11)
    pairs = []
    for number in range(count):
        paragraphs = [words(rng, 30) + "." for _ in range(3)]
        copy = [*paragraphs, words(rng, 8) + ".", "Distributed by a wire service."]
        pairs.append(
            (
                record("a", f"story-{number}", f"story {number}", paragraphs),
                record("b", f"copy-{number}", f"story {number}, copied", copy),
            )
        )
    return pairs


def store_together(url: str, rounds: list[tuple[Record, Record]]) -> None:
    """Two workers, each its own connection, store the two sides of each round at the same
    moment (a barrier releases them together)."""
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def worker(side: int) -> None:
        db = pg_open(url)
        try:
            stories = Stories(db, DedupConfig())
            for pair in rounds:
                barrier.wait()
                file(stories, pair[side])
        except BaseException as error:
            errors.append(error)
            barrier.abort()
        finally:
            db.close()

    threads = [threading.Thread(target=worker, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_near_copies_stored_at_the_same_moment_on_two_hosts_form_one_story(pg_url, pg):
    pairs = near_pairs(50)
    for original, copy in pairs:
        assert dedup.similarity(fingerprint_of(original), fingerprint_of(copy)) >= 0.75

    store_together(pg_url, pairs)

    stories = {
        row["story_id"]: sorted(row["urls"])
        for row in pg.query(
            "SELECT story_id, array_agg(url) AS urls FROM articles GROUP BY story_id"
        )
    }
    assert len(stories) == 50
    assert sorted(stories.values()) == sorted(sorted([a.url, b.url]) for a, b in pairs)


def fingerprint_of(article: Record) -> bytes:
    signature = dedup.fingerprint(article.title, article.paragraphs).signature
    assert signature is not None
    return signature


def test_exact_copies_too_short_for_a_signature_stored_at_once_form_one_story(pg_url, pg):
    """A text too short for a signature has no bands: its content hash is locked instead."""
    flashes = [
        (
            record("a", f"flash-{n}", "Flash", [f"Quake {n}."]),
            record("b", f"flash-{n}", "Flash", [f"Quake {n}."]),
        )
        for n in range(10)
    ]
    store_together(pg_url, flashes)

    assert pg.execute("SELECT count(*) FROM story_bands").fetchone()[0] == 0
    assert pg.execute("SELECT count(DISTINCT story_id) FROM articles").fetchone()[0] == 10
    assert pg.execute("SELECT count(*) FROM articles").fetchone()[0] == 20


def test_a_one_megabyte_text_is_banded_and_its_copy_found(pg):
    """1 MB of text drawn from a few hundred words, as a long report repeats its vocabulary."""
    rng = random.Random(5)
    vocabulary = words(rng, 300).split()
    paragraphs = [" ".join(rng.choices(vocabulary, k=150)) for _ in range(1000)]
    assert sum(len(p) for p in paragraphs) > 1_000_000
    stories = Stories(pg, DedupConfig())
    huge = file(stories, record("a", "huge", "A very long report", paragraphs))
    copy = file(stories, record("b", "huge", "A very long report", [*paragraphs, "Credit."]))

    assert copy.story_id == huge.story_id
    banded = pg.execute(
        "SELECT count(*) FROM story_bands WHERE article_id = ?", [huge.article_id]
    ).fetchone()[0]
    assert banded == dedup.band_params(DedupConfig().threshold)[0]
