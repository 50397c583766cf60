"""A loopback web server for the cases real sites throw at a crawler: odd encodings, huge, slow
and looping pages, broken and hostile XML, gzip bombs, redirects out of the web.

Routes are a dict of path → `Reply` (or a callable returning one), so each test builds the site
it needs. Every request is logged with its arrival time and how many were in flight.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stream: int = 0
    """When set, send this many bytes of `body` repeated, without Content-Length."""
    drip: float = 0.0
    """With `stream`, wait this long before each repetition of `body`."""
    compress: bool = False
    """Gzip the body (after {BASE} is filled in), as a `.gz` file, not Content-Encoding."""


@dataclass(frozen=True)
class Hit:
    path: str
    at: float
    in_flight: int
    bytes_sent: int


Route = Reply | Callable[[], Reply]


class HostileSite:
    def __init__(
        self, routes: dict[str, Route], host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> None:
        self.routes = routes
        self.host = host
        self.tls = tls
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        """Paths of the requests answered so far (a request is logged once its answer ends)."""
        with self._lock:
            return [hit.path for hit in self.hits]

    @property
    def in_flight(self) -> int:
        """Requests arrived and not answered yet (held by a `delay`, or still being sent)."""
        with self._lock:
            return self._in_flight

    def __enter__(self) -> HostileSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                site._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read `hits`, not stderr."""

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self._in_flight += 1
            arrived, in_flight = time.monotonic(), self._in_flight
        sent = 0
        try:
            route = self.routes.get(path, Reply(b"not found", 404))
            reply = route() if callable(route) else route
            reply = _templated(reply, self.url)
            time.sleep(reply.delay)
            sent = _write(handler, reply)
        except OSError:
            pass
        finally:
            with self._lock:
                self._in_flight -= 1
                self.hits.append(Hit(path, arrived, in_flight, sent))


def _templated(reply: Reply, base: str) -> Reply:
    body = reply.body.replace(b"{BASE}", base.encode())
    headers = {k: v.replace("{BASE}", base) for k, v in reply.headers.items()}
    return Reply(
        gzipped(body) if reply.compress else body,
        reply.status,
        headers,
        reply.delay,
        reply.stream,
        drip=reply.drip,
    )


def _write(handler: BaseHTTPRequestHandler, reply: Reply) -> int:
    handler.send_response(reply.status)
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    if not reply.stream:
        handler.send_header("Content-Length", str(len(reply.body)))
    handler.end_headers()
    if not reply.stream:
        handler.wfile.write(reply.body)
        return len(reply.body)
    sent = 0
    while sent < reply.stream:
        time.sleep(reply.drip)
        handler.wfile.write(reply.body)
        handler.wfile.flush()
        sent += len(reply.body)
    return sent


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of zeros compressed to about a thousandth of that."""
    return gzipped(b"\0" * size)
