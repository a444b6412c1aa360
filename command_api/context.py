"""Per-request helpers: the container, the caller, audit metadata, read-your-writes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from aiohttp import web

from command_api.errors import BadRequest
from domain.app import Done, Principal
from domain.base import Meta
from domain.errors import Unauthenticated
from domain.users import principal_of
from infra.tokens import Claims
from service.container import Container

CONTAINER = web.AppKey("container", Container)
POSITION_HEADER = "X-Smq-Position"
AFTER_HEADER = "X-Smq-After"
STALE_HEADER = "X-Smq-Stale"
# RFC 9111 deprecates Warning, but 110 "Response is Stale" is what generic HTTP tooling knows.
STALE_WARNING = '110 - "Response is Stale"'
STALE = "smq.stale"
PRINCIPAL = "smq.principal"
REQUEST_ID = "smq.request_id"
R = TypeVar("R")


def container(request: web.Request) -> Container:
    return request.app[CONTAINER]


def authorization(request: web.Request) -> str:
    """The ``Authorization`` header, or "" when it is not text (aiohttp hands invalid UTF-8
    on as lone surrogates, which no secret holds and no hash can encode)."""
    value = request.headers.get("Authorization", "")
    try:
        value.encode()
    except UnicodeEncodeError:
        return ""
    return value


def credential(request: web.Request, scheme: str) -> str | None:
    """The credential of an ``Authorization: <scheme> <credential>`` header (the scheme in
    any case), or None."""
    given, _, value = authorization(request).partition(" ")
    return value.strip() if given.lower() == scheme and value.strip() else None


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    return credential(request, "bearer")


def bearer(request: web.Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("missing or invalid bearer token")
    return token


def token_principal(c: Container, token: str) -> tuple[Principal, Claims]:
    """The caller an access token names, with its claims (``Unauthenticated`` for any fault):
    the one place a bearer token becomes a ``Principal``."""
    claims = c.tokens.check(token, "access")
    return principal_of(claims.user_id, claims.role), claims


def principal(request: web.Request) -> Principal:
    """The caller of a protected route, from its access token (401 for any fault)."""
    cached = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    who, _ = token_principal(container(request), bearer(request))
    request[PRINCIPAL] = who
    return who


def request_id(request: web.Request) -> str:
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = str(uuid.uuid4())
        request[REQUEST_ID] = rid
    return rid


def meta(request: web.Request, actor: Principal | None = None) -> Meta:
    """Audit metadata for the events of this request."""
    rid = request_id(request)
    correlation = request.headers.get("X-Correlation-ID", "")[:128] or rid
    who = actor if actor is not None else request.get(PRINCIPAL)
    return Meta(actor=str(who.user_id) if who else None, correlation_id=correlation, causation_id=rid)


async def committed(request: web.Request, done: Done, also: Iterable[str | None] = ()) -> dict[str, str]:
    """After a command: remember its position for the caller; headers for the answer."""
    who = request.get(PRINCIPAL)
    users = [str(who.user_id) if who else None, *also]
    await container(request).freshness.record(users, done.position)
    if done.position:  # the store holds it: an X-Smq-After of it needs no look at the head
        head = request.app[HEAD]
        head.known = max(head.known, done.position)
    return {POSITION_HEADER: str(done.position)} if done.position else {}


@dataclass
class Ran(Generic[R]):
    """A command's outcome for the answer: its result, its position, the answer's headers."""

    result: R
    position: int | None
    headers: dict[str, str]


def _no_one(result: Any) -> Iterable[object]:
    return ()


async def run(request: web.Request, who: Principal | None, use_case: Callable[..., Done], *args: Any,
              touches: Callable[[Any], Iterable[object]] = _no_one, **kwargs: Any) -> Ran[Any]:
    """Run one of the application's commands for a route, on the store's threads: the caller
    (the principal of the request; None on an open route) comes first, the request's audit metadata
    last; then read-your-writes records its position for the caller and for what
    ``touches(result)`` names, and the answer gets the position header.

    ``use_case`` is the application's method unbound (``Smq.execute``, ``Smq.connect``): the
    route needs no container to name it."""
    c = container(request)
    done = await c.store.command(partial(use_case, c.store.app), who, *args, meta=meta(request, who),
                                 **kwargs)
    also = [None if x is None else str(x) for x in touches(done.result)]
    return Ran(done.result, done.position, await committed(request, done, also=also))


class Head:
    """The highest position the store was seen to hold: an ``X-Smq-After`` at or below it
    costs nothing; one above it costs one query of the store's head."""

    def __init__(self) -> None:
        self.known = 0


HEAD = web.AppKey("store_head", Head)


async def _after(request: web.Request) -> int:
    """``X-Smq-After``: a position the store holds (a non-negative integer), else 400 (a
    position beyond the head would only hold the query for the whole bound)."""
    raw = request.headers.get(AFTER_HEADER, "").strip()
    if not raw:
        return 0
    if not re.fullmatch(r"[0-9]{1,19}", raw):
        raise BadRequest(f"{AFTER_HEADER} must be a position (a non-negative integer)")
    value = int(raw)
    head = request.app[HEAD]
    if value > head.known:
        head.known = max(head.known, await container(request).store.max_position())
        if value > head.known:
            raise BadRequest(f"{AFTER_HEADER} is beyond the last event ({head.known})")
    return value


async def fresh(request: web.Request, *views: str, user_id: str | None = None) -> None:
    """Before a query: wait (bounded) until the views hold the caller's last write. When the
    bound runs out the query still answers, from the views as they are, and says so: the
    answer gets ``stale_headers`` (and ``smq_stale_reads_total`` counts it)."""
    explicit = await _after(request)
    who = request.get(PRINCIPAL)
    uid = user_id or (str(who.user_id) if who else None)
    c = container(request)
    target = await c.freshness.target(uid, explicit)
    if not await c.freshness.wait(views, target):
        behind = c.freshness.behind(views, target)
        if behind:  # (an earlier ``fresh`` of the same request may have named others)
            earlier, named = request.get(STALE, (0, {}))
            request[STALE] = (max(earlier, target), {**named, **behind})


def stale_headers(request: web.Request) -> dict[str, str]:
    """The headers of an answer read from views that had not reached the position it waited
    for: ``X-Smq-Stale`` names each such view with the position it held (the answer shows the
    store up to there), ``X-Smq-After`` the position waited for, and ``Warning: 110``."""
    stale = request.get(STALE)
    if stale is None:
        return {}
    target, behind = stale
    return {STALE_HEADER: ", ".join(f"{v}={p}" for v, p in sorted(behind.items())),
            AFTER_HEADER: str(target), "Warning": STALE_WARNING}
