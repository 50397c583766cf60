"""The exit codes every `newswatch` command keeps, and the two ways a command reports a problem.

Scripts and cron jobs tell a mistake in the command line from a failure at run time by the code
alone: 2 means "fix the command or the config, running it again will not help", 1 means "it
tried and failed" (a site, a channel, the database). Either way the message goes to stderr, so
stdout holds only the answer (a table, JSON lines, a source entry to paste).
"""

from __future__ import annotations

import sys

from crawler.cli.terminal import printable

OK = 0
FAILURE = 1
USAGE = 2  # argparse's own code, kept for every usage error and for an invalid config


def usage_error(message: str) -> int:
    """Worded as argparse words its own errors, so a bad value reads like a bad option; the
    message may echo what the user typed, hence `printable`."""
    print(printable(f"newswatch: error: {message}"), file=sys.stderr)
    return USAGE


def failure(message: str) -> int:
    """One line on stderr saying what failed; the caller decides whether to go on."""
    print(printable(f"newswatch: {message}"), file=sys.stderr)
    return FAILURE
