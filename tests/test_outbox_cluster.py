"""One outbox, several senders (the cluster mode): each a connection of its own to one real
PostgreSQL database, under its own name, delivering to a loopback webhook receiver. Every alert
is sent by one of them, a sender that dies mid-send is replaced once its lease ends (same id,
same body), a sender that lost its lease cannot record an outcome over its successor's, and a
channel's rate limit and digests hold across all of them."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts import digest, outbox
from alerts.channels import ChannelConfig
from alerts.database import Database, PgDatabase
from alerts.delivery import deliver_due
from alerts.schema import migrate_postgres
from alerts.senders import send
from crawler.demo.receivers import ReceivedRequest
from tests.support import wait_until
from tests.test_delivery import FAST, channel, queue, rows


@pytest.fixture
def senders(pg_url: str) -> Iterator[Callable[[], PgDatabase]]:
    """Opens connections to one outbox in PostgreSQL: one per sender, as on separate hosts."""
    opened: list[PgDatabase] = []

    def connect() -> PgDatabase:
        db = PgDatabase(pg_url)
        migrate_postgres(db)
        opened.append(db)
        return db

    yield connect
    for db in opened:
        db.close()


def deliver(db: Database, channels: dict[str, ChannelConfig], sender: str) -> None:
    asyncio.run(deliver_due(db, channels, FAST, sender=sender))


def in_threads(*work: Callable[[], object]) -> None:
    """Runs each callable in a thread of its own, all released together; re-raises a failure."""
    start = threading.Barrier(len(work))
    failures: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        start.wait()
        try:
            job()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures


def ids_in(request: ReceivedRequest) -> list[str]:
    """The alert ids a request carries: its own, or those of the summary or digest it is."""
    body = request.json
    return [alert["id"] for alert in body["alerts"]] if "alerts" in body else [body["id"]]


def test_two_senders_drain_one_outbox_each_alert_sent_once(senders, start_hook):
    """The receiver holds its first answer until a second request arrives: that one can only
    come from the other sender, so both are sending at the same time."""
    second = threading.Event()

    def hold_the_first(request: ReceivedRequest) -> None:
        if len(hook.requests) == 1:
            assert second.wait(timeout=20), "the other sender never sent"
        else:
            second.set()

    hook = start_hook(on_request=hold_the_first)
    one, two = senders(), senders()
    ids = queue(one, "hook", 100)
    channels = {"hook": channel(type="webhook", url=hook.url)}

    in_threads(lambda: deliver(one, channels, "host-a:1"), lambda: deliver(two, channels, "b:2"))

    received = Counter(r.headers["X-Newswatch-Id"] for r in hook.requests)
    assert set(received) == set(ids)
    assert set(received.values()) == {1}, "no alert sent twice"
    assert {r["status"] for r in rows(one)} == {"sent"}
    assert {r["claimed_by"] for r in rows(one)} == {"host-a:1", "b:2"}


def test_a_dead_senders_alert_is_sent_again_once_its_lease_ends(senders, hook, caplog):
    dead, live = senders(), senders()
    first, *others = queue(dead, "hook", 3)
    hook_channel = channel(type="webhook", url=hook.url)
    channels = {"hook": hook_channel}
    claimed = outbox.claim(dead, first, "host-a:1", lease=3.0)
    asyncio.run(send(hook_channel, outbox.message_of(claimed)))  # then it died, before marking
    dead.close()

    deliver(live, channels, "host-b:2")

    assert [r.headers["X-Newswatch-Id"] for r in hook.requests[1:]] == others
    assert rows(live, id=first)[0]["status"] == "sending", "not taken while its lease holds"
    with caplog.at_level(logging.WARNING, logger="newswatch.delivery"):
        wait_until(lambda: deliver(live, channels, "host-b:2") or len(hook.requests) == 4, 20)

    again = hook.requests[3]
    assert again.headers["X-Newswatch-Id"] == first
    assert again.body == hook.requests[0].body
    (row,) = rows(live, id=first)
    assert (row["status"], row["claimed_by"], row["attempts"]) == ("sent", "host-b:2", 2)
    assert f"alert {first} to hook: taken over from sender host-a:1 " in caplog.text


def test_a_sender_whose_lease_passed_on_cannot_record_an_outcome(outbox_db):
    (alert_id,) = queue(outbox_db, "hook", 1)
    slow = outbox.claim(outbox_db, alert_id, "host-a:1", lease=0.0)  # ended before it answered
    successor = outbox.claim(outbox_db, alert_id, "host-b:2", lease=60.0)
    assert successor is not None, "an ended lease is taken over"

    assert not outbox.mark_failed(outbox_db, slow, "HTTP 500")
    assert not outbox.mark_retry(outbox_db, slow, "HTTP 500", 0.0)
    assert not outbox.mark_sent(outbox_db, slow)
    assert outbox.mark_sent(outbox_db, successor)

    (row,) = rows(outbox_db)
    assert (row["status"], row["claimed_by"], row["last_error"]) == ("sent", "host-b:2", None)


def test_max_per_minute_holds_across_senders(senders, start_hook):
    """Sender b delivers while sender a is in the middle of its first send, with three more
    alerts queued meanwhile: a's send in flight counts against the window b sees."""
    late: list[str] = []

    def b_delivers_meanwhile(request: ReceivedRequest) -> None:
        if len(hook.requests) == 1:
            late.extend(queue(two, "hook", 3, watchlist="late"))
            deliver(two, channels, "host-b:2")

    hook = start_hook(on_request=b_delivers_meanwhile)
    one, two = senders(), senders()
    ids = queue(one, "hook", 8)
    channels = {"hook": channel(type="webhook", url=hook.url, max_per_minute=4)}

    deliver(one, channels, "host-a:1")

    delivered = [alert for request in hook.requests for alert in ids_in(request)]
    assert len(hook.requests) == 4, "four messages in the minute, whoever sent them"
    assert sorted(delivered) == sorted(ids + late), "each alert once, alone or in a summary"
    assert {r["claimed_by"] for r in rows(one, status="sent")} == {"host-a:1", "host-b:2"}

    queue(one, "hook", 2, watchlist="later")
    in_threads(lambda: deliver(one, channels, "host-a:1"), lambda: deliver(two, channels, "b"))
    assert len(hook.requests) == 4, "the window is full for both"


def test_a_digest_is_made_once_by_two_senders(senders, hook):
    one, two = senders(), senders()
    ids = queue(one, "desk", 5)
    channels = {"desk": channel(type="webhook", url=hook.url, digest="0 6 * * *")}
    closed: list[dict | None] = []
    six = datetime.now(UTC)

    def close_and_deliver(db: PgDatabase, name: str) -> None:
        closed.append(digest.make_digest(db, "desk", six))
        deliver(db, channels, name)

    in_threads(lambda: close_and_deliver(one, "host-a:1"), lambda: close_and_deliver(two, "b"))
    late = digest.make_digest(two, "desk", six - timedelta(seconds=2))

    (request,) = hook.wait_for(1)
    assert request.json["type"] == "digest"
    assert [alert["id"] for alert in request.json["alerts"]] == ids
    assert sum(row is not None for row in closed) == 1
    assert late is None, "a host that comes late to a closed period leaves it"
    assert digest.last_run(one, "desk") == six.replace(microsecond=0)


def test_a_sender_deciding_on_a_channel_holds_the_others_back(senders, hook):
    """Sender a takes the whole window under the channel's lock; b, arriving meanwhile, waits
    for a's decision, then finds the window full rather than sending what a had not reached."""
    one, two, watcher = senders(), senders(), senders()
    ids = queue(one, "hook", 4)
    channels = {"hook": channel(type="webhook", url=hook.url, max_per_minute=2)}
    other = threading.Thread(target=deliver, args=(two, channels, "host-b:2"))

    with one.atomic():
        outbox.lock_channel(one, "hook")
        for alert_id in ids[:2]:
            assert outbox.claim(one, alert_id, "host-a:1", 60.0) is not None
        other.start()
        wait_until(lambda: waiting_for_a_channel(watcher), 20, "sender b waiting for the lock")
    other.join(timeout=20)

    assert not other.is_alive()
    assert hook.requests == []
    assert [r["status"] for r in rows(one)] == ["sending", "sending", "pending", "pending"]


def waiting_for_a_channel(db: PgDatabase) -> bool:
    return (
        db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
        ).fetchone()[0]
        > 0
    )


def test_an_alert_delivered_while_the_database_is_away_is_recorded_once_it_is_back(
    senders, start_hook, postgres_server, monkeypatch
):
    """The receiver accepts the alert; as it answers, the sender's connection is cut and the
    database refuses connections for 2 s. The accepted alert is recorded as sent once the
    database is back, never as failed: it is not sent again."""
    monkeypatch.setattr("alerts.delivery.RECORD_RETRY", 0.2)
    sender = senders()
    name = sender.execute("SELECT current_database()").fetchone()[0]
    back = threading.Event()

    def cut_the_database(request: ReceivedRequest) -> None:
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
        threading.Timer(2.0, allow_again).start()

    def allow_again() -> None:
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        back.set()

    hook = start_hook(on_request=cut_the_database)
    (alert_id,) = queue(sender, "hook", 1)
    channels = {"hook": channel(type="webhook", url=hook.url)}

    deliver(sender, channels, "host-a:1")
    assert back.is_set(), "the database was away while the sent alert was recorded"
    deliver(sender, channels, "host-a:1")

    assert [r.headers["X-Newswatch-Id"] for r in hook.requests] == [alert_id]
    (row,) = rows(sender, id=alert_id)
    assert (row["status"], row["attempts"]) == ("sent", 1)
