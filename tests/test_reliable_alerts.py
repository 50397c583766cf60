"""Reliability as a user meets it, through the real `newswatch` command: a daemon killed in the
middle of a send, a digest that fell due while newswatch was stopped, health notices, failed
alerts listed and sent again, and `test-channel`."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter

from tests.support import (
    MATCHING,
    alert_rows,
    change,
    demo_config,
    free_port,
    newswatch,
    publish,
    run_once,
    start_daemon,
)


def test_sigkill_during_delivery_repeats_only_the_in_flight_alert(tmp_path, site, start_hook):
    hook, ops = start_hook(delay=2.0), start_hook()
    config = demo_config(
        tmp_path,
        site.base_url,
        f"  hook: {{type: webhook, url: '{hook.url}', timeout: 10}}\n"
        f"  ops: {{type: webhook, url: '{ops.url}'}}\n"
        "health: {notify: [ops]}",
        notify="hook",
    )
    daemon = start_daemon(config, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        hook.wait_for(3, timeout=90)
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
    in_flight = hook.requests[2].headers["X-Newswatch-Id"]
    left_sending = [r["id"] for r in alert_rows(config) if r["status"] == "sending"]
    hook.delay = 0

    run_once(config)

    received = Counter(r.headers["X-Newswatch-Id"] for r in hook.requests)
    started = [r.json["event"] for r in ops.requests]
    assert left_sending == [in_flight]
    assert len(received) == len(MATCHING), "every alert delivered"
    assert {i: n for i, n in received.items() if n > 1} == {in_flight: 2}
    assert {r["status"] for r in alert_rows(config)} == {"sent"}
    assert started == ["daemon_started"]


def test_digest_due_while_stopped_is_sent_at_next_start_and_health_notices(
    tmp_path, site, start_hook
):
    broken = f"http://127.0.0.1:{free_port()}/feed.xml"
    desk, ops = start_hook(), start_hook()
    config = demo_config(
        tmp_path,
        site.base_url,
        f"  desk: {{type: webhook, url: '{desk.url}', digest: '0 6 * * *'}}\n"
        f"  ops: {{type: webhook, url: '{ops.url}'}}\n"
        "health: {notify: [ops], failing_polls: 1}",
        notify="desk",
        sources={"broken": {"url": broken, "kind": "feed"}},
    )
    run_once(config)
    assert desk.requests == [], "held for the digest"
    held = {r["id"] for r in alert_rows(config) if r["status"] == "pending"}
    assert len(held) == len(MATCHING)
    change(config, "UPDATE digests SET last_run_at = '2020-01-01T00:00:00Z'")

    run_once(config)

    (digest,) = desk.wait_for(1)
    assert digest.json["type"] == "digest"
    assert {a["id"] for a in digest.json["alerts"]} == held
    publish(
        site,
        "rabat-returns-fugitive",
        "Morocco to extradite fraud suspect to France",
        ["A Moroccan court approved the extradition to France of a man wanted in Paris."],
    )
    run_once(config)
    events = [(r.json["event"], r.json["details"].get("source")) for r in ops.requests]
    assert len(desk.requests) == 1, "the next digest is tomorrow at 06:00"
    assert [r["status"] for r in alert_rows(config) if r["kind"] == "alert"].count("pending") == 1
    assert events == [("source_failing", "broken")], "announced once, not at every poll"


def test_failed_alert_is_listed_and_sent_again(tmp_path, site, hook):
    hook.respond_with(404)
    config = demo_config(
        tmp_path, site.base_url, f"  hook: {{type: webhook, url: '{hook.url}'}}", notify="hook"
    )
    run_once(config)
    failed_id = hook.requests[0].headers["X-Newswatch-Id"]

    listed = newswatch("alerts", "--config", str(config), "--status", "failed")
    retried = newswatch("alerts", "--config", str(config), "retry", failed_id)
    run_once(config)
    everything = newswatch("alerts", "--config", str(config))

    ids = [r.headers["X-Newswatch-Id"] for r in hook.requests]
    assert listed.returncode == 0, listed.stderr
    assert failed_id in listed.stdout
    assert "last error: webhook: HTTP 404" in listed.stdout
    assert "1 message(s) queued again" in retried.stdout
    assert ids.count(failed_id) == 2 and len(set(ids)) == len(MATCHING)
    assert f"{len(MATCHING)} sent" in everything.stdout


def test_test_channel_reports_the_receivers_answer(tmp_path, site, hook):
    config = demo_config(
        tmp_path, site.base_url, f"  hook: {{type: webhook, url: '{hook.url}'}}", notify="hook"
    )
    ok = newswatch("test-channel", "--config", str(config), "hook")
    hook.respond_with((503, {"Retry-After": "30"}))
    down = newswatch("test-channel", "--config", str(config), "hook")
    unknown = newswatch("test-channel", "--config", str(config), "nope")
    first = hook.requests[0].json

    assert ok.returncode == 0 and "hook: delivered" in ok.stdout and "HTTP 200" in ok.stdout
    assert (first["type"], first["event"]) == ("test", "test")
    assert down.returncode == 1 and "not delivered (temporary)" in down.stderr
    assert "HTTP 503" in down.stderr
    assert unknown.returncode == 2 and "unknown channel 'nope'" in unknown.stderr
