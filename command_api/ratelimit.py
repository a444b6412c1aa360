"""Failure limits of the secret checks that answer unauthenticated callers (token issue,
``/identify``, ``/channels/{id}/access``, the HTTP message adapter, the bootstrap fetch):
guessing is slow from one host and from many, and a caller whose secrets are right is never
refused for it.

The rule (``docs/architecture.md``, "Failure limits"), per kind of secret:
  - only failed checks count; a success costs nothing and takes nothing;
  - an address may fail ``address`` times per window (a token bucket refilled over the
    window); when its bucket is empty it is refused every check of that kind until a token
    comes back (``Retry-After``);
  - an identity (a user's identity, a bootstrap external id) may fail ``identity`` times per
    window, from any addresses; when its bucket is empty the identity is under attack, and
    the addresses that have failed for it lately are refused for it, while an address that has
    not failed for it (its owner's) is still answered;
  - a refused request is answered 429 with ``Retry-After`` and checks nothing (no argon2 time).

Redis keys (hashed, no identity or address in a key name), under the settings' prefix:
  ``rl:<kind>:a:<digest>`` and ``rl:<kind>:i:<digest>`` the buckets (``t`` tokens, ``ts`` time);
  ``rl:<kind>:ab:<digest>`` and ``rl:<kind>:ib:<digest>`` present (with a TTL) while the
      address is refused, or the identity under attack;
  ``rl:<kind>:p:<digest>`` present (TTL one window) while the address has failed for the identity.
Every key expires by itself, so the memory is bounded by the failures of one window.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import time
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from command_api.context import CONTAINER
from command_api.errors import TooManyFailures
from infra.fastredis import ScriptHost

log = logging.getLogger("smq.api")

LOGIN, THING, BOOTSTRAP = "login", "thing", "bootstrap"
# A bucket's debt is bounded: a burst of failures answered before the first one landed is paid
# for with at most this many windows of refusal.
MOST_DEBT_WINDOWS = 60
# Token requests that check a secret at once in one process: a burst queues here, and each
# one reads the failures of those before it (so a burst of guesses gets a handful of answers).
LOGIN_TURNS = 4

# KEYS[1] address bucket, KEYS[2] its block, then (optional) KEYS[3] identity bucket, KEYS[4]
# its block, KEYS[5] the pair's mark. ARGV: window, address capacity, identity capacity.
# One failure takes one token from each bucket; a bucket below one token sets its block key
# for as long as the next token takes. Answer: the seconds the address now waits, or 0.
_FAILED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local function spend(bucket, block, cap)
  local rate = cap / window
  local state = redis.call('HMGET', bucket, 't', 'ts')
  local level = tonumber(state[1]) or cap
  local ts = tonumber(state[2]) or now
  level = math.min(cap, level + math.max(0, now - ts) * rate) - 1
  level = math.max(level, -cap * tonumber(ARGV[4]))
  redis.call('HSET', bucket, 't', tostring(level), 'ts', tostring(now))
  redis.call('PEXPIRE', bucket, math.ceil((cap - level) / rate * 1000))
  if level < 1 then
    local wait = (1 - level) / rate
    redis.call('SET', block, '1', 'PX', math.ceil(wait * 1000))
    return wait
  end
  return 0
end
local wait = 0
if tonumber(ARGV[2]) > 0 then wait = spend(KEYS[1], KEYS[2], tonumber(ARGV[2])) end
if #KEYS > 2 then
  redis.call('SET', KEYS[5], '1', 'PX', math.ceil(window * 1000))
  if tonumber(ARGV[3]) > 0 then wait = math.max(wait, spend(KEYS[3], KEYS[4], tonumber(ARGV[3]))) end
end
return tostring(wait)
"""

# KEYS as above. Answer: the milliseconds this address must still wait for this identity.
_WAIT = """
local wait = redis.call('PTTL', KEYS[1])
if #KEYS > 1 and redis.call('EXISTS', KEYS[3]) == 1 then
  wait = math.max(wait, redis.call('PTTL', KEYS[2]))
end
return wait
"""


def address_of(request: web.Request) -> str:
    """The client's address as the socket says (no forwarding header is trusted), as
    ``client_address`` counts it."""
    return client_address(request.remote or "unknown")


def client_address(remote: str) -> str:
    """The address failures are counted by: an IPv4 one as it is, an IPv6 client by its /64,
    which one host commonly holds whole (an IPv4-mapped one as its IPv4)."""
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Failures:
    """The failure counts of every API process, in Redis."""

    def __init__(self, redis: Redis, prefix: str, window: float, per_identity: int, per_address: int,
                 scripts: ScriptHost | None = None) -> None:
        self.redis, self.prefix, self.window = redis, prefix, window
        self.per_identity, self.per_address = per_identity, per_address
        host = scripts if scripts is not None else redis  # the lean caller (infra.fastredis), else the client
        self._failed = host.register_script(_FAILED)
        self._wait = host.register_script(_WAIT)
        self.login_turns = asyncio.Semaphore(LOGIN_TURNS)
        self._warned = 0.0

    @property
    def enabled(self) -> bool:
        return self.per_address > 0 or self.per_identity > 0

    def _key(self, kind: str, part: str, *values: str) -> str:
        digest = hashlib.sha256("\0".join(values).encode()).hexdigest()[:32]
        return f"{self.prefix}rl:{kind}:{part}:{digest}"

    def block_key(self, kind: str, address: str) -> str:
        """Present while the address is refused checks of this kind (its TTL: how long)."""
        return self._key(kind, "ab", address)

    def _keys(self, kind: str, identity: str | None, address: str) -> list[str]:
        keys = [self._key(kind, "a", address), self.block_key(kind, address)]
        if identity is not None:
            keys += [self._key(kind, "i", identity), self._key(kind, "ib", identity),
                     self._key(kind, "p", identity, address)]
        return keys

    async def check(self, kind: str, identity: str | None, address: str) -> None:
        """Raise ``TooManyFailures`` when this address may not try this identity now."""
        if not self.enabled:
            return
        keys = self._keys(kind, identity, address)
        try:
            ms = int(await self._wait(keys=[keys[1], *keys[3:]]))
        except Exception:  # noqa: BLE001 - Redis trouble must not lock every user out
            self._warn()
            return
        refuse_after_ms(ms)

    async def failed(self, kind: str, identity: str | None, address: str) -> None:
        """Count a failed check of this address (and identity)."""
        if not self.enabled:
            return
        try:
            await self._failed(keys=self._keys(kind, identity, address),
                               args=[self.window, self.per_address, self.per_identity, MOST_DEBT_WINDOWS])
        except Exception:  # noqa: BLE001 - the caller's answer stands (401) without the count
            self._warn()

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned > 60:  # once a minute, not once a request
            self._warned = now
            log.warning("failure limits unavailable (Redis); secret checks are not limited", exc_info=True)


def refuse_after_ms(ms: Any) -> None:
    """Raise ``TooManyFailures`` for a block key's PTTL that says the address is refused."""
    if ms is not None and int(ms) > 0:
        raise TooManyFailures(int(ms) / 1000)


FAILURES = web.AppKey("smq.failures", Failures)


async def prepare(app: web.Application) -> None:
    """On startup: the failure counts, in the container's Redis."""
    c = app[CONTAINER]
    s = c.settings
    app[FAILURES] = Failures(c.redis, s.redis_prefix, s.failure_limit_window, s.failure_limit_identity,
                             s.failure_limit_address, c.scripts)


def failures(request: web.Request) -> Failures:
    return request.app[FAILURES]
