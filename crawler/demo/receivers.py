"""Loopback stand-ins for a webhook endpoint and an SMTP server.

`newswatch demo` shows alerts arriving without any outside service, and tests drive the real
channel code against them, including the failures a real receiver answers with (queued HTTP
statuses, queued SMTP replies). Both listen on 127.0.0.1 on an ephemeral port and run in a
background thread, so they work from synchronous tests and from the daemon's event loop alike.
"""

from __future__ import annotations

import email
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LOOPBACK = "127.0.0.1"

POLL_INTERVAL = 0.05  # seconds; bounds how long stop() waits for the server thread

T = TypeVar("T")


class Headers(dict[str, str]):
    """Received headers, looked up case-insensitively as HTTP header names are."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        super().__init__()
        for name, value in items:
            key = name.lower()
            self[key] = f"{self[key]}, {value}" if key in self else value

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __setitem__(self, name: str, value: str) -> None:
        super().__setitem__(name.lower(), value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: Headers
    body: bytes
    json: Any
    status: int


class _Collector(Generic[T]):
    """A thread-safe append-only list that callers can block on."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = threading.Condition()

    def add(self, item: T) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float, what: str) -> list[T]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.items) >= count, timeout):
                raise TimeoutError(f"expected {count} {what}, got {len(self.items)} in {timeout}s")
            return list(self.items)


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class _HookHandler(BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, extra_headers = self.server.receiver._next_response()
        request = ReceivedRequest(
            self.path, Headers(self.headers.items()), body, _json(body), status
        )
        self.server.receiver._record(request)
        time.sleep(self.server.receiver.delay)
        reply = (b"ok" if 200 <= status < 300 else HTTPStatus(status).phrase.encode()) + b"\n"
        self.send_response(status)
        for name, value in extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the demo prints alerts through `on_request`, not access logs."""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


class WebhookReceiver:
    """An HTTP endpoint that records every POST and answers with queued statuses, then 200.

    `delay` (seconds, changeable while running) holds each answer back after the request is
    recorded, like a slow receiver: the sender is then mid-send for that long. `port` 0 picks a
    free one; a fixed port lets a receiver come back where senders expect it after an outage.
    """

    def __init__(
        self,
        on_request: Callable[[ReceivedRequest], None] | None = None,
        *,
        delay: float = 0.0,
        port: int = 0,
    ):
        self.on_request = on_request
        self.delay = delay
        self.port = port
        self._requests: _Collector[ReceivedRequest] = _Collector()
        self._responses: deque[tuple[int, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self._server: _HookServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("WebhookReceiver is not started")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/hook"

    @property
    def requests(self) -> list[ReceivedRequest]:
        return list(self._requests.items)

    def respond_with(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            for status in statuses:
                self._responses.append(status if isinstance(status, tuple) else (status, {}))

    def wait_for(self, count: int, timeout: float = 10) -> list[ReceivedRequest]:
        return self._requests.wait_for(count, timeout, "webhook requests")

    def start(self) -> Self:
        server = _HookServer((LOOPBACK, self.port), _HookHandler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_INTERVAL,), name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next_response(self) -> tuple[int, dict[str, str]]:
        with self._lock:
            return self._responses.popleft() if self._responses else (200, {})

    def _record(self, request: ReceivedRequest) -> None:
        self._requests.add(request)
        if self.on_request is not None:
            self.on_request(request)


class _EphemeralController(Controller):
    """aiosmtpd's Controller needs a fixed port; bind the one asked for (0: any free one) and
    read back the real one."""

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> Any:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server


class _SinkHandler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.sink._deliver(envelope.original_content or envelope.content or b"")


class SmtpSink:
    """An SMTP server that keeps accepted messages and answers DATA with queued replies.

    A message refused through `reply_with` is not kept: like a real server, it was not
    accepted. With `credentials`, AUTH is required (over plain text, loopback only).
    """

    def __init__(
        self,
        on_message: Callable[[EmailMessage], None] | None = None,
        *,
        credentials: tuple[str, str] | None = None,
        port: int = 0,
    ):
        self.on_message = on_message
        self.host = LOOPBACK
        self.port = port
        self._credentials = credentials
        self._messages: _Collector[EmailMessage] = _Collector()
        self._replies: deque[str] = deque()
        self._lock = threading.Lock()
        self._controller: _EphemeralController | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self._messages.items)

    def reply_with(self, *codes: str) -> None:
        with self._lock:
            self._replies.extend(codes)

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        return self._messages.wait_for(count, timeout, "email messages")

    def start(self) -> Self:
        auth: dict[str, Any] = {}
        if self._credentials is not None:
            auth = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        controller = _EphemeralController(
            _SinkHandler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="newswatch-sink",
            **auth,
        )
        controller.start()
        self._controller = controller
        self.port = controller.port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
        self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """`handled=False` on failure lets aiosmtpd answer 535 itself, as a real server would."""
        if isinstance(data, LoginPassword) and self._credentials is not None:
            given = (data.login.decode(errors="replace"), data.password.decode(errors="replace"))
            if given == self._credentials:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def _deliver(self, content: bytes) -> str:
        with self._lock:
            reply = self._replies.popleft() if self._replies else "250 OK"
        if reply.startswith("2"):
            message = cast(EmailMessage, email.message_from_bytes(content, policy=default_policy))
            self._messages.add(message)
            if self.on_message is not None:
                self.on_message(message)
        return reply
