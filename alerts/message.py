"""What one message says, independent of the channel that carries it: an alert (one watchlist
hit on one story or event), a bundle (digest or overflow summary) or a notice about newswatch
itself.

The webhook payload is a contract other programs parse, so it is built here from an explicit
list of keys rather than by dumping whatever the matcher produced. Outbox rows hold these
payloads, and `message_from` rebuilds the message from one. Turning a message into text for
people is `alerts.render`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from alerts.times import human_time, parse_time

ARTICLE_KEYS = ("url", "canonical_url", "title", "source", "language", "published_at", "fetched_at")
STORY_KEYS = ("id", "articles", "outlets")
MATCH_KEYS = ("concept", "alias", "text", "fuzzy", "offset")
REPORT_KEYS = ("source", "title", "url")
# An event reported by a thousand outlets must not make a thousand-line alert: the payload lists
# the first few of its other reports and counts them all, as `matches` and `matches_total` do.
REPORTS_LISTED = 10

RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"})


def direction(language: str) -> str:
    """`rtl` for a language written right to left (Arabic, Persian, Hebrew…), else `ltr`: messages
    and pages lay a text out by it."""
    primary = language.lower().replace("_", "-").split("-")[0]
    return "rtl" if primary in RTL_LANGUAGES else "ltr"


def http_link(url: str | None) -> str | None:
    """The URL only if it is http(s): a scraped `javascript:` or `data:` URL must never become a
    link, in a message or on a page."""
    if url and urlsplit(url).scheme.lower() in ("http", "https"):
        return url
    return None


def headline(title: object, url: str) -> str:
    """Titles come from scraped pages: collapse whitespace so they fit a subject or one line."""
    return " ".join(str(title or "").split()) or url or "(untitled)"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def event_summary(event: dict | None) -> dict | None:
    """An event as alerts carry it: its id, the first `REPORTS_LISTED` of its other reports with
    only the documented keys, and how many there were. Reading a stored payload back gives the
    same dict, so a row's alert renders the same after a restart; a report that is not an
    object is left out rather than failing the alert, and so is an event that is not one."""
    if not isinstance(event, dict):
        return None
    listed = event.get("reports")
    reports = (
        [report for report in listed if isinstance(report, dict)]
        if isinstance(listed, list)
        else []
    )
    total = event.get("reports_total")
    counted = total if isinstance(total, int) and not isinstance(total, bool) else 0
    return {
        "id": _text(event.get("id")),
        "reports": [
            {key: _text(report.get(key)) for key in REPORT_KEYS}
            for report in reports[:REPORTS_LISTED]
        ],
        "reports_total": max(counted, len(reports)),
    }


@dataclass(frozen=True)
class Report:
    """Another story of the alert's event, as "also reported by" lists it."""

    source: str | None
    title: str | None
    url: str | None

    @property
    def label(self) -> str:
        return headline(self.title, self.url or "")

    @property
    def link(self) -> str:
        return http_link(self.url) or ""


@dataclass(frozen=True)
class Alert:
    """One watchlist hit on one story, or on one event (the stories reporting one happening),
    as delivered to one channel."""

    kind: ClassVar[str] = "alert"
    id: str
    watchlist: str
    article: dict
    story: dict
    matches: list[dict]
    snippet: str
    # every hit that made the rule true; `matches` carries only the first few (a page repeating
    # a word 10,000 times made a 1 MB alert). Rows queued before this field count what they hold.
    matches_total: int = 0
    # the event the alert is keyed on and its other reports when queued; None for a watchlist
    # with `group: story` and in rows queued before events existed
    event: dict | None = None

    def __post_init__(self) -> None:
        if self.matches_total < len(self.matches):
            object.__setattr__(self, "matches_total", len(self.matches))
        object.__setattr__(self, "event", event_summary(self.event))

    def payload(self) -> dict:
        """The webhook body: only the documented keys, so extra matcher fields never leak."""
        return {
            "id": self.id,
            "watchlist": self.watchlist,
            "article": {key: self.article.get(key) for key in ARTICLE_KEYS},
            "story": {key: self.story.get(key) for key in STORY_KEYS},
            "matches": [{key: match.get(key) for key in MATCH_KEYS} for match in self.matches],
            "matches_total": self.matches_total,
            "snippet": self.snippet,
            "event": event_summary(self.event),
        }

    @property
    def more_matches(self) -> int:
        """Hits the message does not list: renderers say "and N more"."""
        return self.matches_total - len(self.matches)

    @property
    def reports(self) -> tuple[Report, ...]:
        """The event's other reports the message lists ("also reported by")."""
        return tuple(Report(**report) for report in self.event["reports"]) if self.event else ()

    @property
    def more_reports(self) -> int:
        """Reports of the event the message does not list: renderers say "and N more"."""
        return self.event["reports_total"] - len(self.reports) if self.event else 0

    @property
    def language(self) -> str:
        return str(self.article.get("language") or "und")

    @property
    def direction(self) -> str:
        """Arabic alerts must render right-to-left or punctuation and numbers land wrongly."""
        return direction(self.language)

    @property
    def direction_mark(self) -> str:
        """U+200F (RLM) for right-to-left alerts: Slack has no `dir`, and an Arabic snippet that
        opens with a Latin name or a number would otherwise be laid out left to right."""
        return "\u200f" if self.direction == "rtl" else ""

    @property
    def title(self) -> str:
        return headline(self.article.get("title"), self.url)

    @property
    def url(self) -> str:
        return str(self.article.get("url") or self.article.get("canonical_url") or "")

    @property
    def link(self) -> str:
        return http_link(self.url) or ""

    @property
    def source(self) -> str:
        return str(self.article.get("source") or "")

    @property
    def published(self) -> datetime | None:
        return parse_time(self.article.get("published_at") or self.article.get("fetched_at"))

    @property
    def when(self) -> str:
        return human_time(self.article.get("published_at") or self.article.get("fetched_at"))

    @property
    def story_size(self) -> int:
        return int(self.story.get("articles") or 1)

    @property
    def subject(self) -> str:
        return f"[{self.watchlist}] {self.title}"

    @classmethod
    def from_payload(cls, payload: dict) -> Alert:
        return cls(**payload)

    def matched_words(self) -> list[tuple[str, str]]:
        """(concept, original text) pairs, each once, in the order they were found."""
        seen: dict[tuple[str, str], None] = {}
        for match in self.matches:
            seen.setdefault((str(match.get("concept") or ""), str(match.get("text") or "")))
        return list(seen)

    def snippet_parts(self) -> list[tuple[str, bool]]:
        """The snippet cut into (text, is_hit) runs so a renderer can mark hits and escape the rest.

        Hit offsets point into the article, not the snippet, so hits are found again by their
        text; whitespace inside a hit may differ after the snippet was trimmed.
        """
        return split_hits(self.snippet, [text for _, text in self.matched_words()])


def split_hits(text: str, hits: list[str]) -> list[tuple[str, bool]]:
    """Longest hits win, so "المملكة المغربية" is marked whole rather than just "المغربية"."""
    words = sorted({hit.strip() for hit in hits if hit.strip()}, key=len, reverse=True)
    if not words or not text:
        return [(text, False)] if text else []
    pattern = re.compile(
        "|".join(r"\s+".join(map(re.escape, word.split())) for word in words), re.IGNORECASE
    )
    parts: list[tuple[str, bool]] = []
    position = 0
    for found in pattern.finditer(text):
        if found.start() > position:
            parts.append((text[position : found.start()], False))
        parts.append((found.group(), True))
        position = found.end()
    if position < len(text):
        parts.append((text[position:], False))
    return parts


@dataclass(frozen=True)
class Bundle:
    """Several alerts of one channel sent as one message: a digest for its period, or the
    overflow of a rate-limited channel. Each alert keeps its own id inside the bundle."""

    kind: str
    id: str
    channel: str
    period_start: str | None
    period_end: str
    alerts: tuple[Alert, ...]

    def payload(self) -> dict:
        return {
            "id": self.id,
            "type": self.kind,
            "channel": self.channel,
            "period": {"from": self.period_start, "to": self.period_end},
            "alerts": [alert.payload() for alert in self.alerts],
        }

    @classmethod
    def from_payload(cls, payload: dict) -> Bundle:
        return cls(
            kind=payload["type"],
            id=payload["id"],
            channel=payload["channel"],
            period_start=payload["period"]["from"],
            period_end=payload["period"]["to"],
            alerts=tuple(Alert.from_payload(alert) for alert in payload["alerts"]),
        )

    @property
    def language(self) -> str:
        languages = {alert.language for alert in self.alerts}
        return languages.pop() if len(languages) == 1 else "und"

    @property
    def direction(self) -> str:
        return "ltr"

    @property
    def title(self) -> str:
        count = f"{len(self.alerts)} alert" + ("s" if len(self.alerts) != 1 else "")
        if self.kind == "digest":
            return f"newswatch digest: {count} until {self.end}"
        return f"newswatch: {count} over the rate limit of {self.channel}, in one message"

    @property
    def subject(self) -> str:
        return self.title

    @property
    def end(self) -> str:
        return human_time(self.period_end)

    @property
    def start(self) -> str:
        return human_time(self.period_start)

    def groups(self) -> list[tuple[str, list[tuple[str, list[Alert]]]]]:
        """Alerts by watchlist, then by story, in the order they were queued."""
        grouped: dict[str, dict[str, list[Alert]]] = {}
        for alert in self.alerts:
            stories = grouped.setdefault(alert.watchlist, {})
            stories.setdefault(str(alert.story.get("id")), []).append(alert)
        return [(watchlist, list(stories.items())) for watchlist, stories in grouped.items()]


@dataclass(frozen=True)
class Notice:
    """A message about newswatch itself rather than an article: health problems and recoveries,
    daemon start/stop, alerts that failed for good, and `test-channel` messages."""

    kind: str
    id: str
    event: str
    title: str
    text: str
    at: str
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict:
        return {
            "id": self.id,
            "type": self.kind,
            "event": self.event,
            "title": self.title,
            "text": self.text,
            "at": self.at,
            "details": self.details,
        }

    @classmethod
    def from_payload(cls, payload: dict) -> Notice:
        return cls(
            kind=payload["type"],
            id=payload["id"],
            event=payload["event"],
            title=payload["title"],
            text=payload["text"],
            at=payload["at"],
            details=payload.get("details") or {},
        )

    language = "en"
    direction = "ltr"

    @property
    def subject(self) -> str:
        return f"[newswatch {self.kind}] {self.title}"


Message = Alert | Bundle | Notice
_KINDS: dict[str, Callable[[dict], Message]] = {
    "alert": Alert.from_payload,
    "digest": Bundle.from_payload,
    "overflow": Bundle.from_payload,
    "health": Notice.from_payload,
}


def message_from(kind: str, payload: dict) -> Message:
    """Rebuild the message an outbox row holds; its `kind` says which shape the payload has."""
    return _KINDS[kind](payload)
