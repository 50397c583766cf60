"""The one database file: every fact the daemon must not lose is a row here before the next step
acts. Every SQL statement on the crawler's tables is in this package, behind the names below.

Tables have plain names so people can open the file in Datasette or sqlite3: `sources` (fetch
and health state per source), `articles` (+ `articles_fts` over normalised text), `seen_urls`
(every canonical URL that led to an article), `article_signatures` (near-duplicate signatures),
`article_versions` (texts replaced by updates), `fetch_failures` (pages to retry later),
`matches` (watchlist hits), `maintenance` (when periodic tasks last ran), `heartbeats` (each
daemon's last sign of life). The outbox tables (`alerts`, `digests`, `health_alerts`, versioned
in `schema_versions`) belong to the alerts library, which creates and migrates them
(`alerts.schema`); `open_db` runs both migrations.
"""

from crawler.store.articles import (
    article_row,
    check_archive,
    fetch_failures,
    first_known,
    forget_fetch_failure,
    insert_article,
    known_article,
    known_articles,
    note_listing_update,
    read_articles,
    record_fetch_failure,
    record_match,
    remember_urls,
    replace_text,
)
from crawler.store.database import (
    AlreadyRunning,
    StoreError,
    connect_read_only,
    daemon_lock,
    open_db,
    open_for_reading,
    store_error,
)
from crawler.store.heartbeats import forget_heartbeats, latest_heartbeat, record_heartbeat
from crawler.store.maintenance import (
    DatabaseStats,
    TableSize,
    article_overview,
    backup,
    database_stats,
)
from crawler.store.retention import (
    checkpoint,
    database_file,
    drop_fetch_failures,
    drop_html,
    drop_versions,
    full_vacuum,
    incremental_vacuum,
    last_run,
    merge_fts_step,
    prune_articles,
    record_run,
    vacuum_step,
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
from crawler.store.stories import (
    StoryRow,
    all_signatures,
    article_signature,
    list_stories,
    save_signature,
    stories_and_signatures,
    story_of_text,
    story_outlets,
    story_size,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AlreadyRunning",
    "DatabaseStats",
    "SourceState",
    "StoreError",
    "StoryRow",
    "TableSize",
    "all_signatures",
    "article_dates",
    "article_overview",
    "article_row",
    "article_signature",
    "articles_since",
    "backup",
    "check_archive",
    "checkpoint",
    "connect_read_only",
    "daemon_lock",
    "database_file",
    "database_stats",
    "drop_fetch_failures",
    "drop_html",
    "drop_versions",
    "fetch_failures",
    "first_known",
    "forget_fetch_failure",
    "forget_heartbeats",
    "full_vacuum",
    "incremental_vacuum",
    "insert_article",
    "known_article",
    "known_articles",
    "last_run",
    "latest_heartbeat",
    "list_stories",
    "merge_fts_step",
    "note_listing_update",
    "open_db",
    "open_for_reading",
    "prune_articles",
    "read_articles",
    "record_fetch_failure",
    "record_heartbeat",
    "record_match",
    "record_poll",
    "record_run",
    "remember_urls",
    "replace_text",
    "save_signature",
    "source_health",
    "source_row",
    "source_state",
    "store_error",
    "stories_and_signatures",
    "story_of_text",
    "story_outlets",
    "story_size",
    "vacuum_step",
]
