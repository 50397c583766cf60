"""Outbox delivery figures, on loopback, through the real outbox and webhook sender.

Prints:
- drain rate: 1,000 pending alerts sent to a loopback webhook in one delivery pass (alerts/s,
  median of several runs);
- recovery after an outage: 1,000 alerts queued while the receiver is down for 60 s (connection
  refused), delivery passes every 30 s as in the daemon with the default retry policy; the time
  from the receiver coming back until the last alert is accepted, and the attempts it took.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import tempfile
import time
from pathlib import Path

import sqlite_utils

from alerts import outbox
from alerts.channels import WebhookChannel
from alerts.delivery import RetryPolicy, deliver_due
from alerts.message import Alert
from alerts.times import timestamp
from crawler import store
from crawler.daemon import DELIVERY_INTERVAL
from crawler.demo.receivers import WebhookReceiver


def fill(db: sqlite_utils.Database, count: int) -> None:
    with db.atomic():
        for n in range(count):
            url = f"https://news.example.org/{n}"
            article_id = store.insert_article(
                db,
                {
                    "url": url,
                    "canonical_url": url,
                    "source": "bench",
                    "title": f"المغرب يسلم فرنسا مطلوبا {n}",
                    "text": "أعلنت السلطات بالمغرب أن فرنسا وافقت على ترحيل المتهم",
                    "language": "ar",
                    "fetched_at": timestamp(),
                    "content_hash": f"h{n}",
                    "story_id": f"st-{n}",
                },
            )
            alert = Alert(
                id=outbox.alert_id("mfe", f"st-{n}", "hook"),
                watchlist="mfe",
                article={"url": url, "title": f"المغرب يسلم فرنسا مطلوبا {n}", "language": "ar"},
                story={"id": f"st-{n}", "articles": 1},
                matches=[{"concept": "morocco", "alias": "مغرب", "text": "بالمغرب", "offset": 9}],
                snippet="أعلنت السلطات بالمغرب أن فرنسا وافقت على ترحيل المتهم",
            )
            outbox.enqueue(db, alert, "hook", article_id)


def drain_rate(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, WebhookReceiver() as hook:
        db = store.open_db(Path(tmp) / "bench.db")
        fill(db, count)
        channels = {"hook": WebhookChannel(type="webhook", url=hook.url)}
        started = time.perf_counter()
        report = asyncio.run(deliver_due(db, channels))
        elapsed = time.perf_counter() - started
        assert len(report.sent) == count == len(hook.requests)
        db.close()
    return count / elapsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def outage(count: int, down: float) -> tuple[float, int]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = store.open_db(Path(tmp) / "bench.db")
        fill(db, count)
        channels = {"hook": WebhookChannel(type="webhook", url=f"http://127.0.0.1:{port}/hook")}
        policy = RetryPolicy()
        started = time.monotonic()
        hook: WebhookReceiver | None = None
        back_at = 0.0
        try:
            while outbox.pending_count(db):
                if hook is None and time.monotonic() - started >= down:
                    hook = WebhookReceiver(port=port).start()
                    back_at = time.monotonic()
                await deliver_due(db, channels, policy)
                if hook is None:
                    await asyncio.sleep(min(DELIVERY_INTERVAL, down - (time.monotonic() - started)))
                elif outbox.pending_count(db):
                    await asyncio.sleep(DELIVERY_INTERVAL)
            attempts = db.execute("SELECT sum(attempts) FROM alerts").fetchone()[0]
            return time.monotonic() - back_at, attempts
        finally:
            if hook is not None:
                hook.stop()
            db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the receiver is down")
    args = parser.parse_args()
    logging.getLogger("newswatch.delivery").setLevel(logging.CRITICAL)
    rates = [drain_rate(args.alerts) for _ in range(args.runs)]
    median = statistics.median(rates)
    print(
        f"drain: {args.alerts} pending alerts → loopback webhook: median {median:.0f} alerts/s"
        f" (runs: {', '.join(f'{r:.0f}' for r in rates)})"
    )
    recovery, attempts = asyncio.run(outage(args.alerts, args.outage))
    print(
        f"outage: receiver down {args.outage:g}s with {args.alerts} alerts queued; backlog drained"
        f" {recovery:.1f}s after it came back ({attempts} attempts in all, delivery every"
        f" {DELIVERY_INTERVAL:g}s, retry_delay 30s doubling)"
    )


if __name__ == "__main__":
    main()
