"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from command_api import (
    bootstrap,
    certs,
    channels,
    connections,
    events,
    health,
    messages,
    policies,
    provision,
    things,
    users,
)
from command_api.context import CONTAINER
from command_api.errors import errors_middleware
from infra.container import Container

MAX_BODY = 1024 * 1024

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubdomains",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "*",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Expose-Headers": "Location, X-Smq-Position",
}


@web.middleware
async def headers_middleware(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if request.method == "OPTIONS":
        resp: web.StreamResponse = web.Response(status=204)
    else:
        resp = await handler(request)
    resp.headers.update(SECURITY_HEADERS)
    return resp


def create_app(c: Container) -> web.Application:
    app = web.Application(middlewares=[headers_middleware, errors_middleware], client_max_size=MAX_BODY)
    app[CONTAINER] = c
    app.add_routes(health.routes)
    app.add_routes(users.routes)
    app.add_routes(things.routes)
    app.add_routes(channels.routes)
    app.add_routes(connections.routes)
    app.add_routes(policies.routes)
    app.add_routes(messages.routes)
    app.add_routes(events.routes)
    app.add_routes(bootstrap.routes)
    app.add_routes(certs.routes)
    app.add_routes(provision.routes)
    return app
