"""`newswatch demo`: the real pipeline against the bundled offline news site, alerts shown locally.

Nothing is simulated but the outside world: the site, the webhook receiver and the SMTP server
are real servers on 127.0.0.1, and the daemon is the same `Daemon` that `newswatch run` starts.
It polls twice (the second poll finds nothing new and sends nothing), then prints what was
delivered, whether the receivers got it signed and whole, and every article stored with its story.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
from pathlib import Path

from alerts.message import Alert, Message
from alerts.render import story_reach
from alerts.senders import sign
from alerts.snippets import words_by_concept
from crawler import store
from crawler.config import Config, load_config
from crawler.daemon import Daemon, PollSummary, run_on_reactor
from crawler.demo.receivers import SmtpSink, WebhookReceiver
from crawler.demo.site import DemoSite
from crawler.workers import Extractor

DEMO_DIR = Path(__file__).resolve().parents[2] / "seeds" / "demo"


def _show_alert(alert: Message, channel: str) -> None:
    """Watchlist hits with their words, one line per concept as email and Slack show them;
    digests and notices are not the demo's story."""
    if not isinstance(alert, Alert):
        return
    print(f"  ALERT → {channel:<10} [{alert.watchlist}] ({alert.language}) {alert.title}")
    for line in matched_words(alert.matches):
        print(f"          {line}")
    print(f"          {story_reach(alert)}")


def matched_words(matches: list[dict]) -> list[str]:
    """The words that fired, one line per concept: "morocco: بالمغرب · الرباط · +2"."""
    return [group.line() for group in words_by_concept(matches)]


def _print_poll(label: str, summary: PollSummary) -> None:
    print(
        f"{label}: {summary.sources} source(s) polled ({summary.not_modified} not modified,"
        f" {summary.failed_sources} failed), {summary.stored} new article(s),"
        f" {summary.alerts_enqueued} alert(s) queued, {len(summary.sent)} delivered"
    )


def _print_articles(config: Config) -> None:
    """Each stored article, marked when it matched, and copies shown under the story's first
    title: the reader sees why a matching copy brought no second alert."""
    db = store.open_db(config.database)
    try:
        rows = store.article_overview(db)
        print("\nArticles stored (✔ = matched a watchlist, ↳ = a copy of an earlier story):")
        first_titles: dict[str, str] = {}
        for row in rows:
            mark = "✔" if row["hits"] else "·"
            print(f"  {mark} [{row['language'] or '??'}] {row['title']}  ({row['source']})")
            earlier = first_titles.setdefault(row["story_id"], row["title"])
            if earlier != row["title"]:
                print(f"      ↳ same story as «{earlier}»: no second alert")
    finally:
        db.close()


def _verify(webhook: WebhookReceiver, smtp: SmtpSink, secret: str) -> tuple[int, int]:
    """Webhook requests whose signature checks out, and mails received."""
    valid = sum(
        hmac.compare_digest(
            request.headers.get("X-Newswatch-Signature", ""), sign(secret, request.body)
        )
        for request in webhook.requests
    )
    return valid, len(smtp.messages)


def run_demo(keep: Path | None = None) -> bool:
    """Whether the demo worked: every source polled and alerts delivered."""
    secret = secrets.token_hex(16)
    with (
        Extractor() as extractor,  # forked first: before the servers start their threads
        DemoSite(DEMO_DIR / "site") as site,
        WebhookReceiver() as webhook,
        SmtpSink() as smtp,
        tempfile.TemporaryDirectory(prefix="newswatch-demo-") as scratch,
    ):
        os.environ.update(
            DEMO_SITE_URL=site.base_url,
            DEMO_WEBHOOK_URL=webhook.url,
            DEMO_SMTP_PORT=str(smtp.port),
            DEMO_WEBHOOK_SECRET=secret,
        )
        folder = keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        config = load_config(DEMO_DIR / "config.yaml")
        config = config.model_copy(update={"database": folder / "demo.db"})
        print(f"newswatch demo: offline news site at {site.base_url}")
        print(f"  webhook receiver at {webhook.url}, SMTP server at {smtp.host}:{smtp.port}")
        print(f"  watchlist: {config.watchlists[0].name} = {config.watchlists[0].rule}\n")
        first = Daemon(config, extractor, on_sent=_show_alert)
        second = Daemon(config, extractor, on_sent=_show_alert)

        async def both_polls() -> int:
            await first.run(once=True)
            await second.run(once=True)
            return 0

        run_on_reactor(both_polls)
        print()
        _print_poll("first poll", first.summary)
        _print_poll("second poll (nothing changed)", second.summary)
        valid, mails = _verify(webhook, smtp, secret)
        print(
            f"webhook receiver: {len(webhook.requests)} request(s), {valid} with a valid signature;"
            f" SMTP server: {mails} message(s)"
        )
        _print_articles(config)
        delivered = len(first.summary.sent) + len(second.summary.sent)
        print(
            f"\nSummary: {first.summary.sources} sources polled, {first.summary.stored} articles"
            f" stored, {delivered} alerts delivered."
        )
        if keep:
            print(f"Database kept at {config.database}")
        return bool(delivered) and not first.summary.failed_sources
