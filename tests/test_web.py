"""`newswatch serve` as its users meet it: the real server on loopback, over a database the demo
site's pipeline filled, read with an HTTP client as a browser, a feed reader or monitoring
would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from tests.support import (
    HOSTILE_SLUG,
    HOSTILE_TITLE,
    ONE_STORY,
    Served,
    article_id,
    change,
    newswatch,
    rows,
    start_daemon,
    stop_daemon,
    story_of,
    wait_until,
)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)


TOKEN = "a-long-random-token-for-tests"


def test_every_response_carries_the_security_headers(web: Served) -> None:
    for path in ("/", "/no-such-page", "/static/style.css", "/healthz"):
        response = web.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_nothing_but_reading_is_allowed(web: Served) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert web.client.request(method, "/").status_code == 405


def test_the_stylesheet_is_served_and_no_script_anywhere(web: Served) -> None:
    response = web.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "<script" not in web.get("/").text


def test_serve_refuses_an_open_address_without_a_token(web_archive: Path) -> None:
    result = newswatch("serve", "--config", str(web_archive), "--host", "0.0.0.0", timeout=30)
    assert result.returncode == 2
    assert "set web.token" in result.stderr
    result = newswatch("serve", "--config", str(web_archive), "--port", "70000", timeout=30)
    assert result.returncode == 2
    assert "serve: '127.0.0.1:70000': the port must be between 1 and 65535" in result.stderr


def test_the_overview_shows_watchlists_chart_messages_and_heartbeat(web: Served) -> None:
    page = web.get("/")
    assert page.status_code == 200
    assert '<a href="/watchlists/mfe">mfe</a>' in page.text
    assert '<svg class="chart"' in page.text
    assert "[mfe]" in page.text  # a latest message's subject
    assert "last heartbeat" in page.text


def test_a_watchlist_lists_its_stories_with_marked_words(web: Served, web_archive: Path) -> None:
    page = web.get("/watchlists/mfe")
    assert page.status_code == 200
    stories = rows(
        web_archive,
        "SELECT DISTINCT a.story_id FROM matches m JOIN articles a ON a.id = m.article_id",
    )
    assert len(stories) == 4
    for story in stories:
        assert page.text.count(f'href="/stories/{story["story_id"]}"') == 1
    assert "<mark>" in page.text
    assert '<bdi class="concept">france</bdi>:' in page.text


def test_a_story_shows_every_copy_and_its_messages(web: Served, web_archive: Path) -> None:
    story = story_of(web_archive)[next(iter(ONE_STORY))]
    page = web.get(f"/stories/{story}")
    assert page.status_code == 200
    for copy in rows(web_archive, "SELECT url FROM articles WHERE story_id = ?", (story,)):
        assert f'href="{escape(copy["url"])}" rel="noopener noreferrer nofollow"' in page.text
    assert ">sent<" in page.text and ">log<" in page.text


def test_an_arabic_article_reads_right_to_left_with_marked_words(
    web: Served, web_archive: Path
) -> None:
    page = web.get(f"/articles/{article_id(web_archive, 'morocco-france-extradition-agreement')}")
    assert page.status_code == 200
    assert '<article class="text" lang="ar" dir="rtl">' in page.text
    assert "<mark>بالرباط</mark>" in page.text


def test_unknown_and_bad_ids_are_not_found(web: Served, web_archive: Path) -> None:
    for path in (
        "/articles/999999",
        "/articles/abc",
        "/articles/" + "9" * 5000,
        "/articles/-1",
        f"/articles/{article_id(web_archive, HOSTILE_SLUG)}%0A",
        "/stories/st-nosuchstory",
        "/stories/" + "x" * 5000,
        "/watchlists/nosuch",
        "/alerts?page=999",
        "/alerts?page=abc",
        "/alerts?page=" + "9" * 5000,
    ):
        page = web.get(path)
        assert page.status_code == 404, path
        assert "Not found" in page.text


def test_hostile_stored_strings_are_inert(web: Served, web_archive: Path) -> None:
    hostile = article_id(web_archive, HOSTILE_SLUG)
    story = story_of(web_archive)[HOSTILE_SLUG]
    for path in ("/watchlists/mfe", f"/stories/{story}", f"/articles/{hostile}", "/"):
        page = web.get(path)
        assert page.status_code == 200, path
        assert "<script>" not in page.text, path
        assert 'href="javascript:' not in page.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in web.get(f"/articles/{hostile}").text
    assert f"<bdi>{escape(HOSTILE_TITLE)}</bdi>" in web.get("/watchlists/mfe").text


def test_a_page_named_for_another_host_is_refused(web: Served) -> None:
    """A page on another site that rebinds its name to 127.0.0.1 cannot read the archive."""
    assert web.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert web.get("/", headers={"Host": f"localhost:{web.port}"}).status_code == 200


def test_sources_and_messages_tables(web: Served) -> None:
    sources = web.get("/sources")
    assert sources.status_code == 200
    assert "<td>watch-fr</td>" in sources.text
    messages = web.get("/alerts")
    assert messages.status_code == 200
    assert "[mfe]" in messages.text


@pytest.fixture
def guarded(archive: Path) -> Iterator[Served]:
    with archive.open("a", encoding="utf-8") as config:
        config.write(f"web: {{token: {TOKEN}}}\n")
    served = Served(archive)
    yield served
    log = served.stop()
    assert TOKEN not in log


def test_with_a_token_every_request_needs_it(guarded: Served) -> None:
    page = guarded.get("/")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/"
    for path in ("/healthz", "/metrics", "/feeds/mfe.atom", "/articles/1"):
        assert guarded.get(path).status_code in (303, 401), path
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/", headers=bearer).status_code == 200
    assert guarded.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 303
    assert guarded.get(f"/?token={TOKEN}").status_code == 303
    assert guarded.get(f"/feeds/mfe.atom?token={TOKEN}").status_code not in (303, 401)


def test_logging_in_sets_a_cookie_that_opens_the_pages(guarded: Served) -> None:
    wrong = guarded.client.post("/login", data={"token": "wrong", "next": "/sources"})
    assert wrong.status_code == 401
    assert guarded.get("/sources").status_code == 303
    login = guarded.client.post("/login", data={"token": TOKEN, "next": "//evil.example/"})
    assert login.status_code == 303
    assert login.headers["location"] == "/"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert TOKEN not in login.headers["set-cookie"]
    assert guarded.get("/sources").status_code == 200


def test_a_run_writes_the_heartbeat_and_healthz_follows_it(archive: Path) -> None:
    [beat] = rows(archive, "SELECT host, pid, started_at, beat_at FROM heartbeats")
    assert beat["pid"] and beat["host"]
    served = Served(archive)
    try:
        change(archive, "UPDATE heartbeats SET beat_at = '2000-01-01T00:00:00Z'")
        stale = served.get("/healthz")
        assert stale.status_code == 503
        assert stale.json()["status"] == "stale"
        daemon = start_daemon(archive)
        try:
            wait_until(lambda: served.get("/healthz").status_code == 200, what="a fresh beat")
        finally:
            # stopped at its first beat, still starting: a clean stop, not a kill
            code, _, log = stop_daemon(daemon)
        assert code == 0, log
        assert served.get("/healthz").json()["status"] == "ok"
        # the week-old row of the earlier run is forgotten; the new daemon's is there
        assert [row["pid"] for row in rows(archive, "SELECT pid FROM heartbeats")] == [daemon.pid]
    finally:
        served.stop()
