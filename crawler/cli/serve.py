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
    serve.add_argument("--port", type=port_number, help="port (default: web.listen's)")
    serve.set_defaults(handler=lambda args: cmd_serve(args, load))


def port_number(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{value!r}: give a port from 1 to 65535")
    return port


def cmd_serve(args: argparse.Namespace, load: Load) -> int:
    import uvicorn

    from crawler.config import is_loopback
    from crawler.web.app import create_app

    config = listening(load(args.config), args.host, args.port)
    host, port = config.web.listen
    if config.web.token is None and not is_loopback(host):
        return usage_error(
            f"serve: listening on {host} would show the archive to anyone who can reach it:"
            " set web.token in the config, or listen on 127.0.0.1"
        )
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
    """The config with the command line's address in place of `web.listen`'s."""
    current_host, current_port = config.web.listen
    web = config.web.model_copy(update={"listen": (host or current_host, port or current_port)})
    return config.model_copy(update={"web": web})


def bring_up_to_date(config: Config) -> None:
    """A database an older newswatch left is migrated once here (a write, as any command that
    reads does), so that every request can read it read-only; a missing one is not an error:
    the pages say so until the daemon creates it."""
    from crawler.store import open_for_reading

    if config.database.is_file():
        with closing(open_for_reading(config.database)):
            pass
