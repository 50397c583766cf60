"""The web app: its routes, the guard every request passes (read-only methods, the token, the
Host header), the security headers every response carries, and `read`, the one way a page
reads the database: a read-only connection, in a worker thread, so the event loop never waits
on SQLite and nothing a request does can write, send or fetch."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import sqlite_utils
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from alerts.times import format_duration, human_time
from crawler import heartbeat, store
from crawler.config import Config, WebConfig

log = logging.getLogger("newswatch.web")
T = TypeVar("T")

HERE = Path(__file__).parent
COOKIE = "newswatch_login"
READ_METHODS = frozenset({"GET", "HEAD"})
MAX_LOGIN_BODY = 4096
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Paths a browser needs before it can log in.
PUBLIC = ("/login", "/static/")
# Paths programs read (monitoring, feed readers): they get a 401, not the login form.
MACHINE = ("/healthz", "/metrics", "/feeds")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def read(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """`fn(db, *args)` on a read-only connection, in a worker thread."""
    return await run_in_threadpool(_read, request.app.state.config.database, fn, *args)


def _read(path: Path, fn: Callable[..., T], *args: Any) -> T:
    db = sqlite_utils.Database(store.connect_read_only(path))
    try:
        return fn(db, *args)
    finally:
        db.close()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, template, context, status_code=status_code
    )


def login_cookie(token: str) -> str:
    """What the login cookie holds: derived from the token, so a stolen cookie does not give
    the token itself (which also opens the feeds)."""
    return hmac.new(token.encode(), b"newswatch web login", hashlib.sha256).hexdigest()


class Guard(BaseHTTPMiddleware):
    """Every request: only reads (and the login form) are served; from a loopback address the
    Host must be this machine's (a page elsewhere cannot rebind its name to us and read the
    archive); with a token, nothing but the login form and stylesheet without it."""

    def __init__(self, app: Any, web: WebConfig) -> None:
        super().__init__(app)
        self.web = web
        self.hosts = LOCAL_NAMES | {web.listen[0], urlsplit(web.url).hostname or ""}

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = self.refusal(request) or await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def refusal(self, request: Request) -> Response | None:
        path = request.url.path
        if request.method not in READ_METHODS and (request.method, path) != ("POST", "/login"):
            return PlainTextResponse(
                "read-only: only GET and HEAD", 405, headers={"Allow": "GET, HEAD"}
            )
        if self.web.token is None:
            host = urlsplit(f"//{request.headers.get('host', '')}").hostname
            if host not in self.hosts:
                return PlainTextResponse("unknown Host header", 400)
            return None
        if path.startswith(PUBLIC) or self.authorized(request):
            return None
        if path.startswith(MACHINE):
            return PlainTextResponse(
                "a token is needed", 401, headers={"WWW-Authenticate": "Bearer"}
            )
        return RedirectResponse(f"/login?next={quote(path)}", 303)

    def authorized(self, request: Request) -> bool:
        token = self.web.token or ""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), token):
            return True
        if _same(request.cookies.get(COOKIE, ""), login_cookie(token)):
            return True
        return request.url.path.startswith("/feeds") and _same(
            request.query_params.get("token", ""), token
        )


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _next_page(value: str | None) -> str:
    """Back to the page asked for, on this site only (`//evil.example` is another site)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


async def login_form(request: Request) -> Response:
    return render(request, "login.html", next=_next_page(request.query_params.get("next")))


async def login(request: Request) -> Response:
    """A browser's way in: the token typed once, a cookie from then on."""
    form = await _small_form(request)
    web: WebConfig = request.app.state.config.web
    given = (form.get("token") or [""])[0]
    target = _next_page((form.get("next") or [""])[0])
    if web.token is None or not _same(given, web.token):
        log.warning("web: failed login from %s", request.client.host if request.client else "?")
        return render(request, "login.html", 401, next=target, failed=True)
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        login_cookie(web.token),
        httponly=True,
        samesite="strict",
        secure=web.url.startswith("https://"),
    )
    return response


async def _small_form(request: Request) -> dict[str, list[str]]:
    """The login form is a few dozen bytes: a larger body is refused before it is read whole."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            raise HTTPException(413, "the form is too large")
    return parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)


async def healthz(request: Request) -> Response:
    """One JSON line for monitoring: 200 while a daemon beats, 503 when none has lately."""
    try:
        row = await read(request, store.latest_heartbeat)
    except (store.StoreError, sqlite3.Error) as exc:
        return JSONResponse({"status": "no database", "error": str(exc)}, 503)
    seconds = heartbeat.age(row)
    fresh = heartbeat.is_fresh(seconds)
    body = {"status": "ok" if fresh else "stale" if row else "no heartbeat"}
    if row is not None:
        body |= {"heartbeat_age": round(seconds or 0.0, 1), "host": row["host"], "pid": row["pid"]}
    return JSONResponse(body, 200 if fresh else 503)


async def not_found(request: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, HTTPException) else "not found"
    return render(request, "error.html", 404, title="Not found", detail=detail)


async def unavailable(request: Request, exc: Exception) -> Response:
    """The database cannot be read (not there yet, locked, damaged): said, not a traceback."""
    log.error("web: %s %s: %s", request.method, request.url.path, exc)
    return render(request, "error.html", 503, title="Database unavailable", detail=str(exc))


def routes() -> list[BaseRoute]:
    from crawler.web import feeds, metrics, overview, search, stories

    return [
        Route("/healthz", healthz),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        *overview.ROUTES,
        *stories.ROUTES,
        *search.ROUTES,
        *feeds.ROUTES,
        *metrics.ROUTES,
    ]


def create_app(config: Config) -> Starlette:
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(Guard, web=config.web)],
        exception_handlers={
            404: not_found,
            store.StoreError: unavailable,
            sqlite3.Error: unavailable,
        },
    )
    app.state.config = config
    app.state.templates = templates()
    return app


def templates() -> Jinja2Templates:
    """Autoescaped (Starlette's default): every value a site sent is text, never markup."""
    found = Jinja2Templates(directory=HERE / "templates")
    found.env.filters["duration"] = format_duration
    found.env.filters["time"] = human_time
    return found
