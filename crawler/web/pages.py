"""The pages analysts and operators read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crawler import heartbeat, store
from crawler.web.app import read, render


async def overview(request: Request) -> Response:
    row = await read(request, store.latest_heartbeat)
    return render(request, "overview.html", heartbeat_age=heartbeat.age(row))


ROUTES = [Route("/", overview)]
