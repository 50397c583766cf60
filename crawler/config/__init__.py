"""config.yaml, loaded and validated once: its section models (`models`), the values users write
in it (`values`: durations, sizes, crontab lines) and the loading that names every problem by
its YAML path (`loading`)."""

from crawler.config.loading import ConfigError, load_config, parse_config
from crawler.config.models import (
    EXTRACTION_TIMEOUT,
    ClusterConfig,
    Config,
    CrawlConfig,
    DedupConfig,
    DeliveryConfig,
    EventsConfig,
    HealthConfig,
    ScheduleConfig,
    SourceConfig,
    StorageConfig,
    WebConfig,
)
from crawler.config.values import cron_trigger, is_loopback, parse_duration, parse_listen

__all__ = [
    "EXTRACTION_TIMEOUT",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "CrawlConfig",
    "DedupConfig",
    "DeliveryConfig",
    "EventsConfig",
    "HealthConfig",
    "ScheduleConfig",
    "SourceConfig",
    "StorageConfig",
    "WebConfig",
    "cron_trigger",
    "is_loopback",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
]
