"""One canonical form per article URL, so the same page reached by two links is fetched once."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

_TRACKING_PREFIXES = ("utm_",)
_TRACKING_KEYS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Browsers and CDNs stop near 8 KB; news article URLs are well under 1 KB.
MAX_URL_LENGTH = 4096


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in _TRACKING_KEYS or key.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment, tracking parameters and a trailing
    slash dropped (`/news/1/` and `/news/1` are one article on every CMS that serves both),
    query sorted and percent-encoding normalised (w3lib)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, True) if not _is_tracking(k)])
    rebuilt = urlunsplit((scheme, netloc, parts.path.rstrip("/") or "/", query, ""))
    return canonicalize_url(rebuilt, keep_fragments=False)


def listed_url(base: str, link: str) -> str:
    """A link as a listing gives it, made absolute, or ValueError saying why it cannot be an
    article URL: too long, a malformed host (`http://[::1/x`), a port out of range. Checked
    here, entry by entry, so one such link skips itself instead of failing its listing later."""
    link = link.strip()
    if len(link) > MAX_URL_LENGTH:
        raise ValueError(f"URL of {len(link)} characters (more than {MAX_URL_LENGTH})")
    url = urljoin(base, link)
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"URL of {len(url)} characters (more than {MAX_URL_LENGTH})")
    canonical_url(url)
    return url
