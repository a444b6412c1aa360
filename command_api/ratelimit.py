"""Rate limit of ``POST /users/tokens/issue``: token buckets in Redis, per identity and per
client address, so that guessing secrets is slow however many connections one uses."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from command_api.context import CONTAINER, container
from command_api.errors import error_response
from command_api.observability import route_of
from command_api.wire import decode_json
from domain.errors import Invalid

log = logging.getLogger("smq.api")

LIMITED = {("POST", "/users/tokens/issue")}

# KEYS: one bucket per key; ARGV[1]: the window in seconds, ARGV[1 + i]: capacity of KEYS[i].
# A bucket holds up to its capacity and refills it over one window. One attempt takes one token
# from every bucket, or none when any is empty; the answer is the seconds to wait (0: allowed).
_BUCKETS = """
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) + tonumber(now_t[2]) / 1000000
local window = tonumber(ARGV[1])
local levels, wait = {}, 0
for i = 1, #KEYS do
  local cap = tonumber(ARGV[i + 1])
  local rate = cap / window
  local state = redis.call('HMGET', KEYS[i], 't', 'ts')
  local level = tonumber(state[1]) or cap
  local ts = tonumber(state[2]) or now
  level = math.min(cap, level + math.max(0, now - ts) * rate)
  levels[i] = level
  if level < 1 then wait = math.max(wait, (1 - level) / rate) end
end
if wait > 0 then return tostring(wait) end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 't', tostring(levels[i] - 1), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(window * 1000))
end
return '0'
"""


class Buckets:
    """Token buckets in Redis under ``<prefix>rl:<name>:<digest>``."""

    def __init__(self, redis: Redis, prefix: str, window: float) -> None:
        self.redis, self.prefix, self.window = redis, prefix, window
        self._script = redis.register_script(_BUCKETS)

    def key(self, name: str, value: str) -> str:
        digest = hashlib.sha256(value.encode()).hexdigest()[:32]  # no identity in key names
        return f"{self.prefix}rl:{name}:{digest}"

    async def take(self, buckets: list[tuple[str, str, int]]) -> float:
        """Take one token from each ``(name, value, capacity)`` bucket; seconds to wait, or 0."""
        active = [(self.key(n, v), cap) for n, v, cap in buckets if cap > 0]
        if not active:
            return 0.0
        keys = [k for k, _ in active]
        args: list[Any] = [self.window, *(cap for _, cap in active)]
        answer = await self._script(keys=keys, args=args)
        return float(answer.decode() if isinstance(answer, bytes) else answer)


def _identity(raw: bytes) -> str | None:
    """The identity a token request names, lower-cased, if it names one."""
    try:
        body = decode_json(raw)
    except Invalid:
        return None
    if not isinstance(body, dict):
        return None
    value = body.get("identity") or body.get("username")
    return value.strip().lower()[:320] if isinstance(value, str) and value.strip() else None


BUCKETS = web.AppKey("smq.ratelimit", Buckets)


async def prepare(app: web.Application) -> None:
    """On startup: the buckets, in the container's Redis."""
    c = app[CONTAINER]
    app[BUCKETS] = Buckets(c.redis, c.settings.redis_prefix, c.settings.issue_limit_window)


@web.middleware
async def ratelimit_middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """429 with ``Retry-After`` when the identity or the address asked too often."""
    if (request.method, route_of(request)) not in LIMITED:
        return await handler(request)
    s = container(request).settings
    raw = await request.read()  # cached: the route reads the same body again
    wanted = [("address", request.remote or "unknown", s.issue_limit_address)]
    identity = _identity(raw)
    if identity is not None:
        wanted.append(("identity", identity, s.issue_limit_identity))
    try:
        wait = await request.app[BUCKETS].take(wanted)
    except Exception:  # noqa: BLE001 - Redis trouble must not lock every user out
        log.warning("rate limit check failed; request let through", exc_info=True)
        wait = 0.0
    if wait > 0:
        resp = error_response(429, "too many token requests, try again later")
        resp.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return resp
    return await handler(request)
