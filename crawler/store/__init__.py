"""The one database file: every fact the daemon must not lose is a row here before the next step
acts. Every SQL statement on the crawler's tables is in this package, behind the names below.

Tables have plain names so people can open the file in Datasette or sqlite3: `sources` (fetch
and health state per source), `articles` (+ `articles_fts` over normalised text), `seen_urls`
(every canonical URL that led to an article), `article_signatures` (near-duplicate signatures),
`article_versions` (texts replaced by updates), `fetch_failures` (pages to retry later),
`matches` (watchlist hits), `maintenance` (when periodic tasks last ran); the outbox tables
(`alerts`, `digests`, `health_alerts`) belong to the alerts library.
"""

from crawler.store.articles import (
    fetch_failures,
    forget_fetch_failure,
    insert_article,
    known_article,
    known_articles,
    note_listing_update,
    record_fetch_failure,
    remember_urls,
    replace_text,
    story_size,
)
from crawler.store.database import (
    AlreadyRunning,
    StoreError,
    connect_read_only,
    daemon_lock,
    open_db,
    open_for_reading,
    store_error,
    utcnow,
)
from crawler.store.maintenance import (
    DatabaseStats,
    TableSize,
    article_overview,
    backup,
    database_stats,
)
from crawler.store.schema import MIGRATIONS, SCHEMA_VERSION
from crawler.store.sources import (
    SourceState,
    article_dates,
    articles_since,
    record_poll,
    source_health,
    source_row,
    source_state,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AlreadyRunning",
    "DatabaseStats",
    "SourceState",
    "StoreError",
    "TableSize",
    "article_dates",
    "article_overview",
    "articles_since",
    "backup",
    "connect_read_only",
    "daemon_lock",
    "database_stats",
    "fetch_failures",
    "forget_fetch_failure",
    "insert_article",
    "known_article",
    "known_articles",
    "note_listing_update",
    "open_db",
    "open_for_reading",
    "record_fetch_failure",
    "record_poll",
    "remember_urls",
    "replace_text",
    "source_health",
    "source_row",
    "source_state",
    "store_error",
    "story_size",
    "utcnow",
]
