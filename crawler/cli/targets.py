"""What `newswatch match` reads: a .txt or .html file or a URL, turned into the Document the
daemon would have matched (a page decoded and extracted as a fetched one)."""

from __future__ import annotations

from pathlib import Path

from alerts.document import Document
from crawler.config import Config
from crawler.encodings import to_utf8
from crawler.extract import extract_article
from crawler.fetching import FetchError, command_line_client


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


def load_document(target: str, config: Config | None = None) -> Document:
    """A URL is fetched with the daemon's limits (config's crawl section, defaults without one)."""
    if target.startswith(("http://", "https://")):
        client = command_line_client(config or Config(), target)
        try:
            page = client.get(target)
        except FetchError as exc:
            raise DocumentError(f"cannot fetch: {exc}") from None
        finally:
            client.close()
        return from_html(page.body, target, page.content_type)
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
