"""The command line's logging: one line per event on stderr, library chatter kept down, and the
secrets in source URLs hidden from every line, whoever writes it."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Collection

from crawler.urls import REDACTED, secret_pattern

# Scrapy loggers whose failures each poll already reports in one line with source and URL.
REPORTED_BY_POLLS = (
    "scrapy.downloadermiddlewares.retry",
    "scrapy.downloadermiddlewares.robotstxt",
    "trafilatura.core",
    "scrapy.downloadermiddlewares.httpcompression",
    "scrapy.core.downloader.handlers.http11",
)
NOISY = (
    "scrapy",
    "twisted",
    "apscheduler",
    "trafilatura",
    "htmldate",
    "httpx",
    "mail.log",
    "procrastinate",
)


def setup_logging(level: str) -> None:
    """One line per event on stderr; Scrapy's own chatter only from warnings up."""
    from scrapy.utils.log import configure_logging

    configure_logging({"LOG_INSTALL_ROOT_HANDLER": False})
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    for repeated in REPORTED_BY_POLLS:
        logging.getLogger(repeated).setLevel(logging.CRITICAL)


class Redacting(logging.Filter):
    """Log lines written by libraries (Scrapy's "Spider error processing <GET …>") quote source
    URLs as fetched: the secrets they carry are hidden there too, as in our own lines."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.pattern.sub(REDACTED, message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def hide_secrets(secrets: Collection[str]) -> None:
    """From now on, every handler's lines show the config's secrets as the redaction mark."""
    pattern = secret_pattern(secrets)
    if pattern is None:
        return
    for handler in logging.getLogger().handlers:
        handler.addFilter(Redacting(pattern))


class Shortened(logging.Filter):
    """A line quoting what a client sent (uvicorn's access log quotes the whole request line) is
    cut to `limit` characters: one request must not write a 60 KB line into the operator's log."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > self.limit:
            record.msg, record.args = (
                f"{message[: self.limit]}… ({len(message):,} characters)",
                None,
            )
        return True
