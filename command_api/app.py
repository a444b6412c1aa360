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
    listing,
    messages,
    observability,
    openapi,
    policies,
    provision,
    ratelimit,
    revocation,
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
    "Access-Control-Expose-Headers": "Location, X-Smq-Position, X-Request-ID",
}
# A preflight's answer: "*" alone does not cover Authorization, which is named explicitly.
PREFLIGHT_HEADERS = {"Access-Control-Allow-Headers": "*, Authorization", "Access-Control-Max-Age": "86400"}


@web.middleware
async def headers_middleware(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if request.method == "OPTIONS":
        resp: web.StreamResponse = web.Response(status=204)
    else:
        resp = await handler(request)
    resp.headers.update(SECURITY_HEADERS)
    if request.method == "OPTIONS":
        resp.headers.update(PREFLIGHT_HEADERS)
    return resp


def create_app(c: Container) -> web.Application:
    # A path with a trailing or doubled slash (a client's base URL ending in "/") is
    # redirected (308, which keeps the method and body) to the route it means.
    slashes = web.normalize_path_middleware(append_slash=False, remove_slash=True, merge_slashes=True)
    app = web.Application(middlewares=[observability.observability_middleware, headers_middleware,
                                       slashes, errors_middleware,
                                       revocation.revocation_middleware], client_max_size=MAX_BODY)
    app[CONTAINER] = c
    app[revocation.ACTIVE] = revocation.ActiveUsers()
    app[listing.TOTALS] = listing.Totals()
    app.on_startup.extend([openapi.prepare, ratelimit.prepare])
    app.router.add_get("/metrics", observability.metrics_page)
    app.router.add_get("/openapi.json", openapi.openapi_json)
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
