"""The aiohttp application factory."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import SystemRoute

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
    wire,
)
from command_api.context import CONTAINER, HEAD, Head, stale_headers
from command_api.errors import answer_of
from service.container import Container

MAX_BODY = 1024 * 1024

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=63072000; includeSubdomains",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "*",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Expose-Headers": "Location, X-Smq-Position, X-Request-ID, X-Smq-Stale, X-Smq-After, Warning",
}
# A preflight's answer: "*" alone does not cover Authorization, which is named explicitly.
PREFLIGHT_HEADERS = {"Access-Control-Allow-Headers": "*, Authorization", "Access-Control-Max-Age": "86400"}


@web.middleware
async def api_middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every request's steps around its route, in this order, in one coroutine (a middleware
    each cost a visible share of a small command's time): its id, metrics and access line
    (``observability``); the security and CORS headers, a preflight answered at once; a path
    that only its slashes keep from a route redirected; then, with errors turned into answers
    (``errors.answer_of``), NUL refused (``wire``) and the caller's token checked
    (``revocation``)."""
    rid, token, started = observability.begin(request)
    status = 500
    try:
        if request.method == "OPTIONS":
            resp: web.StreamResponse = web.Response(status=204)
        elif isinstance(request.match_info.route, SystemRoute) and (moved := await _slashes(request)):
            resp = moved
        else:
            try:
                wire.refuse_nul(request)
                check = revocation.caller_check(request)
                if check is not None:
                    await check
                resp = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                resp = answer_of(request, exc)
            except Exception as exc:  # noqa: BLE001 - answer_of logs what it does not know
                resp = answer_of(request, exc)
        resp.headers.update(SECURITY_HEADERS)
        resp.headers.update(stale_headers(request))
        if request.method == "OPTIONS":
            resp.headers.update(PREFLIGHT_HEADERS)
        status = resp.status
        if not resp.prepared:
            resp.headers[observability.REQUEST_ID_HEADER] = rid
        return resp
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[observability.REQUEST_ID_HEADER] = rid
        raise
    finally:
        observability.end(request, token, started, status)


async def _resolves(request: web.Request, path: str) -> bool:
    match = await request.app.router.resolve(request.clone(rel_url=path))
    return match.http_exception is None


async def _slashes(request: web.Request) -> web.Response | None:
    """For a path that matches no route: when only its trailing or doubled slashes (a
    client's base URL ending in "/") keep it from one, a redirect (308, which keeps the method
    and body) to the route it means; nothing else is rewritten. (aiohttp's
    normalize_path_middleware with merged slashes also drops any last character: /thingsX
    went to /things.)"""
    raw = request.rel_url.raw_path
    fixed = re.sub("//+", "/", raw)
    if len(fixed) > 1:
        fixed = fixed.rstrip("/") or "/"
    if fixed != raw and await _resolves(request, fixed):
        query = request.rel_url.raw_query_string
        location = fixed + ("?" + query if query else "")
        return web.Response(status=308, headers={"Location": location})
    return None


def create_app(c: Container) -> web.Application:
    app = web.Application(middlewares=[api_middleware], client_max_size=MAX_BODY)
    app[CONTAINER] = c
    app[HEAD] = Head()
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
