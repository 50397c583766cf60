"""The analyst's pages: a watchlist's stories, a story's copies, the other reports of its event,
its versions and messages, and an article's text with its matched words marked, each set right to
left when its language is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts import outbox
from alerts.document import PARAGRAPH_SEPARATOR
from alerts.message import direction, http_link
from alerts.snippets import words_by_concept
from crawler import store
from crawler.config import Config
from crawler.web.app import read, render
from crawler.web.highlight import (
    highlight_blocks,
    highlight_snippet,
    hit_spans,
    hits_of,
)
from crawler.web.overview import PAGE_SIZE, page_number

# matched whole (`fullmatch`): `$` would let a trailing newline through
_ARTICLE_ID = re.compile(r"[0-9]{1,18}")
_STORY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REPORTS_SHOWN = 100
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class Script:
    """What the page's `lang` and `dir` say about a text."""

    lang: str
    dir: str


def script_of(language: str | None) -> Script:
    """From the stored language (detected, or the page's own claim): a value that is not a
    language tag is not echoed, and Arabic, Persian, Hebrew… read right to left."""
    if not language or not _LANGUAGE.fullmatch(language):
        return Script("und", "auto")
    return Script(language, direction(language))


def shown_story(row: dict[str, Any]) -> dict[str, Any]:
    hits = hits_of(row["hits"])
    return {
        **row,
        "snippet_marked": highlight_snippet(row["snippet"] or "", hits),
        "concepts": words_by_concept(hits),
        "script": script_of(row["language"]),
        "link": http_link(row["url"]),
    }


async def watchlist_page(request: Request) -> Response:
    config: Config = request.app.state.config
    name = request.path_params["name"]
    if name not in {watchlist.name for watchlist in config.watchlists}:
        raise HTTPException(404, "no watchlist of that name in the config")
    page = page_number(request)
    rows = await read(request, store.watchlist_stories, name, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    if page > 1 and not rows:
        raise HTTPException(404, "no such page")
    return render(
        request,
        "watchlist.html",
        name=name,
        stories=[shown_story(row) for row in rows[:PAGE_SIZE]],
        page=page,
        more=len(rows) > PAGE_SIZE,
    )


@dataclass(frozen=True)
class Story:
    copies: list[dict[str, Any]]
    reports: list[store.EventReport]
    # the event's other reports not listed
    more_reports: int
    versions: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def story(db: sqlite_utils.Database, story_id: str) -> Story:
    """A story's copies, the other reports of its event (the first `REPORTS_SHOWN`), its
    versions, and the messages keyed on the story or on its event."""
    event_id = store.event_of(db, story_id)
    reports = other_reports(db, story_id, event_id)
    more = store.event_story_count(db, event_id) - 1 - len(reports)
    return Story(
        store.story_articles(db, story_id),
        reports,
        max(0, more),
        store.story_versions(db, story_id),
        outbox.story_alerts(db, story_id, event_id),
    )


def other_reports(
    db: sqlite_utils.Database, story_id: str, event_id: str
) -> list[store.EventReport]:
    """The other stories of the story's event, the first `REPORTS_SHOWN`: a watchlist grouping
    by event alerts on the first report only, so this is where the analyst sees who else wrote
    it (an event a site flooded with thousands of stories stays one page)."""
    reports = store.event_reports(db, event_id, REPORTS_SHOWN + 1)
    return [report for report in reports if report.story_id != story_id][:REPORTS_SHOWN]


async def story_page(request: Request) -> Response:
    story_id = request.path_params["story_id"]
    if not _STORY_ID.fullmatch(story_id):
        raise HTTPException(404, "no story with that id")
    found = await read(request, story, story_id)
    if not found.copies:
        raise HTTPException(404, "no story with that id")
    copies = [
        {**row, "link": http_link(row["url"]), "script": script_of(row["language"])}
        for row in found.copies
    ]
    return render(
        request,
        "story.html",
        story_id=story_id,
        copies=copies,
        reports=found.reports,
        more_reports=found.more_reports,
        versions=found.versions,
        alerts=found.alerts,
    )


@dataclass(frozen=True)
class Article:
    row: dict[str, Any] | None
    matches: list[dict[str, Any]]


def article(db: sqlite_utils.Database, article_id: int) -> Article:
    return Article(store.article(db, article_id), store.article_matches(db, article_id))


async def article_page(request: Request) -> Response:
    value = request.path_params["article_id"]
    if not _ARTICLE_ID.fullmatch(value):
        raise HTTPException(404, "no article with that id")
    found = await read(request, article, int(value))
    if found.row is None:
        raise HTTPException(404, "no article with that id")
    row = found.row
    hits = [hit for match in found.matches for hit in hits_of(match["hits"])]
    title, text = row["title"] or "", row["text"] or ""
    marked_title, paragraphs = highlight_blocks(
        title, text, hit_spans(title + PARAGRAPH_SEPARATOR + text, hits)
    )
    return render(
        request,
        "article.html",
        article=row,
        original=http_link(row["url"]),
        script=script_of(row["language"]),
        title=marked_title,
        paragraphs=paragraphs,
        matches=[
            (match["watchlist"], words_by_concept(hits_of(match["hits"])))
            for match in found.matches
        ],
    )


ROUTES = [
    Route("/watchlists/{name}", watchlist_page),
    Route("/stories/{story_id}", story_page),
    Route("/articles/{article_id}", article_page),
]
