"""The shape of config.yaml: one strict pydantic model per section (unknown keys refused), with
the defaults a working daemon runs on. The models of watchlists, concepts and channels are
`alerts/`'s own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerts.channels import ChannelConfig
from alerts.concepts import ConceptSpec
from alerts.database import is_postgres_url
from alerts.delivery import RetryPolicy
from alerts.health import HealthPolicy
from alerts.watchlists import Name, WatchlistConfig
from crawler.config.values import Cron, Duration, Keep, Listen, Size, WebUrl, is_loopback
from crawler.urls import hide, redact, secrets_of

# The validation context's key for the values `${VAR}` took from the environment (secrets).
ENVIRONMENT_VALUES = "environment_values"


class _Strict(BaseModel):
    """Every section refuses keys it does not know (a typo must not pass for a default) and
    cannot be changed once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# A page's extraction takes 20–40 ms; one still running after this is killed (feed entry used).
EXTRACTION_TIMEOUT = 20.0


class CrawlConfig(_Strict):
    """How the crawl fetches: identity, limits per page, per site and per poll, and what it may
    connect to."""

    user_agent: str = "newswatch/0.1 (+https://example.org/newswatch)"
    obey_robots_txt: bool = True
    download_timeout: Duration = 20.0
    max_page_size: Size = 5 * 1024**2
    per_domain_concurrency: int = Field(2, ge=1, le=32)
    max_concurrent_polls: int = Field(4, ge=1, le=64)
    max_new_articles_per_poll: int = Field(100, ge=1)
    max_child_sitemaps: int = Field(5, ge=0)
    max_listing_entries: int = Field(1000, ge=1, le=1_000_000)
    max_article_age: Duration = 7 * 86400.0
    extraction_timeout: Annotated[Duration, Field(le=600)] = EXTRACTION_TIMEOUT
    store_html: bool = False
    allow_private_networks: bool = False


class ScheduleConfig(_Strict):
    """`interval` is every fixed source's default and, for `interval: auto` sources, the
    average the automatic intervals keep to (same number of requests); `max_backoff` caps how
    long a failing source waits between polls."""

    interval: Duration = 600.0
    min_interval: Duration = 120.0
    max_interval: Duration = 6 * 3600.0
    max_backoff: Duration = 6 * 3600.0
    jitter: Duration | Literal[0] = 15.0


class DeliveryConfig(_Strict):
    """How hard to try: backoff doubles from retry_delay; failed (and shown) after max_attempts
    or, when a send fails, once the message has waited max_age."""

    retry_delay: Duration = 30.0
    max_retry_delay: Duration = 3600.0
    max_attempts: int = Field(10, ge=1)
    max_age: Duration = 86400.0

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_delay, self.max_retry_delay, self.max_age)


class HealthConfig(_Strict):
    """Where operators hear about sources failing or going silent, daemon start/stop, and
    messages that failed for good."""

    notify: list[Name] = []
    source_silent_after: Duration = 86400.0
    failing_polls: int = Field(5, ge=1)

    def policy(self) -> HealthPolicy:
        return HealthPolicy(tuple(self.notify), self.source_silent_after, self.failing_polls)


class DedupConfig(_Strict):
    """When two articles are one story, and how often a story's watchers hear that it grew.

    `threshold`: estimated share of common text (character 5-gram shingles) from which two articles
    are the same story. `material_change`: share of an updated article's text that must differ
    from its previous version for `notify_updates` watchlists to hear of it. `update_interval`:
    at most one update notice per story, watchlist and channel in this time."""

    threshold: float = Field(0.5, gt=0, lt=1)
    material_change: float = Field(0.1, gt=0, le=1)
    update_interval: Duration = 6 * 3600.0


class EventsConfig(_Strict):
    """When independently written stories are one event (`crawler.events`).

    `window`: a new story is compared with the stories of its language published (or, undated,
    stored) within this time of it, and an event takes new stories this long after its first.
    `threshold`: the likelihood (0 to 1) from which two stories report the same happening;
    chosen for precision (bench/events.py): lower it and more reports are grouped, and more
    alerts on distinct happenings are lost in another event's."""

    window: Duration = 48 * 3600.0
    threshold: float = Field(0.7, gt=0, lt=1)


class StorageConfig(_Strict):
    """How long the database keeps what it no longer needs to avoid repeats (a daily job):
    article texts (with their FTS rows and near-duplicate signatures), stored HTML, and the
    superseded versions of updated articles. Pruned articles stay known by URL, story and
    content hash, with their alerts, so they are never fetched or alerted again."""

    keep_articles: Keep = 180 * 86400.0
    keep_html: Keep = 14 * 86400.0
    keep_versions: Keep = 30 * 86400.0


class ClusterConfig(_Strict):
    """The cluster mode's clock (read only with a postgresql:// database). `tick`: how often
    a worker looks for due sources. A worker beats every `heartbeat`; one silent for
    `stalled_after` is taken for dead and its jobs run elsewhere, so a source polled by a
    worker that dies waits at most its interval + `stalled_after` + `heartbeat` + `tick`
    (45 s with these defaults)."""

    tick: Annotated[Duration, Field(ge=1, le=60)] = 5.0
    heartbeat: Annotated[Duration, Field(ge=1)] = 10.0
    stalled_after: Duration = 30.0

    @model_validator(mode="after")
    def _beats_before_stalling(self) -> ClusterConfig:
        if self.stalled_after < 2 * self.heartbeat:
            raise ValueError(
                f"stalled_after ({self.stalled_after:g} s) must be at least twice heartbeat"
                f" ({self.heartbeat:g} s), or a live worker whose beat is late looks dead"
            )
        return self


class SourceConfig(_Strict):
    """One site to watch: where its listing is, what kind it is, how often to poll it. Knows the
    secrets in its own URL, so everything said about the source can be shown redacted."""

    name: Name
    url: WebUrl
    kind: Literal["feed", "sitemap", "page"] | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] | None = None
    interval: Literal["auto"] | Duration | None = None
    min_interval: Duration | None = None
    max_interval: Duration | None = None
    cron: Cron | None = None
    follow: list[str] = []
    verify_tls: bool = True
    _secrets: frozenset[str] = PrivateAttr(frozenset())

    @model_validator(mode="after")
    def _remember_secrets(self, info: ValidationInfo) -> SourceConfig:
        """Values taken from the environment (`${API_KEY}`) are secrets wherever they appear
        in the URL: `parse_config` passes them in the validation context."""
        environment = (info.context or {}).get(ENVIRONMENT_VALUES, ())
        found = {value for value in environment if value and value in self.url}
        self._secrets = frozenset(found | secrets_of(self.url))
        return self

    @property
    def display_url(self) -> str:
        """The URL for logs, the database and the terminal; fetches use `url`."""
        return redact(self.url, self._secrets)

    @property
    def secrets(self) -> frozenset[str]:
        return self._secrets

    def redact(self, text: str) -> str:
        """Any text about this source as it may be shown: a listing's URL after redirects, an
        error message quoting the URL."""
        return hide(text, self._secrets)

    @field_validator("follow")
    @classmethod
    def _regexes_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _one_schedule(self) -> SourceConfig:
        if self.interval is not None and self.cron is not None:
            raise ValueError("give either interval or cron, not both")
        bounds = self.min_interval is not None or self.max_interval is not None
        if bounds and self.interval != "auto":
            raise ValueError("min_interval and max_interval go with interval: auto")
        if self.min_interval and self.max_interval and self.min_interval > self.max_interval:
            raise ValueError("min_interval is longer than max_interval")
        return self


class WebConfig(_Strict):
    """`newswatch serve`: where it listens, the token every request needs when others can
    reach it, and the address readers use to reach it (the links in feeds)."""

    listen: Listen = ("127.0.0.1", 8080)
    token: str | None = Field(None, repr=False)
    base_url: WebUrl | None = None

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: str | None) -> str | None:
        """The token is the only lock on an open port: short enough to guess is no lock."""
        if token is not None and len(token) < 16:
            raise ValueError(
                "too short to resist guessing: use 16 characters or more, e.g. the output of"
                " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return token

    @model_validator(mode="after")
    def _token_off_loopback(self) -> WebConfig:
        """An address others can reach without a token would show the archive to anyone."""
        if self.token is None and not is_loopback(self.listen[0]):
            raise ValueError(
                f"listening on {self.listen[0]} needs a token: set web.token"
                " (e.g. ${NEWSWATCH_WEB_TOKEN}) or listen on 127.0.0.1"
            )
        return self

    @property
    def url(self) -> str:
        """`base_url`, or the address it listens on."""
        host, port = self.listen
        shown = f"[{host}]" if ":" in host else host
        return (self.base_url or f"http://{shown}:{port}").rstrip("/")


class Config(_Strict):
    """The whole config.yaml, validated: what the daemon, the CLI and the demo run on."""

    database: Path | str = Path("newswatch.db")
    crawl: CrawlConfig = CrawlConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    dedup: DedupConfig = DedupConfig()
    events: EventsConfig = EventsConfig()
    storage: StorageConfig = StorageConfig()
    sources: list[SourceConfig] = []
    concepts: dict[Name, ConceptSpec] = {}
    watchlists: list[WatchlistConfig] = []
    channels: dict[Name, ChannelConfig] = {}
    health: HealthConfig = HealthConfig()
    web: WebConfig = WebConfig()
    # `cluster:` in the YAML; `cluster` in Python says whether the cluster mode is on
    workers: ClusterConfig = Field(ClusterConfig(), alias="cluster")

    @field_validator("database", mode="before")
    @classmethod
    def _file_or_postgres(cls, value: object) -> object:
        """A `postgresql://` URL switches to the cluster mode; anything else names the SQLite
        file, as it always did."""
        if isinstance(value, str) and "://" in value:
            if not is_postgres_url(value):
                raise ValueError(
                    f"{value.split('://')[0]}:// is not a database newswatch knows: give a file"
                    " path (SQLite) or a postgresql:// URL (several workers, one database)"
                )
            return value
        return Path(value) if isinstance(value, str) else value

    @property
    def cluster(self) -> bool:
        """Whether workers share a PostgreSQL database rather than one daemon its file."""
        return isinstance(self.database, str)

    @property
    def database_name(self) -> str:
        """The database as logs and messages may show it: a URL without its password."""
        return redact(str(self.database), secrets_of(str(self.database)))

    @property
    def secrets(self) -> frozenset[str]:
        """Every value a log line must not show: source URLs' secrets (see
        `SourceConfig.redact`), the web token (a feed reader sends it in the URL) and the
        database URL's password."""
        token = {self.web.token} if self.web.token else set()
        database = secrets_of(str(self.database)) if self.cluster else set()
        return frozenset(token | database).union(*(source.secrets for source in self.sources))

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)

    def source_interval(self, source: SourceConfig) -> float:
        """The fixed interval, or for `interval: auto` the one it starts from."""
        if source.interval is None or source.interval == "auto":
            return self.schedule.interval
        return source.interval

    def interval_bounds(self, source: SourceConfig) -> tuple[float, float]:
        low = source.min_interval or self.schedule.min_interval
        return low, max(low, source.max_interval or self.schedule.max_interval)
