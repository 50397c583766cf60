"""The outbox: one row per (watchlist, story or event, channel), written before any send is tried.

The row, not memory, is the truth: a crash at any point leaves each alert pending, sending
(retried at the next start, same id) or sent (never repeated); `failed` rows stay until a person
retries them. Digests, overflow summaries and notices are rows too (`kind`), sent the same way;
an alert folded into a digest or summary becomes `bundled` and names it in `bundle_id`.
The `alerts` table is created and migrated by `alerts.schema`; every SQL statement on it is
here. Times are stored as `alerts.times` writes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.database import Database
from alerts.message import Alert, Bundle, Message, message_from
from alerts.times import timestamp

PENDING, SENDING, SENT, FAILED, BUNDLED = "pending", "sending", "sent", "failed", "bundled"
STATUSES = (PENDING, SENDING, SENT, FAILED, BUNDLED)

# the queue order: rows queued at the same moment on two hosts may share a number (the id
# then decides), rows queued one after the other never do
NEXT_SEQ = "(SELECT coalesce(max(seq), 0) + 1 FROM alerts)"


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


def recover_in_flight(db: Database) -> int:
    """Alerts left `sending` by a crash go back to pending: at most that one send repeats."""
    cursor = db.execute("UPDATE alerts SET status = ? WHERE status = ?", [PENDING, SENDING])
    return cursor.rowcount


def due(
    db: Database, held: Iterable[str] = (), now: datetime | None = None
) -> list[dict[str, Any]]:
    """Rows to try now; alerts of the `held` (digest) channels wait for their digest."""
    held = list(held)
    holding = f" AND NOT (kind = 'alert' AND channel IN ({', '.join('?' * len(held))}))"
    return list(
        db.query(
            "SELECT * FROM alerts WHERE status = ? AND next_attempt_at <= ?"
            + (holding if held else "")
            + " ORDER BY next_attempt_at, created_at, seq",
            [PENDING, timestamp(now), *held],
        )
    )


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


def sent_since(db: Database, channel: str, since: datetime) -> int:
    return db.execute(
        "SELECT count(*) FROM alerts WHERE channel = ? AND status = ? AND sent_at >= ?",
        [channel, SENT, timestamp(since)],
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


def mark_sending(db: Database, row: dict[str, Any]) -> None:
    db.execute(
        "UPDATE alerts SET status = ?, attempts = attempts + 1 WHERE id = ?", [SENDING, row["id"]]
    )


def mark_sent(db: Database, row: dict[str, Any]) -> None:
    db.execute(
        "UPDATE alerts SET status = ?, sent_at = ?, last_error = NULL WHERE id = ?",
        [SENT, timestamp(), row["id"]],
    )


def mark_retry(db: Database, row: dict[str, Any], error: str, delay: float) -> bool:
    """The row, still `sending`, is due again after `delay`; False when its outcome was already
    recorded (an error after the send), which then stands: nothing is sent twice."""
    next_at = timestamp(datetime.now(UTC) + timedelta(seconds=delay))
    cursor = db.execute(
        "UPDATE alerts SET status = ?, last_error = ?, next_attempt_at = ? WHERE id = ?"
        " AND status = ?",
        [PENDING, error, next_at, row["id"], SENDING],
    )
    return cursor.rowcount > 0


def mark_failed(db: Database, row: dict[str, Any], error: str) -> bool:
    """The row, still `sending`, failed for good; False as for `mark_retry`."""
    cursor = db.execute(
        "UPDATE alerts SET status = ?, last_error = ? WHERE id = ? AND status = ?",
        [FAILED, error, row["id"], SENDING],
    )
    return cursor.rowcount > 0


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
