"""Decode a fetched HTML page to text whatever its server or author claimed.

Arabic news sites still serve windows-1256 and ISO-8859-6, sometimes declared only in the HTTP
header, sometimes declared as UTF-8 when they are not. trafilatura ignores both header and
meta charset and guesses, so the spider decodes here and hands UTF-8 on.
"""

from __future__ import annotations

import charset_normalizer
from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

ARABIC_FALLBACK = "cp1256"


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """(text, encoding used). Order: BOM, valid UTF-8, the declared charset (header, then meta),
    a statistical guess, and windows-1256 with replacement characters as the last resort.

    Valid UTF-8 wins over a declared single-byte charset because non-ASCII text that happens to
    be valid UTF-8 is vanishingly rare, whereas pages wrongly declaring a charset are common.
    """
    bom, _ = read_bom(body)
    if bom:
        return body.decode(bom), bom
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    for declared in _declared(body, content_type):
        try:
            return body.decode(declared), declared
        except (UnicodeDecodeError, LookupError):
            continue
    guess = charset_normalizer.from_bytes(body[:20000]).best()
    if guess is not None and guess.encoding:
        try:
            return body.decode(guess.encoding), guess.encoding
        except (UnicodeDecodeError, LookupError):
            pass
    return body.decode(ARABIC_FALLBACK, "replace"), ARABIC_FALLBACK


def _declared(body: bytes, content_type: str | None) -> list[str]:
    names = [http_content_type_encoding(content_type), html_body_declared_encoding(body)]
    found = []
    for name in names:
        codec = resolve_encoding(name) if name else None
        if codec and codec not in found and codec != "utf-8":
            found.append(codec)
    return found


def to_utf8(body: bytes, content_type: str | None = None) -> bytes:
    """The page as UTF-8 bytes, the one encoding every later stage reads without guessing."""
    return decode_html(body, content_type)[0].encode("utf-8")
