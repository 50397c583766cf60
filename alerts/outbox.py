"""The outbox: one row per (watchlist, story or event, channel), written before any send is tried.

The row, not memory, is the truth: a crash at any point leaves each alert pending, sending
(under its sender's lease: sent again, same id, once the lease ends) or sent (never repeated);
`failed` rows stay until a person retries them. Several senders share one outbox (the cluster
mode): each claims a row before sending it (`claim`), and only the lease holder records the
outcome. Digests, overflow summaries and notices are rows too (`kind`), sent the same way;
an alert folded into a digest or summary becomes `bundled` and names it in `bundle_id`.
The `alerts` table is created and migrated by `alerts.schema`; every SQL statement on it is
here. Times are stored as `alerts.times` writes them.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.database import POSTGRESQL, Database, dialect
from alerts.message import Alert, Bundle, Message, message_from
from alerts.times import timestamp

PENDING, SENDING, SENT, FAILED, BUNDLED = "pending", "sending", "sent", "failed", "bundled"
STATUSES = (PENDING, SENDING, SENT, FAILED, BUNDLED)

# the queue order: rows queued at the same moment on two hosts may share a number (the id
# then decides), rows queued one after the other never do
NEXT_SEQ = "(SELECT coalesce(max(seq), 0) + 1 FROM alerts)"

# the advisory locks of channels: two-key locks, this key first, then the channel's
CHANNEL_LOCKS = 0x6E776368


def alert_id(watchlist: str, key: str, channel: str) -> str:
    """Stable across retries and restarts, so receivers can drop repeats by id. `key` is the
    story id, or the event id for an alert keyed on an event: an event's id is the id of its
    first story, so a story alone in its event keeps the alert id it always had."""
    return message_key(watchlist, key, channel)


def message_key(*parts: str) -> str:
    """Ids stable for the same event and channel: the same parts give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"nw-{digest[:24]}"


def enqueue(
    db: Database,
    alert: Alert,
    channel: str,
    article_id: int,
    *,
    notice: int = 0,
    not_before: datetime | None = None,
) -> bool:
    """Add the alert unless its id (one per watchlist, story or event, and channel) is already
    queued; True if added. An alert keyed on an event records the event in `event_id`.

    `notice` N > 0 is the story's or event's Nth update notice for that watchlist and channel,
    held back until `not_before` so a fast-spreading story does not send one per copy."""
    cursor = db.execute(
        "INSERT INTO alerts (id, watchlist, channel, story_id, event_id, article_id,"
        " notice, status, attempts, next_attempt_at, created_at, payload, seq)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, {NEXT_SEQ}) ON CONFLICT DO NOTHING",
        [
            alert.id,
            alert.watchlist,
            channel,
            alert.story["id"],
            alert.event["id"] if alert.event else None,
            article_id,
            notice,
            PENDING,
            timestamp(max(not_before, datetime.now(UTC)) if not_before else None),
            timestamp(),
            json.dumps(alert.payload(), ensure_ascii=False),
        ],
    )
    return cursor.rowcount > 0


def enqueue_message(db: Database, message: Message, channel: str) -> bool:
    """Queue a digest, summary or notice; True if added (a repeated id is ignored)."""
    cursor = db.execute(
        "INSERT INTO alerts (id, kind, channel, status, attempts, next_attempt_at, created_at,"
        f" payload, seq) VALUES (?, ?, ?, ?, 0, ?, ?, ?, {NEXT_SEQ}) ON CONFLICT DO NOTHING",
        [
            message.id,
            message.kind,
            channel,
            PENDING,
            timestamp(),
            timestamp(),
            json.dumps(message.payload(), ensure_ascii=False),
        ],
    )
    return cursor.rowcount > 0


def due(
    db: Database,
    held: Iterable[str] = (),
    now: datetime | None = None,
    *,
    channel: str | None = None,
    sender: str = "",
) -> list[dict[str, Any]]:
    """Rows to try now, in queue order (of one `channel`, or all); alerts of the `held` (digest)
    channels wait for their digest. `sender` is who asks (see `_due`)."""
    held = list(held)
    marks = ", ".join(f":held{n}" for n in range(len(held)))
    holding = f" AND NOT (kind = 'alert' AND channel IN ({marks}))" if held else ""
    one = " AND channel = :channel" if channel is not None else ""
    return list(
        db.query(
            f"SELECT * FROM alerts WHERE {_due(db)}{one}{holding}"
            " ORDER BY next_attempt_at, created_at, seq",
            {
                **_due_params(now, sender),
                "channel": channel,
                **{f"held{n}": name for n, name in enumerate(held)},
            },
        )
    )


def _due(db: Database) -> str:
    """A row to try now: pending and its time come, or `sending` under a lease that no longer
    holds. A lease ends at `sending_until` (its sender died, or hangs past its deadline): the
    row is sent again, same id. On SQLite, whose one writer is the daemon holding the file,
    a row claimed by any other sender than `:sender` was left by a process that is gone: it is
    due at once, so a crash mid-send repeats that send at the next start, as it always did."""
    ended = "sending_until <= :now"
    if dialect(db) != POSTGRESQL:
        ended = f"({ended} OR claimed_by IS NOT :sender)"
    return f"(status = :pending AND next_attempt_at <= :now OR status = :sending AND {ended})"


def _due_params(now: datetime | None, sender: str) -> dict[str, Any]:
    return {"pending": PENDING, "sending": SENDING, "now": timestamp(now), "sender": sender}


def lock_channel(db: Database, channel: str) -> None:
    """Within a transaction: the decisions about one channel (how many it sent in the last
    minute, what is due next, whether a digest period closed) are taken by one sender at a time
    across the cluster, until the transaction ends. On SQLite the file's one writer is the
    lock already."""
    if dialect(db) == POSTGRESQL:
        key = zlib.crc32(channel.encode()) - 2**31
        db.execute("SELECT pg_advisory_xact_lock(?::integer, ?::integer)", [CHANNEL_LOCKS, key])


def claim(
    db: Database, row_id: str, sender: str, lease: float, now: datetime | None = None
) -> dict[str, Any] | None:
    """Take the row for `sender` if it is still due (see `_due`), with a lease of `lease`
    seconds; the row as claimed, or None when another sender has it or it is not due. One
    statement, so two senders never both take a row; on PostgreSQL a row another sender is
    claiming at that moment is skipped, not waited for."""
    now = now or datetime.now(UTC)
    skip = " FOR UPDATE SKIP LOCKED" if dialect(db) == POSTGRESQL else ""
    rows = list(
        db.query(
            "UPDATE alerts SET status = :sending, claimed_by = :sender, sending_until = :until,"
            " attempts = attempts + 1"
            f" WHERE id IN (SELECT id FROM alerts WHERE id = :id AND {_due(db)}{skip})"
            " RETURNING *",
            {
                **_due_params(now, sender),
                "id": row_id,
                "until": timestamp(now + timedelta(seconds=lease)),
            },
        )
    )
    return rows[0] if rows else None


def waiting(db: Database, channel: str, until: datetime) -> list[dict[str, Any]]:
    """A digest channel's alerts queued up to `until`, oldest first."""
    return list(
        db.query(
            "SELECT * FROM alerts WHERE channel = ? AND kind = 'alert' AND status = ?"
            " AND created_at <= ? ORDER BY created_at, seq",
            [channel, PENDING, timestamp(until)],
        )
    )


def bundle(
    db: Database,
    kind: str,
    channel: str,
    rows: list[dict[str, Any]],
    start: str | None,
    end: str,
) -> dict[str, Any]:
    """Fold alerts into one digest or summary row, atomically: each alert ends up in exactly one
    bundle, and the bundle is retried like any other row."""
    ids = [row["id"] for row in rows]
    message = Bundle(
        kind=kind,
        id=message_key(kind, channel, *ids),
        channel=channel,
        period_start=start,
        period_end=end,
        alerts=tuple(Alert.from_payload(json.loads(row["payload"])) for row in rows),
    )
    with db.atomic():
        enqueue_message(db, message, channel)
        marks = ", ".join("?" * len(ids))
        db.execute(
            f"UPDATE alerts SET status = ?, bundle_id = ? WHERE id IN ({marks})",
            [BUNDLED, message.id, *ids],
        )
    return db["alerts"].get(message.id)


def in_window(db: Database, channel: str, since: datetime) -> int:
    """The channel's messages sent since `since` or being sent now, by any sender: what counts
    against its rate limit."""
    return db.execute(
        "SELECT count(*) FROM alerts WHERE channel = ?"
        " AND (status = ? AND sent_at >= ? OR status = ?)",
        [channel, SENT, timestamp(since), SENDING],
    ).fetchone()[0]


def pending_count(db: Database) -> int:
    return db.execute("SELECT count(*) FROM alerts WHERE status = ?", [PENDING]).fetchone()[0]


def status_counts(db: Database) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall())


def channel_status_counts(db: Database) -> dict[tuple[str, str], int]:
    """Messages per (channel, status): what monitoring graphs and alerts on."""
    return {
        (channel, status): count
        for channel, status, count in db.execute(
            "SELECT channel, status, count(*) FROM alerts GROUP BY channel, status"
        )
    }


def oldest_pending(db: Database) -> str | None:
    """When the oldest message still waiting to be sent was queued (stored time), or None."""
    return db.execute("SELECT min(created_at) FROM alerts WHERE status = ?", [PENDING]).fetchone()[
        0
    ]


def message_of(row: dict[str, Any]) -> Message:
    return message_from(row["kind"], json.loads(row["payload"]))


def listing(
    db: Database, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Newest first, for people: `newswatch alerts` and the web app's pages of it."""
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    return list(
        db.query(
            f"SELECT * FROM alerts {where} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    )


def story_alerts(db: Database, story_id: str, event_id: str | None = None) -> list[dict[str, Any]]:
    """Every message about a story or the event it belongs to (alerts and update notices),
    oldest first: which watchlist told which channel, and how that went. An event's alert
    names its first story, so a later report finds it through `event_id`."""
    return list(
        db.query(
            "SELECT id, watchlist, channel, kind, notice, status, attempts, created_at, sent_at,"
            " last_error, story_id, event_id FROM alerts"
            " WHERE story_id = :story_id OR event_id = :event_id ORDER BY created_at, seq",
            {"story_id": story_id, "event_id": event_id},
        )
    )


def requeue(db: Database, ids: Iterable[str] = (), *, all_failed: bool = False) -> int:
    """Give failed rows a fresh set of attempts, due now; rows in any other state are left alone."""
    ids = list(ids)
    if not ids and not all_failed:
        return 0
    where = "status = ?" + ("" if all_failed else f" AND id IN ({', '.join('?' * len(ids))})")
    cursor = db.execute(
        "UPDATE alerts SET status = ?, attempts = 0, next_attempt_at = ? WHERE " + where,
        [PENDING, timestamp(), FAILED, *([] if all_failed else ids)],
    )
    return cursor.rowcount


def expedite(db: Database, channel: str) -> int:
    """A channel that accepted a retried message is back: its other backed-off messages are due
    now, not when their own backoff ends (after an hour's outage, that could be another hour)."""
    now = timestamp()
    cursor = db.execute(
        "UPDATE alerts SET next_attempt_at = ? WHERE channel = ? AND status = ? AND attempts > 0"
        " AND next_attempt_at > ?",
        [now, channel, PENDING, now],
    )
    return cursor.rowcount


def mark_sent(db: Database, row: dict[str, Any]) -> bool:
    """Record the send of a claimed row; False when its lease passed to another sender, whose
    outcome then stands."""
    cursor = db.execute(
        "UPDATE alerts SET status = ?, sent_at = ?, last_error = NULL" + _HELD,
        [SENT, timestamp(), row["id"], SENDING, row["claimed_by"]],
    )
    return cursor.rowcount > 0


def mark_retry(db: Database, row: dict[str, Any], error: str, delay: float) -> bool:
    """The claimed row is due again after `delay`; False when its outcome was already recorded
    (an error after the send) or its lease passed to another sender: that outcome stands."""
    next_at = timestamp(datetime.now(UTC) + timedelta(seconds=delay))
    cursor = db.execute(
        "UPDATE alerts SET status = ?, last_error = ?, next_attempt_at = ?" + _HELD,
        [PENDING, error, next_at, row["id"], SENDING, row["claimed_by"]],
    )
    return cursor.rowcount > 0


def mark_failed(db: Database, row: dict[str, Any], error: str) -> bool:
    """The claimed row failed for good; False as for `mark_retry`."""
    cursor = db.execute(
        "UPDATE alerts SET status = ?, last_error = ?" + _HELD,
        [FAILED, error, row["id"], SENDING, row["claimed_by"]],
    )
    return cursor.rowcount > 0


# an outcome is recorded only by the sender that still holds the row's lease
_HELD = " WHERE id = ? AND status = ? AND claimed_by = ?"


def story_notices(
    db: Database,
    story_id: str,
    event_id: str | None = None,
    *,
    story_rows: bool = True,
) -> list[dict[str, Any]]:
    """For each (watchlist, channel) alerted on the event (`event_id` set) or, with
    `story_rows`, on the story itself (`event_id` NULL): the number of its last update notice
    (`last_notice`, 0 for none), whether one is still waiting (`waiting`), and when the last
    message for it was sent, or queued if none was (`last_out`). `key` is what the alert was
    keyed on. An alert keyed on the event's first story (queued before events existed, or
    before its watchlist switched to `group: event`) has the event's key, so it is the event's:
    its id is the one an event alert would have. A watchlist that switched has one row per key."""
    keys = "event_id = :event_id OR (event_id IS NULL AND story_id = :event_id)"
    if story_rows:
        keys += " OR (event_id IS NULL AND story_id = :story_id)"
    return list(
        db.query(
            "SELECT watchlist, channel, coalesce(event_id, story_id) AS key,"
            " max(event_id) AS event_id, max(notice) AS last_notice,"
            " sum(CASE WHEN status = :pending THEN 1 ELSE 0 END) AS waiting,"
            " max(coalesce(sent_at, created_at)) AS last_out"
            f" FROM alerts WHERE {keys} GROUP BY watchlist, channel, key"
            " HAVING min(notice) = 0 ORDER BY watchlist, channel, key",
            {"pending": PENDING, "story_id": story_id, "event_id": event_id},
        )
    )
