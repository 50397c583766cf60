"""The `newswatch` command: one module per command group; `main` parses and dispatches."""

from crawler.cli.main import main

__all__ = ["main"]
