"""config.yaml, loaded and validated once: its section models (`models`), the values users write
in it (`values`: durations, sizes, crontab lines) and the loading that names every problem by
its YAML path (`loading`)."""

from crawler.config.loading import ConfigError, load_config, parse_config
from crawler.config.models import (
    EXTRACTION_TIMEOUT,
    Config,
    CrawlConfig,
    DedupConfig,
    DeliveryConfig,
    HealthConfig,
    ScheduleConfig,
    SourceConfig,
    StorageConfig,
)
from crawler.config.values import cron_trigger, parse_duration

__all__ = [
    "EXTRACTION_TIMEOUT",
    "Config",
    "ConfigError",
    "CrawlConfig",
    "DedupConfig",
    "DeliveryConfig",
    "HealthConfig",
    "ScheduleConfig",
    "SourceConfig",
    "StorageConfig",
    "cron_trigger",
    "load_config",
    "parse_config",
    "parse_duration",
]
