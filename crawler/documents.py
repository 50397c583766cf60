"""Turn what a user hands `newswatch match` into the Document the daemon would have matched."""

from __future__ import annotations

from pathlib import Path

import httpx

from alerts.document import Document
from crawler.encodings import to_utf8
from crawler.extract import extract_article

MAX_FETCH_BYTES = 10 * 1024 * 1024


class DocumentError(Exception):
    """The file or URL cannot be read or holds no article text."""


def from_html(
    html: bytes, url: str, content_type: str | None = None, language: str | None = None
) -> Document:
    """Decoded as the daemon decodes a fetched page (header, then the page's own declaration,
    then a guess), so `match` reads the text the daemon would have matched."""
    extracted = extract_article(to_utf8(html, content_type), url, language)
    if extracted is None or not extracted.paragraphs:
        raise DocumentError("no article text found in the page")
    return Document(extracted.title or "", tuple(extracted.paragraphs), extracted.language)


def _fetch(url: str, user_agent: str) -> tuple[bytes, str | None]:
    """The page and its content type."""
    try:
        with httpx.stream(
            "GET", url, headers={"User-Agent": user_agent}, timeout=20, follow_redirects=True
        ) as response:
            response.raise_for_status()
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_FETCH_BYTES:
                    raise DocumentError(f"page larger than {MAX_FETCH_BYTES} bytes")
            return body, response.headers.get("content-type")
    except httpx.HTTPError as exc:
        raise DocumentError(f"cannot fetch: {exc}") from None


def load_document(target: str, user_agent: str = "newswatch") -> Document:
    if target.startswith(("http://", "https://")):
        body, content_type = _fetch(target, user_agent)
        return from_html(body, target, content_type)
    path = Path(target)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read: {exc.strerror}") from None
    if path.suffix.lower() in (".html", ".htm"):
        return from_html(data, path.resolve().as_uri())
    if path.suffix.lower() == ".txt":
        try:
            return Document.from_plain_text(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise DocumentError("not UTF-8 text") from None
    raise DocumentError("unsupported file type: give a .txt or .html file, or an http(s) URL")
