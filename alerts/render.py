"""Messages as people read them: subject, plain text, HTML and Slack Block Kit, from Jinja
templates (the bundled ones, or a channel's own). Every rendering shares the same filters, so
each channel shows the same facts, and scraped text is escaped for each medium.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from alerts.message import Alert, Bundle, Message, Notice, Report
from alerts.snippets import words_by_concept
from alerts.times import format_time


class TemplateError(Exception):
    """A channel's template cannot render this message (missing file, bad syntax, bad JSON)."""


# Words that notify a whole channel or workspace when Slack parses them in plain text.
_SLACK_BROADCAST = re.compile(r"([@＠])(channel|here|everyone)", re.IGNORECASE)


def slack_escape(text: str) -> str:
    """Scraped text as Slack mrkdwn that reads the same and can notify nobody.

    `&`, `<` and `>` are escaped, so a title's `<!channel>` or `<@U…>` is shown, not obeyed; a
    word joiner after the `@` of `@channel`, `@here` and `@everyone` keeps them from pinging
    where Slack parses plain-text mentions (the notification `text` has no `verbatim`)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SLACK_BROADCAST.sub("\\1\u2060\\2", escaped)


# Slack mrkdwn has no escape for its formatting markers: in scraped words they become look-alikes,
# so `*` or `_` inside a matched word cannot end the bold around it or start italics.
_SLACK_MARKERS = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"})


def slack_literal(text: str) -> str:
    """Scraped text shown inside Slack formatting (bold hits and matched words), read as written."""
    return slack_escape(str(text).translate(_SLACK_MARKERS))


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


def story_reach(alert: Alert) -> str:
    """How far the story had spread when the alert was queued: its articles (one per URL) and,
    when the payload says (`story.outlets`, absent from messages queued by older versions), the
    outlets that carry them."""
    size = alert.story_size
    reach = f"{size:,} article{'' if size == 1 else 's'}"
    outlets = alert.story.get("outlets")
    if isinstance(outlets, int) and not isinstance(outlets, bool) and outlets > 0:
        return f"{reach} from {outlets:,} outlet{'' if outlets == 1 else 's'}"
    return f"{reach} in this story"


def shorten(text: str, limit: int) -> str:
    """Cut at a space so an Arabic word is never split in the middle."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + " …"


# A report's title in "also reported by": enough to recognise it, and ten of them stay one line.
REPORT_TITLE_CHARS = 120
# Slack refuses a whole message when one section's text passes 3,000 characters.
SLACK_SECTION_CHARS = 2900


def report_title(report: Report) -> str:
    return shorten(report.label, REPORT_TITLE_CHARS)


def slack_reports(alert: Alert) -> str:
    """The "also reported by" line as one Slack section. Scraped URLs have no length limit and
    escaping lengthens titles, so a report whose link would push the section past Slack's limit
    is listed by its title alone, and one that does not fit even so is counted in "and N more"."""
    pieces: list[str] = []
    size = 0
    for report in alert.reports:
        source = slack_literal(report.source or "unknown")
        title = report_title(report).translate(_SLACK_MARKERS)
        fitting = [
            piece
            for piece in (
                f"{source} ({slack_link(report.link, title)})",
                f"{source} ({slack_escape(title)})",
            )
            if size + len(piece) <= SLACK_SECTION_CHARS
        ]
        if not fitting:
            break
        pieces.append(fitting[0])
        size += len(fitting[0]) + 2
    more = alert.event["reports_total"] - len(pieces) if alert.event else 0
    return "Also reported by: " + ", ".join(pieces) + (f" and {more:,} more" if more else "")


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
        mrkdwn=slack_escape,
        slack_literal=slack_literal,
        slack_link=slack_link,
        slack_reports=slack_reports,
        report_title=report_title,
        slack_time=slack_time,
        shorten=shorten,
        story_reach=story_reach,
        words_by_concept=words_by_concept,
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
