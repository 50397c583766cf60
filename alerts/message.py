"""What one alert says, independent of the channel that carries it.

The webhook payload is a contract other programs parse, so it is built here from an explicit
list of keys rather than by dumping whatever the matcher produced. The renderings (email text,
email HTML, Slack Block Kit) share the same helpers so every channel shows the same facts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from alerts.times import format_time, human_time, parse_time

ARTICLE_KEYS = ("url", "canonical_url", "title", "source", "language", "published_at", "fetched_at")
STORY_KEYS = ("id", "articles")
MATCH_KEYS = ("concept", "alias", "text", "fuzzy", "offset")

RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"})


class TemplateError(Exception):
    """A channel's template cannot render this message (missing file, bad syntax, bad JSON)."""


@dataclass(frozen=True)
class Alert:
    """One watchlist hit on one story, as delivered to one channel."""

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

    def __post_init__(self) -> None:
        if self.matches_total < len(self.matches):
            object.__setattr__(self, "matches_total", len(self.matches))

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
        }

    @property
    def more_matches(self) -> int:
        """Hits the message does not list: renderers say "and N more"."""
        return self.matches_total - len(self.matches)

    @property
    def language(self) -> str:
        return str(self.article.get("language") or "und")

    @property
    def direction(self) -> str:
        """Arabic alerts must render right-to-left or punctuation and numbers land wrongly."""
        primary = self.language.lower().replace("_", "-").split("-")[0]
        return "rtl" if primary in RTL_LANGUAGES else "ltr"

    @property
    def direction_mark(self) -> str:
        """U+200F (RLM) for right-to-left alerts: Slack has no `dir`, and an Arabic snippet that
        opens with a Latin name or a number would otherwise be laid out left to right."""
        return "\u200f" if self.direction == "rtl" else ""

    @property
    def title(self) -> str:
        """Titles come from scraped pages: collapse whitespace so they fit a subject line."""
        title = " ".join(str(self.article.get("title") or "").split())
        return title or self.url or "(untitled)"

    @property
    def url(self) -> str:
        return str(self.article.get("url") or self.article.get("canonical_url") or "")

    @property
    def link(self) -> str:
        """The URL only if it is http(s): a scraped `javascript:` URL must never become a link."""
        return self.url if urlsplit(self.url).scheme.lower() in ("http", "https") else ""

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


# Words that notify a whole channel or workspace when Slack parses them in plain text.
_SLACK_BROADCAST = re.compile(r"([@＠])(channel|here|everyone)", re.IGNORECASE)


def slack_escape(text: str) -> str:
    """Scraped text as Slack mrkdwn that reads the same and can notify nobody.

    `&`, `<` and `>` are escaped, so a title's `<!channel>` or `<@U…>` is shown, not obeyed; a
    word joiner after the `@` of `@channel`, `@here` and `@everyone` keeps them from pinging
    where Slack parses plain-text mentions (the notification `text` has no `verbatim`)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SLACK_BROADCAST.sub("\\1\u2060\\2", escaped)


def _slack_url(url: str) -> str:
    """A `|` or `>` in the URL would end Slack's `<url|label>` link early."""
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")


def slack_link(url: str, label: str) -> str:
    """`<url|label>` with the label escaped; just the label when there is no safe URL."""
    return f"<{_slack_url(url)}|{slack_escape(label)}>" if url else slack_escape(label)


def slack_time(alert: Alert) -> str:
    """Slack shows `<!date…>` in each reader's own time zone, with our UTC text as fallback."""
    moment = alert.published
    if moment is None:
        return slack_escape(alert.when)
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{format_time(moment)}>"


def shorten(text: str, limit: int) -> str:
    """Cut at a space so an Arabic word is never split in the middle."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + " …"


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


def family(message: Message) -> str:
    """Templates come in three families; each names its message after itself (`alert.title`,
    `bundle.alerts`, `notice.text`)."""
    if isinstance(message, Bundle):
        return "bundle"
    return "notice" if isinstance(message, Notice) else "alert"


def template_name(message: Message, part: str) -> str:
    return f"{family(message)}.{part}.j2"


@lru_cache(maxsize=32)
def templates(template_dir: str | None = None) -> Environment:
    """A channel's own templates first, the bundled ones for whatever it does not override.

    Only `.html.j2` is autoescaped: titles and snippets are scraped, untrusted text. Slack
    templates produce JSON and escape with the `mrkdwn` and `tojson` filters.
    """
    bundled = PackageLoader("alerts", "templates")
    loader = ChoiceLoader([FileSystemLoader(template_dir), bundled]) if template_dir else bundled
    env = Environment(
        loader=loader,
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        mrkdwn=slack_escape, slack_link=slack_link, slack_time=slack_time, shorten=shorten
    )
    return env


def render(message: Message, part: str, template_dir: str | None = None) -> str:
    """Render one part (subject, txt, html, slack) of a message with the channel's templates."""
    name = template_name(message, part)
    try:
        text = templates(template_dir).get_template(name).render({family(message): message})
    except Exception as exc:
        raise TemplateError(f"template {name}: {type(exc).__name__}: {exc}") from exc
    return " ".join(text.split()) if part == "subject" else text


def slack_message(message: Message, template_dir: str | None = None) -> dict:
    """An incoming-webhook body: Block Kit for the channel, `text` for notifications."""
    rendered = render(message, "slack", template_dir)
    try:
        body = json.loads(rendered)
    except ValueError as exc:
        raise TemplateError(f"template {template_name(message, 'slack')}: not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise TemplateError(f"template {template_name(message, 'slack')}: not a JSON object")
    _verbatim(body)
    return body


def _verbatim(node: Any) -> None:
    """Every mrkdwn text object `verbatim`: Slack then shows scraped words as written instead of
    turning names into channel links and mentions (a channel's own templates included)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and "text" in node:
            node["verbatim"] = True
        nodes = node.values()
    elif isinstance(node, list):
        nodes = node
    else:
        return
    for child in nodes:
        _verbatim(child)
