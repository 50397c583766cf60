"""One bounded GET for the command-line paths (`newswatch add`, `newswatch match URL`).

They read the same hostile web as the daemon, so they keep its limits: the address policy on
every connection and redirect hop, a total deadline (crawl.download_timeout) however slowly the
bytes drip, and a limit on the *decoded* size (crawl.max_page_size). httpx decodes a whole
network chunk at once, so a few hundred compressed bytes could become gigabytes before any check;
the body is read raw here and decompressed with an output bound instead.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Protocol

import brotli
import httpx

from crawler.addresses import AddressPolicy, RefusedConnect, guarded_transport
from crawler.config import Config

MAX_REDIRECTS = 5


class FetchError(Exception):
    """The URL could not be read within the limits; the message says why, for the user.
    `refused`: by the address policy, worth a warning even where failures are expected."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str | None
    url: str


class _Decoder(Protocol):
    def decode(self, data: bytes, room: int) -> bytes: ...


class _Identity:
    def decode(self, data: bytes, room: int) -> bytes:
        return data


class _Zlib:
    """gzip, or deflate with or without its zlib header (servers send both)."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._inflate = zlib.decompressobj(wbits)
        self._started = False

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            out = self._inflate.decompress(data, room)
        except zlib.error:
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise
            self._wbits = -zlib.MAX_WBITS
            self._inflate = zlib.decompressobj(self._wbits)
            out = self._inflate.decompress(data, room)
        self._started = True
        return out


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes, room: int) -> bytes:
        return self._decompressor.process(data, output_buffer_limit=room)


def _brotli_is_bounded() -> bool:
    """brotli before 1.2 cannot bound its output: then `br` is not asked for at all."""
    try:
        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except TypeError:
        return False
    return True


ACCEPT_ENCODING = "gzip, deflate, br" if _brotli_is_bounded() else "gzip, deflate"


def _decoder(content_encoding: str | None) -> _Decoder:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return _Identity()
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if encoding == "br" and "br" in ACCEPT_ENCODING:
        return _Brotli()
    raise FetchError(f"unsupported Content-Encoding {encoding!r}")


class BoundedClient:
    """GETs with the daemon's user agent, deadline, size limit and address policy, http(s) only."""

    def __init__(
        self, user_agent: str, timeout: float, max_size: int, policy: AddressPolicy
    ) -> None:
        self.timeout = timeout
        self.max_size = max_size
        self.client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=timeout,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            transport=guarded_transport(policy),
        )

    def get(self, url: str) -> Page:
        deadline = time.monotonic() + self.timeout
        try:
            with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code}")
                body = self._read(response, deadline)
                return Page(body, response.headers.get("content-type"), str(response.url))
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, zlib.error, brotli.error) as exc:
            # InvalidURL is no HTTPError, and a malformed host or port (`http://[::1/x`) raises
            # ValueError: a URL a site wrote is as hostile as its bytes
            refused = isinstance(exc.__cause__, RefusedConnect)  # httpx keeps httpcore's error
            raise FetchError(str(exc) or type(exc).__name__, refused=refused) from None

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        """Decoded bytes, stopped as soon as they (or the raw bytes) pass the limit or the
        deadline passes: the check runs on every network read, however small."""
        decoder = _decoder(response.headers.get("content-encoding"))
        body = bytearray()
        raw = 0
        for chunk in response.iter_raw():
            raw += len(chunk)
            body += decoder.decode(chunk, self.max_size + 1 - len(body))
            if len(body) > self.max_size or raw > self.max_size:
                raise FetchError(
                    f"larger than crawl.max_page_size ({self.max_size} bytes): download stopped"
                )
            if time.monotonic() > deadline:
                raise FetchError(f"not received within crawl.download_timeout ({self.timeout:g} s)")
        return bytes(body)

    def close(self) -> None:
        self.client.close()


def command_line_client(
    config: Config, typed_url: str, timeout: float | None = None
) -> BoundedClient:
    """The URL the user typed is trusted like a configured source: they asked for it."""
    crawl = config.crawl
    policy = AddressPolicy.for_sources(
        (source.url for source in config.sources), crawl.allow_private_networks, [typed_url]
    )
    return BoundedClient(
        crawl.user_agent, timeout or crawl.download_timeout, crawl.max_page_size, policy
    )
