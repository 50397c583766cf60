"""Load and validate config.yaml once, so a typo fails at start with its YAML path, not mid-poll."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerts.channels import ChannelConfig
from alerts.concepts import ConceptSpec
from alerts.delivery import RetryPolicy
from alerts.health import HealthPolicy
from alerts.rules import RuleError, parse_rule
from alerts.watchlists import Name, WatchlistConfig
from crawler.urls import hide, redact, secrets_of

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENVIRONMENT_VALUES = "environment_values"
_CRON_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def parse_duration(value: Any) -> float:
    """Accept "45s", "10m", "2h", "1d" or plain seconds, as users write them in YAML."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        found = _DURATION.match(str(value))
        if not found:
            raise ValueError(f"{value!r} is not a duration: write e.g. 45s, 10m, 2h, 1d or seconds")
        seconds = float(found.group(1)) * _DURATION_UNITS[found.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    return seconds


def parse_size(value: Any) -> int:
    """Accept "5MB", "512KB" or plain bytes; units are binary (1 MB = 1,048,576 bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    found = _SIZE.match(str(value))
    if not found:
        raise ValueError(f"{value!r} is not a size: write e.g. 5MB, 512KB or bytes")
    unit = (found.group(2) or "b").lower().replace("ib", "b")
    return int(float(found.group(1)) * _SIZE_UNITS[unit])


def cron_trigger(expr: str, jitter: float | None = None) -> CronTrigger:
    """Build a trigger from a standard crontab line.

    APScheduler 3 numbers weekdays from Monday=0, crontab from Sunday=0: numeric weekdays are
    translated to names so "1-5" means Monday to Friday, as every crontab user expects.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r}: a cron schedule has 5 fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    weekday = re.sub(r"\d+", lambda m: _CRON_WEEKDAYS[int(m.group()) % 8], weekday)
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=weekday,
        timezone="UTC",
        jitter=int(jitter) if jitter else None,
    )


def _web_url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not a web address: write it as http://… or https://…")
    return value


def _check_cron(value: str | None) -> str | None:
    if value is not None:
        cron_trigger(value)
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Cron = Annotated[str, BeforeValidator(_check_cron)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A page's extraction takes 20–40 ms; one still running after this is killed (feed entry used).
EXTRACTION_TIMEOUT = 20.0


class CrawlConfig(_Strict):
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


def _keep(value: Any) -> float | None:
    """A retention period: a duration, or 0 / "forever" to keep everything (None)."""
    if value in (0, "0", "forever"):
        return None
    if value is None:
        raise ValueError("write a duration such as 180d, or 0 / forever to keep everything")
    return parse_duration(value)


Keep = Annotated[float | None, BeforeValidator(_keep)]


class StorageConfig(_Strict):
    """How long the database keeps what it no longer needs to avoid repeats (a daily job):
    article texts (with their FTS rows and near-duplicate signatures), stored HTML, and the
    superseded versions of updated articles. Pruned articles stay known by URL, story and
    content hash, with their alerts, so they are never fetched or alerted again."""

    keep_articles: Keep = 180 * 86400.0
    keep_html: Keep = 14 * 86400.0
    keep_versions: Keep = 30 * 86400.0


class SourceConfig(_Strict):
    name: Name
    url: Annotated[str, BeforeValidator(_web_url)]
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


class Config(_Strict):
    database: Path = Path("newswatch.db")
    crawl: CrawlConfig = CrawlConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    dedup: DedupConfig = DedupConfig()
    storage: StorageConfig = StorageConfig()
    sources: list[SourceConfig] = []
    concepts: dict[Name, ConceptSpec] = {}
    watchlists: list[WatchlistConfig] = []
    channels: dict[Name, ChannelConfig] = {}
    health: HealthConfig = HealthConfig()

    @property
    def secrets(self) -> frozenset[str]:
        """Every value a source URL must not show (see `SourceConfig.redact`)."""
        return frozenset().union(*(source.secrets for source in self.sources))

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


class ConfigError(Exception):
    """Every problem found in a config file, each as "path: message", so all are fixed in one go."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(f"{origin}: " + "; ".join(problems))

    def report(self) -> str:
        lines = [f"{self.origin}: {len(self.problems)} error(s)"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def yaml_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location as the YAML path a user can find: sources[0].kind."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _interpolate(
    value: Any, path: tuple[int | str, ...], problems: list[str], used: set[str]
) -> Any:
    """`${VAR}` replaced by the environment's value; each value used is added to `used`."""
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), problems, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), problems, used) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in os.environ:
            problems.append(
                f"{yaml_path(path)}: environment variable {name} is not set "
                f"(export {name}=… before starting newswatch)"
            )
            return ""
        used.add(os.environ[name])
        return os.environ[name]

    return _ENV.sub(substitute, value)


def _describe(error: Any, raw: Any) -> str:
    path = yaml_path(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key{_suggestion(error['loc'], raw)}"
    if error["type"] == "missing":
        return f"{path}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        tag, expected = error["input"].get("type"), error["ctx"]["expected_tags"]
        message = f"unknown type {tag!r}; use one of {expected}"
    return f"{path}: {message}"


def _suggestion(loc: tuple[int | str, ...], raw: Any) -> str:
    """Name the key the user probably meant: a typo must be easy to fix, not just rejected."""
    known = _known_keys(loc[:-1], raw)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_keys(parent: tuple[int | str, ...], raw: Any) -> list[str]:
    model: Any = Config
    for part in parent:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(part)
        model = _model_of(field.annotation) if field else None
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _cross_check(config: Config) -> list[str]:
    """What one field cannot know alone: names that must refer to each other."""
    problems: list[str] = []
    problems += _duplicates("sources", [s.name for s in config.sources])
    problems += _duplicates("watchlists", [w.name for w in config.watchlists])
    source_names = {s.name for s in config.sources}
    for i, watchlist in enumerate(config.watchlists):
        where = f"watchlists[{i}]"
        problems += _rule_problems(i, watchlist.name, watchlist.rule, config.concepts.keys())
        for j, channel in enumerate(watchlist.notify):
            if channel not in config.channels:
                problems.append(
                    f"{where}.notify[{j}]: unknown channel {channel!r}"
                    f" (defined under channels: {sorted(config.channels) or 'none'})"
                )
        for j, source in enumerate(watchlist.sources or []):
            if source not in source_names:
                problems.append(f"{where}.sources[{j}]: unknown source {source!r}")
    problems += _check_channels(config)
    return problems


def _rule_problems(i: int, name: Any, rule: str, concepts: Collection[str]) -> list[str]:
    try:
        parse_rule(rule, concepts)
    except RuleError as exc:
        return [f"watchlists[{i}].rule: watchlist {name!r}: {exc}"]
    return []


def _raw_rule_problems(raw: dict[str, Any]) -> list[str]:
    """Rules are checked even when another part of the file is invalid: every error in one go."""
    concepts = raw.get("concepts") if isinstance(raw.get("concepts"), dict) else {}
    watchlists = raw.get("watchlists") if isinstance(raw.get("watchlists"), list) else []
    problems: list[str] = []
    for i, watchlist in enumerate(watchlists):
        if isinstance(watchlist, dict) and isinstance(watchlist.get("rule"), str):
            problems += _rule_problems(i, watchlist.get("name"), watchlist["rule"], concepts)
    return problems


def _check_channels(config: Config) -> list[str]:
    """Digest schedules parse as crontab lines; health notices go to channels that exist."""
    problems: list[str] = []
    for name, channel in config.channels.items():
        if channel.digest is not None:
            try:
                cron_trigger(channel.digest)
            except ValueError as exc:
                problems.append(f"channels.{name}.digest: {exc}")
    for j, channel_name in enumerate(config.health.notify):
        if channel_name not in config.channels:
            problems.append(f"health.notify[{j}]: unknown channel {channel_name!r}")
    return problems


def _template_dirs(config: Config) -> list[str]:
    return [
        f"channels.{name}.template_dir: {channel.template_dir!r} is not a directory"
        for name, channel in config.channels.items()
        if getattr(channel, "template_dir", None) and not Path(channel.template_dir).is_dir()
    ]


def _duplicates(section: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for i, name in enumerate(names):
        if name in seen:
            problems.append(f"{section}[{i}].name: {name!r} is used twice; names must be unique")
        seen.add(name)
    return problems


def parse_config(text: str, origin: str, base_dir: Path) -> Config:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(origin, [f"not valid YAML: {exc}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(origin, ["(top level): expected a mapping of sections"])
    problems: list[str] = []
    used: set[str] = set()
    raw = _interpolate(raw, (), problems, used)
    try:
        config = Config.model_validate(raw, context={ENVIRONMENT_VALUES: used})
    except ValidationError as exc:
        problems += [_describe(e, raw) for e in exc.errors()] + _raw_rule_problems(raw)
        raise ConfigError(origin, problems) from None
    problems += _cross_check(config)
    if problems:
        raise ConfigError(origin, problems)
    config = _relative_to(config, base_dir)
    problems = _template_dirs(config)
    if problems:
        raise ConfigError(origin, problems)
    return config


def _relative_to(config: Config, base_dir: Path) -> Config:
    """Paths in the file are relative to the file, not to wherever the daemon was started."""
    channels = {
        name: channel.model_copy(update=_local_paths(channel, base_dir))
        for name, channel in config.channels.items()
    }
    database = config.database if config.database.is_absolute() else base_dir / config.database
    return config.model_copy(update={"database": database, "channels": channels})


def _local_paths(channel: ChannelConfig, base_dir: Path) -> dict[str, str]:
    values = {key: getattr(channel, key, None) for key in ("path", "template_dir")}
    return {
        key: str(base_dir / value)
        for key, value in values.items()
        if value is not None and not Path(value).is_absolute()
    }


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    return parse_config(text, str(path), path.resolve().parent)
