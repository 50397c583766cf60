"""The values users write in config.yaml, as they write them: durations ("10m"), sizes ("5MB"),
crontab lines and web addresses, each parsed with a message that says how to write it."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from apscheduler.triggers.cron import CronTrigger
from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_LISTEN = re.compile(r"^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$")
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


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`: 127.0.0.0/8 or ::1, written as an address
    (a name may resolve elsewhere tomorrow)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(value: Any) -> tuple[str, int]:
    """`host:port` (`127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:80`) as users write it."""
    found = _LISTEN.match(str(value)) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"{value!r} is not an address: write host:port, e.g. 127.0.0.1:8080")
    host, port = found.group(1) or found.group(2), int(found.group(3))
    if not 0 < port < 65536:
        raise ValueError(f"{value!r}: the port must be between 1 and 65535")
    return host, port


def _check_cron(value: str | None) -> str | None:
    if value is not None:
        cron_trigger(value)
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Cron = Annotated[str, BeforeValidator(_check_cron)]
WebUrl = Annotated[str, BeforeValidator(_web_url)]
Listen = Annotated[tuple[str, int], BeforeValidator(parse_listen)]


def _keep(value: Any) -> float | None:
    """A retention period: a duration, or 0 / "forever" to keep everything (None)."""
    if value in (0, "0", "forever"):
        return None
    if value is None:
        raise ValueError("write a duration such as 180d, or 0 / forever to keep everything")
    return parse_duration(value)


Keep = Annotated[float | None, BeforeValidator(_keep)]
