"""Request ids, access logs and HTTP metrics (the first and last steps of the API's middleware),
and the ``/metrics`` page."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import Token

from aiohttp import web

from command_api.context import REQUEST_ID
from infra import metrics, treemetrics
from infra.jsonlog import request_id_var

log = logging.getLogger("smq.access")

REQUEST_ID_HEADER = "X-Request-ID"
CORRELATION_HEADER = "X-Correlation-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
UNMATCHED = "unmatched"  # the route label of a path no route serves (bounded label values)


def incoming_id(request: web.Request) -> str | None:
    """The client's request id (``X-Request-ID``, else ``X-Correlation-ID``) when it is sane."""
    for name in (REQUEST_ID_HEADER, CORRELATION_HEADER):
        value = request.headers.get(name, "").strip()
        if value and _SANE_ID.fullmatch(value):
            return value
    return None


def route_of(request: web.Request) -> str:
    """The pattern of the route that serves the request (``/things/{id}``), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def begin(request: web.Request) -> tuple[str, Token[str | None], float]:
    """Give the request its id (also the events' correlation id) before anything else runs:
    the id, the log context's token, the time it began."""
    rid = incoming_id(request) or str(uuid.uuid4())
    request[REQUEST_ID] = rid
    return rid, request_id_var.set(rid), time.perf_counter()


def end(request: web.Request, token: Token[str | None], started: float, status: int) -> None:
    """Count and time the request by route and status, and log one access line (no secrets)."""
    seconds = time.perf_counter() - started
    route = route_of(request)
    metrics.http_request(request.method, route, status, seconds)
    if log.isEnabledFor(logging.INFO):
        log.info("request", extra={"method": request.method, "route": route, "status": status,
                                   "duration_ms": round(seconds * 1000, 3)})
    request_id_var.reset(token)


async def metrics_page(request: web.Request) -> web.Response:
    """The process's metrics in the Prometheus text format (with its parent's, in `smq serve`)."""
    return web.Response(body=await treemetrics.page(), headers={"Content-Type": metrics.CONTENT_TYPE})
