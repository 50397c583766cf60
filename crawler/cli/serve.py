"""`newswatch serve`: the read-only web app (`crawler.web`) in uvicorn, beside the daemon."""

from __future__ import annotations

import argparse
import logging
from contextlib import closing
from typing import TYPE_CHECKING

from crawler.cli.arguments import AddCommand, Load
from crawler.cli.exits import OK, usage_error
from crawler.cli.logs import Shortened

if TYPE_CHECKING:
    from crawler.config import Config

# an access-log line quotes the request line a client chose
ACCESS_LINE_CHARS = 300


def add_commands(command: AddCommand, load: Load) -> None:
    serve = command("serve", "the read-only web app: pages, search, feeds, metrics, /healthz")
    serve.add_argument("--host", help="address to listen on (default: web.listen's)")
    serve.add_argument("--port", type=int, help="port (default: web.listen's)")
    serve.set_defaults(handler=lambda args: cmd_serve(args, load))


def cmd_serve(args: argparse.Namespace, load: Load) -> int:
    import uvicorn
    from pydantic import ValidationError

    from crawler.cli.db import file_only
    from crawler.web.app import create_app

    loaded = load(args.config)
    refused = file_only(
        loaded, "serve", "run it with a SQLite config, or read the database with psql"
    )
    if refused is not None:
        return refused
    try:
        config = listening(loaded, args.host, args.port)
    except ValidationError as exc:
        reasons = (error["msg"].removeprefix("Value error, ") for error in exc.errors())
        return usage_error("serve: " + "; ".join(reasons))
    host, port = config.web.listen
    bring_up_to_date(config)
    logging.getLogger("uvicorn.access").addFilter(Shortened(ACCESS_LINE_CHARS))
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )
    return OK


def listening(config: Config, host: str | None, port: int | None) -> Config:
    """The config with the command line's address in place of `web.listen`'s, checked by the
    config's own rules (the port's range, a token off loopback) as if the file had said it."""
    from crawler.config import WebConfig

    current_host, current_port = config.web.listen
    host, port = host or current_host, port or current_port
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    web = WebConfig.model_validate({**config.web.model_dump(), "listen": address})
    return config.model_copy(update={"web": web})


def bring_up_to_date(config: Config) -> None:
    """A database an older newswatch left is migrated once here (a write, as any command that
    reads does), so that every request can read it read-only; a missing one is not an error:
    the pages say so until the daemon creates it."""
    from crawler.store import open_for_reading

    if config.database.is_file():
        with closing(open_for_reading(config.database)):
            pass
