"""An access token stops working at once when its user is disabled or gone (a JWT alone
would stay valid until it expires)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from command_api.context import PRINCIPAL, container
from domain.app import Principal
from domain.errors import Unauthenticated


@web.middleware
async def revocation_middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """401 for a valid access token of a user who is not active; the checked caller is kept
    for the route. Anything that is not a valid access token is left to the route to judge."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        c = container(request)
        try:
            claims = c.tokens.check(token.strip(), "access")
        except Unauthenticated:
            return await handler(request)  # a refresh token, or a bad one: the route decides
        await c.store.run(c.store.app.active_user, claims.user_id)  # Unauthenticated: 401
        request[PRINCIPAL] = Principal(user_id=claims.user_id, admin=claims.role == "admin")
    return await handler(request)
