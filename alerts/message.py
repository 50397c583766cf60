"""What one alert says, independent of the channel that carries it.

The webhook payload is a contract other programs parse, so it is built here from an explicit
list of keys rather than by dumping whatever the matcher produced. The renderings (email text,
email HTML, Slack Block Kit) share the same helpers so every channel shows the same facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined

ARTICLE_KEYS = ("url", "canonical_url", "title", "source", "language", "published_at", "fetched_at")
STORY_KEYS = ("id", "articles")
MATCH_KEYS = ("concept", "alias", "text", "fuzzy", "offset")

RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"})

SLACK_SNIPPET_LIMIT = 2500

_TEMPLATES = Environment(
    loader=PackageLoader("alerts", "templates"),
    autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Alert:
    """One watchlist hit on one story, as delivered to one channel."""

    id: str
    watchlist: str
    article: dict
    story: dict
    matches: list[dict]
    snippet: str

    def payload(self) -> dict:
        """The webhook body: only the documented keys, so extra matcher fields never leak."""
        return {
            "id": self.id,
            "watchlist": self.watchlist,
            "article": {key: self.article.get(key) for key in ARTICLE_KEYS},
            "story": {key: self.story.get(key) for key in STORY_KEYS},
            "matches": [{key: match.get(key) for key in MATCH_KEYS} for match in self.matches],
            "snippet": self.snippet,
        }

    @property
    def language(self) -> str:
        return str(self.article.get("language") or "und")

    @property
    def direction(self) -> str:
        """Arabic alerts must render right-to-left or punctuation and numbers land wrongly."""
        primary = self.language.lower().replace("_", "-").split("-")[0]
        return "rtl" if primary in RTL_LANGUAGES else "ltr"

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
        """Publication time for people; falls back to the raw value when it does not parse."""
        moment = self.published
        if moment is not None:
            return format_time(moment)
        return str(self.article.get("published_at") or self.article.get("fetched_at") or "")

    @property
    def story_size(self) -> int:
        return int(self.story.get("articles") or 1)

    @property
    def subject(self) -> str:
        return f"[{self.watchlist}] {self.title}"

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


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 from the store; naive values are taken as UTC, which is how the store writes."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_text(alert: Alert) -> str:
    return _TEMPLATES.get_template("alert.txt.j2").render(alert=alert)


def render_html(alert: Alert) -> str:
    return _TEMPLATES.get_template("alert.html.j2").render(alert=alert)


def slack_escape(text: str) -> str:
    """Slack's mrkdwn only needs these three escaped; anything else stays readable as is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    """A `|` or `>` in the URL would end Slack's `<url|label>` link early."""
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")


def _slack_time(alert: Alert) -> str:
    """Slack shows `<!date…>` in each reader's own time zone, with our UTC text as fallback."""
    moment = alert.published
    if moment is None:
        return slack_escape(alert.when)
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{format_time(moment)}>"


def _shorten(text: str, limit: int) -> str:
    """Cut at a space so an Arabic word is never split in the middle."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + " …"


def slack_message(alert: Alert) -> dict:
    """An incoming-webhook body: Block Kit for the channel, `text` for notifications."""
    title = slack_escape(alert.title)
    heading = f"*<{_slack_url(alert.link)}|{title}>*" if alert.link else f"*{title}*"
    context = [part for part in (slack_escape(alert.source), _slack_time(alert)) if part]
    context.append(f"watchlist `{slack_escape(alert.watchlist)}`")
    if alert.story_size > 1:
        context.append(f"{alert.story_size} articles in this story")
    words = ", ".join(
        f"*{slack_escape(text)}* ({slack_escape(concept)})"
        for concept, text in alert.matched_words()
    )
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": heading}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
    ]
    if words:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"Matched: {words}"}})
    snippet = " ".join(alert.snippet.split())
    if snippet:
        quoted = "> " + slack_escape(_shorten(snippet, SLACK_SNIPPET_LIMIT))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    fallback = f"[{alert.watchlist}] {alert.title}" + (f" {alert.link}" if alert.link else "")
    return {"text": slack_escape(fallback), "blocks": blocks}
