"""Reading config.yaml: environment values interpolated, the models validated, the names that
refer to each other cross-checked, and every problem reported at once with its YAML path.

Done once at start, so a typo fails there with its YAML path, not mid-poll.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from alerts.channels import ChannelConfig
from alerts.rules import RuleError, parse_rule
from crawler.config.models import ENVIRONMENT_VALUES, Config
from crawler.config.values import cron_trigger

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
    database = config.database
    if isinstance(database, Path) and not database.is_absolute():
        database = base_dir / database
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
