"""An access token stops working at once when its user is disabled or gone, or when its
user's secret changed or the user was disabled after it was issued (its ``epoch`` claim is
older than the user's; a JWT alone would stay valid until it expires)."""

from __future__ import annotations

import time
from collections.abc import Coroutine
from typing import Any
from uuid import UUID

from aiohttp import web

from command_api.context import PRINCIPAL, bearer_token, container, token_principal
from domain.app import Principal
from domain.errors import Unauthenticated
from infra.tokens import Claims
from service.container import Container


class ActiveUsers:
    """Users this process found active lately, with their token epoch: a check is trusted for
    ``ttl`` seconds, so a burst of requests costs one store read, not one each. A user
    disabled (or whose secret changed) through this process is forgotten at once; through
    another process, its old tokens are refused here within ``ttl``."""

    def __init__(self, ttl: float = 1.0, most: int = 100_000) -> None:
        self.ttl, self.most = ttl, most
        self._seen: dict[UUID, tuple[float, int]] = {}

    def fresh(self, user_id: UUID, epoch: int | None = None) -> bool:
        """Seen within ``ttl`` (and, given ``epoch``, with that token epoch)."""
        seen = self._seen.get(user_id)
        return (seen is not None and time.monotonic() - seen[0] < self.ttl
                and (epoch is None or seen[1] == epoch))

    def seen(self, user_id: UUID, epoch: int = 0) -> None:
        if len(self._seen) >= self.most:
            self._seen.clear()
        self._seen[user_id] = (time.monotonic(), epoch)

    def forget(self, user_id: UUID) -> None:
        self._seen.pop(user_id, None)


ACTIVE = web.AppKey("active_users", ActiveUsers)


def caller_check(request: web.Request) -> Coroutine[Any, Any, None] | None:
    """Before any route: a valid access token of a user who is not active is a 401; the
    checked caller is kept for the route. None when no look at the store is needed (no valid
    access token, which the route judges: a refresh token, a bad one; or a user found active
    lately, kept at once), else the look to await (``Unauthenticated`` for a user not active
    or a token of an earlier epoch)."""
    token = bearer_token(request)
    if token is None:
        return None
    c = container(request)
    try:
        who, claims = token_principal(c, token)
    except Unauthenticated:
        return None  # a refresh token, or a bad one: the route decides
    active = request.app[ACTIVE]
    if active.fresh(claims.user_id, claims.epoch):
        request[PRINCIPAL] = who
        return None
    return _look(request, c, active, who, claims)


async def _look(request: web.Request, c: Container, active: ActiveUsers, who: Principal,
                claims: Claims) -> None:
    user = await c.store.run(c.store.app.active_user, claims.user_id, claims.epoch)
    active.seen(claims.user_id, user.tokens_epoch)
    request[PRINCIPAL] = who
