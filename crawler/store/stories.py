"""Stories: the near-duplicate signatures of stored articles, which story a text already
belongs to, and what a story amounts to (its size, its outlets, the `newswatch stories` list)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from alerts.database import Database
from crawler.store.database import chunks, joined, one_row


def all_signatures(db: Database) -> Iterator[tuple[int, bytes]]:
    """(article id, signature) of every article that has one: what the story index is rebuilt
    from at start."""
    for row in db.execute("SELECT article_id, signature FROM article_signatures"):
        yield row[0], row[1]


def article_signature(db: Database, article_id: int) -> bytes | None:
    row = db.execute(
        "SELECT signature FROM article_signatures WHERE article_id = ?", [article_id]
    ).fetchone()
    return row[0] if row else None


def save_signature(db: Database, article_id: int, signature: bytes | None) -> None:
    """An article's signature replaced (or dropped when its text gives none)."""
    if signature is None:
        db.execute("DELETE FROM article_signatures WHERE article_id = ?", [article_id])
    else:
        db["article_signatures"].upsert(
            {"article_id": article_id, "signature": signature}, pk="article_id"
        )


def lock_texts(db: Database, keys: list[int]) -> None:
    """Advisory locks on a text's 64-bit keys, held until the storing transaction ends
    (PostgreSQL). Taken in ascending order, one at a time as `unnest` yields them: two
    transactions sharing keys queue on the smallest they share and never wait on each other
    in a cycle."""
    db.execute(
        "SELECT count(pg_advisory_xact_lock(key)) FROM unnest(?::bigint[]) AS key",
        [sorted(set(keys))],
    )


def save_bands(db: Database, article_id: int, hashes: list[int]) -> None:
    """An article's rows in `story_bands` (PostgreSQL) made those of its current signature's
    band hashes, band 0 first (none: its text gives no signature). A signature deleted takes
    its bands with it (the table's foreign key cascades); a replaced one is seen to here."""
    db.execute("DELETE FROM story_bands WHERE article_id = ?", [article_id])
    if hashes:
        db.execute(
            "INSERT INTO story_bands (band, hash, article_id) SELECT number - 1, hash, ?"
            " FROM unnest(?::bigint[]) WITH ORDINALITY AS bands (hash, number)",
            [article_id, hashes],
        )


def band_candidates(db: Database, hashes: list[int]) -> list[int]:
    """Articles sharing at least one band with a text whose band hashes are `hashes` (band 0
    first): one lookup of the `(band, hash)` index per band, in one query (PostgreSQL)."""
    rows = db.execute(
        "SELECT DISTINCT s.article_id FROM unnest(?::bigint[]) WITH ORDINALITY AS t (hash, number)"
        " JOIN story_bands s ON s.band = t.number - 1 AND s.hash = t.hash ORDER BY 1",
        [hashes],
    ).fetchall()
    return [row[0] for row in rows]


def stories_and_signatures(db: Database, article_ids: list[int]) -> list[tuple[str, bytes]]:
    """(story id, signature) of the given articles; an id without a signature (its article
    rolled back, or pruned) drops out."""
    marks = ",".join("?" * len(article_ids))
    rows = db.execute(
        "SELECT a.story_id, s.signature FROM article_signatures s"
        f" JOIN articles a ON a.id = s.article_id WHERE s.article_id IN ({marks})",
        article_ids,
    ).fetchall()
    return [(story, signature) for story, signature in rows]


def story_of_text(db: Database, content_hash: str) -> str | None:
    """The story of a stored article with the same normalised text, if any."""
    row = db.execute(
        "SELECT story_id FROM articles WHERE content_hash = ? LIMIT 1", [content_hash]
    ).fetchone()
    return row[0] if row else None


def story_reach(db: Database, story_id: str) -> tuple[int, int]:
    """How far a story has spread: its articles and the distinct outlets carrying them."""
    row = one_row(
        db,
        "SELECT count(*) AS articles, count(DISTINCT source) AS outlets FROM articles"
        " WHERE story_id = ?",
        [story_id],
    )
    return row["articles"], row["outlets"]


def story_outlets(db: Database, story_id: str) -> set[str]:
    rows = db.execute("SELECT DISTINCT source FROM articles WHERE story_id = ?", [story_id])
    return {row[0] for row in rows}


@dataclass(frozen=True)
class StoryRow:
    """A story as `newswatch stories` shows it, with the event it is in and its articles'
    addresses (a story stored before events were kept is an event of its own)."""

    id: str
    event: str
    articles: int
    outlets: list[str]
    first_seen: str
    last_seen: str
    title: str
    urls: list[str]


def _story_columns(db: Database) -> str:
    """A story's row from its articles; its outlets are joined by commas (a source name holds
    none), by each engine's own aggregate."""
    outlets = joined(db, "DISTINCT a.source")
    return (
        f"SELECT a.story_id, coalesce(e.event_id, a.story_id), count(*), {outlets},"
        " min(a.fetched_at), max(coalesce(a.updated_at, a.fetched_at)),"
        " (SELECT title FROM articles f WHERE f.story_id = a.story_id ORDER BY f.id LIMIT 1)"
        " FROM articles a LEFT JOIN story_events e ON e.story_id = a.story_id"
    )


def list_stories(db: Database, since: str | None = None, *, urls: bool = True) -> list[StoryRow]:
    """Stories seen (first or last) since `since` (ISO UTC), most recently active first; the
    title is the first copy's. Without `urls` their articles' addresses are not read (a table
    does not show them) and are empty."""
    rows = db.execute(
        f"{_story_columns(db)} GROUP BY a.story_id, e.event_id"
        " HAVING max(coalesce(a.updated_at, a.fetched_at)) >= ? ORDER BY 6 DESC, 1",
        [since or ""],
    ).fetchall()
    return _story_rows(db, rows, urls)


def stories_by_id(db: Database, story_ids: list[str]) -> dict[str, StoryRow]:
    """The stories of `story_ids` that are stored, by id: an event's stories may be older than
    the event's last report, so they are read by id rather than by age."""
    rows = []
    for chunk, marks in chunks(story_ids):
        rows += db.execute(
            f"{_story_columns(db)} WHERE a.story_id IN ({marks}) GROUP BY a.story_id, e.event_id",
            chunk,
        ).fetchall()
    return {row.id: row for row in _story_rows(db, rows)}


def _story_rows(db: Database, rows: list[tuple], with_urls: bool = True) -> list[StoryRow]:
    urls = _story_urls(db, [row[0] for row in rows]) if with_urls else {}
    return [
        StoryRow(
            story,
            event,
            count,
            sorted((outlets or "").split(",")),
            first,
            last,
            title or "",
            urls.get(story, []),
        )
        for story, event, count, outlets, first, last, title in rows
    ]


def _story_urls(db: Database, story_ids: list[str]) -> dict[str, list[str]]:
    """Each story's article addresses, first stored first; read apart from the story's row
    because a URL may hold any separator `group_concat` could use."""
    urls: dict[str, list[str]] = {}
    for chunk, marks in chunks(story_ids):
        for story, url in db.execute(
            f"SELECT story_id, url FROM articles WHERE story_id IN ({marks}) ORDER BY id", chunk
        ):
            urls.setdefault(story, []).append(url)
    return urls
