"""Matched words as people read them: one line per concept with its word forms, the same in the
email's text and HTML parts, in Slack and in the demo, and how many articles carry the story."""

from __future__ import annotations

import asyncio
from collections import Counter
from email.message import EmailMessage

from alerts.channels import EmailChannel, SlackChannel
from alerts.message import Alert
from alerts.senders import send
from alerts.snippets import WORD_CHARS, words_by_concept
from tests.support import newswatch

# One Arabic article naming France in ten forms, Morocco in one form twice, and a fuzzy hit.
FRANCE_FORMS = [
    "باريس",
    "وباريس",
    "الفرنسي",
    "بباريس",
    "فرنسا",
    "لفرنسا",
    "الفرنسية",
    "وفرنسا",
    "بفرنسا",
    "الفرنسيين",
]


def hit(concept: str, text: str, offset: int, *, fuzzy: bool = False) -> dict:
    return {"concept": concept, "alias": concept, "text": text, "fuzzy": fuzzy, "offset": offset}


def arabic_alert(matches: list[dict], matches_total: int = 0, **story: int) -> Alert:
    return Alert(
        id="words-1",
        watchlist="morocco-france-extradition",
        article={
            "url": "https://www.hespress.com/politique/777.html",
            "canonical_url": "https://www.hespress.com/777.html",
            "title": "باريس والرباط تبحثان تسليم المطلوبين",
            "source": "hespress-ar",
            "language": "ar",
            "published_at": "2026-11-28T10:00:00Z",
            "fetched_at": "2026-11-28T10:05:00Z",
        },
        story={"id": "story-77", "articles": 3, **story},
        matches=matches,
        matches_total=matches_total,
        snippet="أكدت باريس أن المغرب طلب تسليم المطلوبين",
    )


FRANCE_HITS = [hit("france", text, 10 * number) for number, text in enumerate(FRANCE_FORMS)]
MANY_FORMS = arabic_alert(
    [
        *FRANCE_HITS,
        hit("morocco", "المغرب", 200),
        hit("morocco", "المغرب", 300),
        hit("extradition", "تسليم المطلوبين", 400, fuzzy=True),
    ],
    matches_total=40,
)


def mail(port: int) -> EmailChannel:
    return EmailChannel.model_validate(
        {
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "security": "none",
            "from": "newswatch <alerts@example.org>",
            "to": ["analyst@example.org"],
            "timeout": 5,
        }
    )


def emailed(smtp, alert: Alert) -> tuple[str, str]:
    """The text and HTML parts of the alert as the SMTP server received it."""
    asyncio.run(send(mail(smtp.port), alert))
    (message,) = smtp.wait_for(1)
    assert isinstance(message, EmailMessage)
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


def slacked(hook, alert: Alert) -> list[str]:
    """The lines of the Slack message's "Matched" section as the receiver got it."""
    asyncio.run(send(SlackChannel(type="slack", webhook_url=hook.url), alert))
    (request,) = hook.wait_for(1)
    [matched] = [
        block["text"]["text"]
        for block in request.json["blocks"]
        if block.get("text", {}).get("text", "").startswith("Matched:")
    ]
    return matched.splitlines()[1:]


def test_words_are_grouped_by_concept_in_order_of_first_appearance() -> None:
    groups = words_by_concept(MANY_FORMS.matches)

    assert [g.line() for g in groups] == [
        "france: باريس · وباريس · الفرنسي · +7",
        "morocco: المغرب",
        "extradition: تسليم المطلوبين (fuzzy)",
    ]
    assert [(g.concept, g.hits, g.more) for g in groups] == [
        ("france", 10, 7),
        ("morocco", 2, 0),
        ("extradition", 1, 0),
    ]
    assert groups[1].words[0].hits == 2


def test_a_form_found_exactly_once_is_not_called_fuzzy() -> None:
    [group] = words_by_concept(
        [
            hit("morocco", "Maroc", 0, fuzzy=True),
            hit("morocco", "Maroc", 9),
            hit("morocco", "Marc", 20, fuzzy=True),
        ]
    )

    assert group.line() == "morocco: Maroc · Marc (fuzzy)"


def test_email_text_lists_one_line_per_concept_with_the_forms_left_out(smtp) -> None:
    text, _ = emailed(smtp, MANY_FORMS)

    lines = text.splitlines()
    start = lines.index("Matched:")
    assert lines[start + 1 : start + 5] == [
        "  - france: باريس · وباريس · الفرنسي · +7",
        "  - morocco: المغرب",
        "  - extradition: تسليم المطلوبين (fuzzy)",
        "  … and 27 more hit(s)",
    ]
    assert "→" not in text
    assert "Watchlist: morocco-france-extradition · 3 articles in this story" in lines


def test_email_html_marks_each_form_once_under_its_concept(smtp) -> None:
    _, html = emailed(smtp, MANY_FORMS)

    assert (
        "<li><bdi>france</bdi>: <mark><bdi>باريس</bdi></mark> · <mark><bdi>وباريس</bdi></mark>"
        " · <mark><bdi>الفرنسي</bdi></mark> · +7</li>"
    ) in html
    assert "<li><bdi>morocco</bdi>: <mark><bdi>المغرب</bdi></mark></li>" in html
    assert html.count("<li>") == 4, "three concepts and the hits not listed"
    assert "3 articles in this story" in html


def test_slack_lists_one_line_per_concept(hook) -> None:
    lines = slacked(hook, MANY_FORMS)

    assert lines == [
        "france: *باريس* · *وباريس* · *الفرنسي* · +7",
        "morocco: *المغرب*",
        "extradition: *تسليم المطلوبين* (fuzzy)",
        "and 27 more hit(s)",
    ]


def test_a_story_carried_by_several_outlets_says_how_many(smtp, hook) -> None:
    alert = arabic_alert(FRANCE_HITS, articles=5, outlets=3)

    text, html = emailed(smtp, alert)
    asyncio.run(send(SlackChannel(type="slack", webhook_url=hook.url), alert))

    assert "Watchlist: morocco-france-extradition · 5 articles from 3 outlets" in text
    assert "5 articles from 3 outlets" in html
    (request,) = hook.wait_for(1)
    assert request.json["blocks"][1]["elements"][0]["text"].endswith("· 5 articles from 3 outlets")


def test_a_story_of_one_article_says_so(hook) -> None:
    asyncio.run(
        send(
            SlackChannel(type="slack", webhook_url=hook.url), arabic_alert(FRANCE_HITS, articles=1)
        )
    )

    (request,) = hook.wait_for(1)
    context = request.json["blocks"][1]["elements"][0]["text"]
    assert context.endswith("· 1 article in this story")


# Hostile words

TEN_THOUSAND = arabic_alert(
    [hit("france", f"فرنسا{number}" + "ب" * (number % 300), number) for number in range(10_000)]
)


def test_ten_thousand_forms_make_one_bounded_line_in_email(smtp) -> None:
    text, html = emailed(smtp, TEN_THOUSAND)

    [line] = [line for line in text.splitlines() if line.startswith("  - france: ")]
    assert line.endswith(" · +9997")
    assert len(line) < 3 * WORD_CHARS + 40
    assert html.count("<mark><bdi>") == 3
    assert len(html) < 5_000


def test_ten_thousand_forms_make_one_bounded_line_in_slack(hook) -> None:
    [line] = slacked(hook, TEN_THOUSAND)

    assert line.startswith("france: *فرنسا0*") and line.endswith(" · +9997")
    assert len(line) < 3 * WORD_CHARS + 40


def test_a_huge_form_is_cut() -> None:
    [group] = words_by_concept([hit("france", "فرنسا" * 100_000, 0)])

    assert len(group.words[0].text) == WORD_CHARS
    assert group.words[0].text.endswith("…")


HOSTILE = arabic_alert(
    [
        hit("morocco", "<script>alert(1)</script>", 0),
        hit("morocco", "R&D *bold* _it_ ~x~ `c`", 40),
        hit("morocco", "\u202eالمغرب\u2066", 80),
    ]
)


def test_words_are_escaped_in_html(smtp) -> None:
    _, html = emailed(smtp, HOSTILE)

    assert "<script>" not in html
    assert "<mark><bdi>&lt;script&gt;alert(1)&lt;/script&gt;</bdi></mark>" in html
    assert "<mark><bdi>R&amp;D *bold* _it_ ~x~ `c`</bdi></mark>" in html
    assert "<mark><bdi>المغرب</bdi></mark>" in html
    assert "\u202e" not in html and "\u2066" not in html


def test_words_are_escaped_in_slack(hook) -> None:
    [line] = slacked(hook, HOSTILE)

    assert line == (
        "morocco: *&lt;script&gt;alert(1)&lt;/script&gt;*"
        " · *R&amp;D \u2217bold\u2217 \u02cdit\u02cd \u223cx\u223c \u02cbc\u02cb*"
        " · *المغرب*"
    )


def test_the_demo_shows_each_alert_with_one_line_per_concept() -> None:
    result = newswatch("demo")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    alerts = [number for number, line in enumerate(lines) if line.startswith("  ALERT → ")]
    channels = Counter(lines[number].split()[2] for number in alerts)
    assert channels == {"desk-mail": 4, "siem": 4}
    for number in alerts:
        shown = lines[number + 1 : number + 5]
        concepts = [line.strip().split(":")[0] for line in shown[:3]]
        assert sorted(concepts) == ["extradition", "france", "morocco"], shown
        assert shown[3].strip() == "1 article from 1 outlet", shown
    assert "          france: باريس · وباريس · الفرنسي · +2" in lines
