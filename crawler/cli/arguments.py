"""What the command modules share to declare their arguments: the signatures of the hooks
`main` hands them, and argument types. A bad value is refused while the command line is parsed,
so it is a usage error (exit 2, argparse's message on stderr) before anything is opened.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

# Loads and validates the config at a path (an invalid one exits 2 with every error listed).
Load = Callable[[str], Any]
# Adds a subcommand with its name and help, and the `--config` option every command shares.
AddCommand = Callable[[str, str], argparse.ArgumentParser]


def age_cutoff(value: str) -> str:
    """`--since AGE` (7d, 12h) as the oldest stored instant to read. An age reaching back past
    year 1 (`99999999d`) is refused here rather than failing deep in date arithmetic."""
    from crawler.backtest import cutoff
    from crawler.config import parse_duration

    try:
        return cutoff(parse_duration(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{value!r} reaches back before year 1") from None


def positive_count(value: str) -> int:
    """A count such as `--limit`: SQLite reads a negative LIMIT as no limit at all."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give 1 or more")
    return count
