"""The near-duplicate index on PostgreSQL (issue 11): prints its figures, asserts nothing.

A throwaway PostgreSQL server (the tests' own, `tests/postgres.py`: fsync off, default
shared_buffers) is filled with `--articles` articles' LSH band rows in `story_bands` (binary
COPY; synthetic random signatures, cut into bands by the daemon's own `dedup.Banding`; the
article and signature rows minimal, the signatures themselves left empty since the lookup never
reads them). The band table's indexes are built after the load, as a restore would build them.
Then, on the full table:

1. the candidate query (`store.band_candidates`, one indexed query over a text's band hashes)
   timed from Python, round trip included, over `--lookups` texts: half stored ones (each finds
   itself), half new ones (each finds nothing, as most new articles do); p50 and p95;
2. the band insert cost per article (`store.save_bands`: its old rows deleted, its new rows
   inserted, inside the storing transaction, foreign key checked): the median per article of
   each of `--runs` runs of 200 new articles, then the median of the runs.

Usage: python bench/lsh.py [--articles N] [--lookups N] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.database import PgDatabase
from crawler import store
from crawler.config import DedupConfig
from crawler.dedup import NUM_PERM, Banding
from crawler.store.postgres import open_postgres
from tests.postgres import new_server

CHUNK = 100_000
NEW_PER_RUN = 200
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
# one story_bands row in COPY's binary format: field count, then each field's length and value
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("band_size", ">i4"),
        ("band", ">i2"),
        ("hash_size", ">i4"),
        ("hash", ">i8"),
        ("id_size", ">i4"),
        ("article_id", ">i8"),
    ]
)


def random_signatures(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.integers(0, 2**32, (count, NUM_PERM), dtype=np.uint32)


def band_rows(banding: Banding, first_id: int, signatures: np.ndarray) -> bytes:
    hashes = banding.of_many(signatures).view(np.int64)
    count, bands = hashes.shape
    rows = np.zeros(count * bands, dtype=_ROW)
    rows["fields"], rows["band_size"], rows["hash_size"], rows["id_size"] = 3, 2, 8, 8
    rows["band"] = np.tile(np.arange(bands, dtype=np.int16), count)
    rows["hash"] = hashes.ravel()
    rows["article_id"] = np.repeat(np.arange(first_id, first_id + count, dtype=np.int64), bands)
    return rows.tobytes()


def copy_text(db: PgDatabase, sql: str, lines: list[str]) -> None:
    with db.conn.cursor() as cursor, cursor.copy(sql) as copy:
        copy.write("".join(lines))


def copy_articles(db: PgDatabase, first: int, count: int) -> None:
    """`count` minimal articles from id `first`, with their signatures."""
    rows, signatures = article_lines(first, count)
    copy_text(
        db,
        "COPY articles (id, url, canonical_url, source, fetched_at, content_hash, story_id)"
        " FROM STDIN",
        rows,
    )
    copy_text(db, "COPY article_signatures (article_id, signature) FROM STDIN", signatures)


def article_lines(first: int, count: int) -> tuple[list[str], list[str]]:
    """Minimal article rows and their (empty) signatures."""
    articles, signatures = [], []
    for key in range(first, first + count):
        url = f"https://bench.example/{key}"
        articles.append(f"{key}\t{url}\t{url}\tbench\t2026-01-01T00:00:00Z\th{key}\tst-{key}\n")
        signatures.append(f"{key}\t\\\\x\n")
    return articles, signatures


def fill(db: PgDatabase, banding: Banding, articles: int, rng: np.random.Generator) -> None:
    """Articles 1..N, their band rows by binary COPY; the band indexes dropped for the load and
    made again after it from their own definitions; foreign keys not checked while loading."""
    definitions = [
        row[0]
        for row in db.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'story_bands'"
        ).fetchall()
    ]
    for name in db.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'story_bands'"
    ).fetchall():
        db.execute(f'DROP INDEX "{name[0]}"')
    db.execute("SET session_replication_role = replica")
    for first in range(1, articles + 1, CHUNK):
        count = min(CHUNK, articles + 1 - first)
        copy_articles(db, first, count)
        with (
            db.conn.cursor() as cursor,
            cursor.copy(
                "COPY story_bands (band, hash, article_id) FROM STDIN WITH (FORMAT binary)"
            ) as copy,
        ):
            copy.write(_COPY_HEADER)
            copy.write(band_rows(banding, first, random_signatures(rng, count)))
            copy.write(_COPY_TRAILER)
        print(f"  loaded {first + count - 1:,} articles", flush=True)
    db.execute("SET session_replication_role = origin")
    db.execute("SET maintenance_work_mem = '1GB'")
    for definition in definitions:
        db.execute(definition)
    db.execute(f"SELECT setval(pg_get_serial_sequence('articles', 'id'), {articles})")
    db.execute("VACUUM ANALYZE story_bands")
    db.execute("ANALYZE articles")


def hashes_of(banding: Banding, signature: np.ndarray) -> list[int]:
    return banding.of_many(signature.reshape(1, NUM_PERM))[0].view(np.int64).tolist()


def lookups(
    db: PgDatabase, banding: Banding, articles: int, count: int, seed: int
) -> tuple[float, float, list[int]]:
    """p50 and p95 in ms of the candidate query; the stored texts are the first loaded, drawn
    again from the seed that made them, the new ones from another seed."""
    rng = np.random.default_rng(seed)
    stored = random_signatures(rng, min(CHUNK, articles))[: count // 2]
    fresh = random_signatures(np.random.default_rng(seed + 1), count - len(stored))
    times, found = [], []
    for signature in (*stored, *fresh):
        hashes = hashes_of(banding, signature)
        started = time.perf_counter()
        candidates = store.band_candidates(db, hashes)
        times.append((time.perf_counter() - started) * 1000)
        found.append(len(candidates))
    quantiles = statistics.quantiles(times, n=100)
    return quantiles[49], quantiles[94], found


def insert_cost(db: PgDatabase, banding: Banding, articles: int, runs: int) -> list[float]:
    """Each run's median ms per article of `save_bands` for NEW_PER_RUN new articles."""
    rng = np.random.default_rng(99)
    medians = []
    first = articles + 1
    for _ in range(runs):
        db.execute("SET session_replication_role = origin")
        copy_articles(db, first, NEW_PER_RUN)
        costs = []
        for key, signature in enumerate(random_signatures(rng, NEW_PER_RUN), start=first):
            hashes = hashes_of(banding, signature)
            with db.atomic():
                started = time.perf_counter()
                store.save_bands(db, key, hashes)
                costs.append((time.perf_counter() - started) * 1000)
        medians.append(statistics.median(costs))
        first += NEW_PER_RUN
    return medians


def plan(db: PgDatabase, banding: Banding) -> str:
    hashes = hashes_of(banding, random_signatures(np.random.default_rng(3), 1)[0])
    rows = db.execute(
        "EXPLAIN SELECT DISTINCT s.article_id FROM unnest(?::bigint[]) WITH ORDINALITY"
        " AS t (hash, number) JOIN story_bands s ON s.band = t.number - 1 AND s.hash = t.hash"
        " ORDER BY 1",
        [hashes],
    ).fetchall()
    return "\n".join("    " + row[0] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    banding = Banding(DedupConfig().threshold)
    server = new_server()
    try:
        db = open_postgres(server.database())
        started = time.perf_counter()
        seed = 1
        fill(db, banding, args.articles, np.random.default_rng(seed))
        loaded = time.perf_counter() - started
        size = db.execute("SELECT pg_total_relation_size('story_bands')").fetchone()[0]
        print(
            f"{args.articles:,} articles, {args.articles * banding.bands:,} band rows"
            f" ({banding.bands} bands of {banding.rows}) loaded and indexed in {loaded:.0f} s;"
            f" story_bands with its indexes: {size / 2**20:,.0f} MiB"
            f" ({size / args.articles:,.0f} bytes per article)"
        )
        print("candidate query plan:\n" + plan(db, banding))
        p50, p95, found = lookups(db, banding, args.articles, args.lookups, seed)
        hits = sum(1 for count in found[: args.lookups // 2] if count == 1)
        print(
            f"candidate query over {args.lookups:,} lookups: p50 {p50:.2f} ms, p95 {p95:.2f} ms"
            f" (stored texts finding themselves: {hits}/{args.lookups // 2};"
            f" new texts finding any: {sum(1 for c in found[args.lookups // 2 :] if c)})"
        )
        medians = insert_cost(db, banding, args.articles, args.runs)
        print(
            f"band insert per article ({banding.bands} rows, in its transaction):"
            f" {statistics.median(medians):.2f} ms"
            f" (median of {args.runs} runs of {NEW_PER_RUN}: "
            + ", ".join(f"{m:.2f}" for m in medians)
            + ")"
        )
        db.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
