"""A loopback static web server that behaves like a small news site.

`newswatch demo`, the end-to-end tests and the benchmarks crawl the bundled offline site
(`seeds/demo/site/`) through this server, so it answers the way real news sites do where the
crawler cares: conditional GET (ETag, Last-Modified, 304), content types that tell feeds apart,
404s, refused traversal. Files are read from disk on every request so a test can add a feed entry
or touch a page while the server runs.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from dataclasses import dataclass
from email.message import Message
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

BASE_URL_PLACEHOLDER = b"{{BASE_URL}}"
TEMPLATED_SUFFIXES = frozenset({".html", ".xml", ".txt", ".json"})
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".svg": "image/svg+xml",
}
XML_TYPES = {"rss": "application/rss+xml", "feed": "application/atom+xml"}
_XML_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_XML_ROOT = re.compile(rb"<(?![?!])(?:[\w.-]+:)?([\w.-]+)")


@dataclass(frozen=True)
class RequestRecord:
    """One answered request, so tests and benchmarks can count fetches and revalidations."""

    method: str
    path: str
    status: int
    conditional: bool
    bytes_sent: int


@dataclass(frozen=True)
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


def xml_content_type(data: bytes) -> str:
    """Feed readers and our spider pick a parser by media type, so RSS and Atom must differ."""
    match = _XML_ROOT.search(_XML_COMMENT.sub(b"", data[:4096]))
    root = match.group(1).decode("ascii", "replace").lower() if match else ""
    return XML_TYPES.get(root, "application/xml") + "; charset=utf-8"


def content_type(path: Path, data: bytes) -> str:
    """Media type by extension; XML is sniffed because `.xml` may be RSS, Atom or a sitemap."""
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return xml_content_type(data)
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


def strong_etag(data: bytes) -> str:
    """Hash the served bytes (after substitution), so a changed base URL changes the ETag too."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): a W/ prefix is ignored."""
    candidates = [tag.strip() for tag in header.split(",")]
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in candidates)


def not_modified_since(header: str, mtime: float) -> bool:
    """HTTP dates have one-second resolution, so compare whole seconds; bad dates are ignored."""
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return int(mtime) <= int(since.timestamp())


def resolve_under(root: Path, url_path: str) -> Path | None:
    """Map a URL path to a path inside root; None for anything that would escape it."""
    relative = unquote(url_path).lstrip("/")
    if "\x00" in relative or "\\" in relative:
        return None
    try:
        candidate = (root / relative).resolve()
    except (OSError, RuntimeError):
        return None
    return candidate if candidate.is_relative_to(root) else None


class _Handler(BaseHTTPRequestHandler):
    """Serves one request from `server.site`; all policy lives in DemoSite."""

    server_version = "newswatch-demo/1"
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def do_GET(self) -> None:
        self._send(self.server.site.respond(self.path, self.headers), head=False)

    def do_HEAD(self) -> None:
        self._send(self.server.site.respond(self.path, self.headers), head=True)

    def do_POST(self) -> None:
        self._send(_plain(HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": "GET, HEAD"}), head=False)

    def _send(self, response: _Response, head: bool) -> None:
        conditional = "If-None-Match" in self.headers or "If-Modified-Since" in self.headers
        body = b"" if head else response.body
        record = RequestRecord(self.command, self.path, response.status, conditional, len(body))
        self.server.site.record(record)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: a crawl of the demo site must not print one stderr line per request."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: DemoSite, port: int) -> None:
        self.site = site
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-response is normal for a crawler; don't print tracebacks."""


def _is_fresh(headers: Message, etag: str, mtime: float) -> bool:
    """If-None-Match wins over If-Modified-Since when both are sent (RFC 9110 §13.2.2)."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if_modified_since = headers.get("If-Modified-Since")
    return if_modified_since is not None and not_modified_since(if_modified_since, mtime)


def _plain(status: HTTPStatus, extra: dict[str, str] | None = None) -> _Response:
    body = f"{status.value} {status.phrase}\n".encode()
    headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))}
    return _Response(status.value, headers | (extra or {}), body)


class DemoSite:
    """A threaded static HTTP server on 127.0.0.1 (ephemeral port) serving a directory as a real
    news site would (conditional GET, feed media types, 404s); `requests` records every answer
    so tests and benchmarks can count fetches."""

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = Path(root).resolve()
        self.port = port
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Known only once started, because the port is picked by the OS."""
        if self._server is None:
            raise RuntimeError("DemoSite.base_url is known only after start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> DemoSite:
        if self._server is not None:
            raise RuntimeError("DemoSite already started")
        if not self.root.is_dir():
            raise FileNotFoundError(f"demo site root is not a directory: {self.root}")
        self._server = _Server(self, self.port)
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="demo-site", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def record(self, entry: RequestRecord) -> None:
        """Logged before the response is written, so a client that has its answer sees it."""
        with self._lock:
            self.requests.append(entry)

    def respond(self, raw_path: str, headers: Message) -> _Response:
        """Build the full answer for a GET of raw_path, reading the file from disk now."""
        url_path = urlsplit(raw_path).path
        path = resolve_under(self.root, url_path)
        if path is None:
            return _plain(HTTPStatus.FORBIDDEN)
        try:
            if path.is_dir():
                if not url_path.endswith("/"):
                    return _plain(HTTPStatus.MOVED_PERMANENTLY, {"Location": url_path + "/"})
                path = path / "index.html"
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except PermissionError:
            return _plain(HTTPStatus.FORBIDDEN)
        except OSError:
            return _plain(HTTPStatus.NOT_FOUND)
        return self._file_response(path, data, mtime, headers)

    def _file_response(self, path: Path, data: bytes, mtime: float, headers: Message) -> _Response:
        if path.suffix.lower() in TEMPLATED_SUFFIXES:
            data = data.replace(BASE_URL_PLACEHOLDER, self.base_url.encode())
        etag = strong_etag(data)
        validators = {"ETag": etag, "Last-Modified": formatdate(mtime, usegmt=True)}
        if _is_fresh(headers, etag, mtime):
            return _Response(HTTPStatus.NOT_MODIFIED.value, validators, b"")
        length = str(len(data))
        full = validators | {"Content-Type": content_type(path, data), "Content-Length": length}
        return _Response(HTTPStatus.OK.value, full, data)
