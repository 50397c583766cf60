"""One canonical form per article URL, so the same page reached by two links is fetched once."""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

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


_SECRET_KEY = re.compile(r"key|token|secret|pass|auth|sig|session|credential", re.IGNORECASE)
REDACTED = "REDACTED"


def redact(url: str, secrets: Collection[str] = ()) -> str:
    """The URL as it may be shown or logged: a userinfo password, query values under secret-
    looking keys (apikey, token, sig…) and any of `secrets` (values the config took from the
    environment) replaced by REDACTED. Only for display: fetching uses the real URL."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{_hide(user, secrets)}{colon and ':' + REDACTED}@{host}"
    query = "&".join(_redacted_pair(pair, secrets) for pair in parts.query.split("&"))
    path = parts.path
    for secret in secrets:
        if secret:
            path = path.replace(secret, REDACTED)
    return urlunsplit((parts.scheme, netloc, path, query if parts.query else "", parts.fragment))


def secrets_of(url: str) -> set[str]:
    """The values `redact` hides by their place in the URL: a userinfo password and the values of
    secret-looking query keys, so they can be hidden in other text too (an error message)."""
    parts = urlsplit(url)
    found = {unquote(parts.password)} if parts.password else set()
    for key, _, value in (pair.partition("=") for pair in parts.query.split("&")):
        if value and _SECRET_KEY.search(unquote(key)):
            found |= {value, unquote(value)}
    return found


def secret_pattern(secrets: Collection[str]) -> re.Pattern[str] | None:
    """One pattern for every secret of at least 4 characters, longest first: shorter ones would
    hide ordinary words, and are only hidden inside URLs. None when there is nothing to hide."""
    hidden = sorted((secret for secret in secrets if len(secret) >= 4), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, hidden))) if hidden else None


def hide(text: str, secrets: Collection[str]) -> str:
    """`text` (a log line, an error message) with its secrets replaced (`secret_pattern`)."""
    pattern = secret_pattern(secrets)
    return pattern.sub(REDACTED, text) if pattern else text


def _redacted_pair(pair: str, secrets: Collection[str]) -> str:
    key, sep, value = pair.partition("=")
    if value and (_SECRET_KEY.search(unquote(key)) or unquote(value) in secrets):
        return f"{key}{sep}{REDACTED}"
    return pair


def _hide(value: str, secrets: Collection[str]) -> str:
    return REDACTED if unquote(value) in secrets else value


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
