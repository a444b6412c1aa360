"""The only place where errors become HTTP statuses."""

from __future__ import annotations

import logging
import math

from aiohttp import web

from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("smq.api")


class BadRequest(Invalid):
    """A body or query that cannot be read."""


class UnsupportedMedia(DomainError):
    """A body that is not JSON."""


class TooManyFailures(DomainError):
    """Refused before any secret is checked: this address failed too often (429, Retry-After)."""

    def __init__(self, wait: float) -> None:
        super().__init__("too many failed attempts from this address, try again later")
        self.wait = wait


STATUS: dict[type[DomainError], int] = {
    UnsupportedMedia: 415,
    TooManyFailures: 429,
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
}


def status_of_kind(kind: str) -> int:
    """The status of a domain error known by its class name (as the provisioning saga
    records it); 500 for a kind that is no failure of the request."""
    return next((status for cls, status in STATUS.items() if cls.__name__ == kind), 500)


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def answer_of(request: web.Request, exc: Exception) -> web.Response:
    """The answer of an exception a route raised, called where it is caught (an HTTP
    exception below 400, a redirect, is not one: it goes on as it is): a domain error's
    status and message, an HTTP error's status in the same shape, and for anything else a
    logged 500 that reveals nothing."""
    if isinstance(exc, DomainError):
        resp = error_response(status_of(exc), exc.message)
        if isinstance(exc, TooManyFailures):
            resp.headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
        return resp
    if isinstance(exc, web.HTTPException):
        message = {404: "not found", 405: "method not allowed", 413: "request body too large"}.get(
            exc.status, exc.reason.lower())
        resp = error_response(exc.status, message)
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "internal server error")
