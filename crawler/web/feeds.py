"""Each watchlist as an Atom feed, for analysts who read alerts in a feed reader, and an OPML
file listing them all. Written with feedgen (never hand-made XML); every address in them comes
from `web.base_url`, never from the request's Host, and none carries the token."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import sqlite_utils
from feedgen.feed import FeedGenerator
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts.message import http_link
from alerts.snippets import words_by_concept
from alerts.times import parse_time
from crawler import store
from crawler.config import Config
from crawler.web.app import read
from crawler.web.highlight import highlight_snippet, hits_of

ENTRIES = 50
ATOM = "application/atom+xml; charset=utf-8"
OPML = "text/x-opml; charset=utf-8"


def feed_url(config: Config, watchlist: str) -> str:
    return f"{config.web.url}/feeds/{quote(watchlist)}.atom"


def entry_id(watchlist: str, story_id: str) -> str:
    """The same story in the same watchlist is the same entry for ever: readers show an
    updated story again instead of twice."""
    return f"urn:newswatch:{quote(watchlist)}:{quote(story_id)}"


def feed_stories(db: sqlite_utils.Database, watchlist: str) -> list[dict[str, Any]]:
    """The newest stories the watchlist matched, each with when it last changed."""
    rows = store.watchlist_stories(db, watchlist, ENTRIES, 0)
    changed = store.story_updates(db, [row["story_id"] for row in rows])
    return [{**row, "changed_at": changed.get(row["story_id"])} for row in rows]


def _moment(*values: str | None) -> datetime:
    """The first stored time that parses; a date a site sent may not."""
    for value in values:
        moment = parse_time(value)
        if moment is not None:
            return moment
    return datetime.now(UTC)


def entry_content(row: dict[str, Any]) -> str:
    """The snippet with its matched words marked, and which words of which concept: escaped
    HTML, the reader shows it as the entry's content."""
    hits = hits_of(row["hits"])
    words = "; ".join(group.line() for group in words_by_concept(hits))
    parts = [
        Markup("<p>{}</p>").format(highlight_snippet(row["snippet"] or "", hits)),
        Markup("<p>{} · {} cop{}</p>").format(
            row["source"], row["copies"], "y" if row["copies"] == 1 else "ies"
        ),
        Markup("<p>{}</p>").format(words),
    ]
    return str(escape("").join(parts))


def atom(config: Config, watchlist: str, rows: list[dict[str, Any]]) -> bytes:
    feed = FeedGenerator()
    feed.id(feed_url(config, watchlist))
    feed.title(f"newswatch: {watchlist}")
    feed.author(name="newswatch")
    feed.link(href=feed_url(config, watchlist), rel="self", type="application/atom+xml")
    feed.link(href=f"{config.web.url}/watchlists/{quote(watchlist)}", rel="alternate")
    feed.updated(max((_moment(row["changed_at"]) for row in rows), default=datetime.now(UTC)))
    for row in rows:
        entry = feed.add_entry(order="append")
        entry.id(entry_id(watchlist, row["story_id"]))
        entry.title(row["title"] or "(untitled)")
        story_page = f"{config.web.url}/stories/{quote(row['story_id'])}"
        entry.link(href=http_link(row["url"]) or story_page, rel="alternate")
        entry.link(href=story_page, rel="related")
        entry.author(name=row["source"])
        entry.published(_moment(row["published_at"], row["fetched_at"]))
        entry.updated(_moment(row["changed_at"], row["fetched_at"]))
        entry.content(entry_content(row), type="html")
    return feed.atom_str(pretty=True)


async def watchlist_feed(request: Request) -> Response:
    config: Config = request.app.state.config
    name = request.path_params["name"]
    if name not in {watchlist.name for watchlist in config.watchlists}:
        raise HTTPException(404, "no watchlist of that name in the config")
    rows = await read(request, feed_stories, name)
    return Response(atom(config, name, rows), media_type=ATOM)


def opml(config: Config) -> bytes:
    """Every watchlist's feed, for a reader to subscribe to all at once."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "newswatch watchlists"
    body = ET.SubElement(root, "body")
    for watchlist in config.watchlists:
        ET.SubElement(
            body,
            "outline",
            type="rss",
            text=watchlist.name,
            title=watchlist.name,
            xmlUrl=feed_url(config, watchlist.name),
            htmlUrl=f"{config.web.url}/watchlists/{quote(watchlist.name)}",
        )
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


async def feeds_opml(request: Request) -> Response:
    return Response(opml(request.app.state.config), media_type=OPML)


ROUTES = [
    Route("/feeds/{name}.atom", watchlist_feed),
    Route("/feeds.opml", feeds_opml),
]
