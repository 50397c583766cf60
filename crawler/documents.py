"""Turn what a user hands `newswatch match` into the Document the daemon would have matched."""

from __future__ import annotations

from pathlib import Path

import httpx

from alerts.document import Document
from crawler.extract import extract_article

MAX_FETCH_BYTES = 10 * 1024 * 1024


class DocumentError(Exception):
    """The file or URL cannot be read or holds no article text."""


def from_html(html: bytes | str, url: str, language: str | None = None) -> Document:
    extracted = extract_article(html, url, language)
    if extracted is None or not extracted.paragraphs:
        raise DocumentError("no article text found in the page")
    return Document(extracted.title or "", tuple(extracted.paragraphs), extracted.language)


def _fetch(url: str, user_agent: str) -> bytes:
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
            return body
    except httpx.HTTPError as exc:
        raise DocumentError(f"cannot fetch: {exc}") from None


def load_document(target: str, user_agent: str = "newswatch") -> Document:
    if target.startswith(("http://", "https://")):
        return from_html(_fetch(target, user_agent), target)
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
