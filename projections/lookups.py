"""ThingKeysView: thing secret -> thing id and status, in Redis, for the hot paths
(``/identify``, messaging, bootstrap) that must not touch SQL.

Keys (one scheme, written down here only):
  ``{prefix}thingkey:{sha256(secret)}`` hash {id, status}: the lookup itself; the key is a
      hash of the secret, so Redis never holds a secret;
  ``{prefix}thing:{id}`` hash {key, status}: which key a thing holds now, to drop it on change;
  ``{prefix}pos:thing_keys`` and ``{prefix}seq:thing_keys``: the view's position and stream
      sequence, written in the same MULTI/EXEC as the changes they cover;
  ``{prefix}epoch:thing_keys`` and ``{prefix}rebuild:thing_keys``: its marker and the
      progress of a rebuild (``projections.redisview``).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.things import Thing, secret_key
from domain.traits import status_of
from projections.envelope import Envelope, name_of
from projections.redisview import RedisView, ViewNotReady, Write, as_bytes, whole

NAME = "thing_keys"
# The events the view follows (the catalogue lists the others it ignores).
HANDLES = (Thing.Created, Thing.SecretChanged, Thing.Enabled, Thing.Disabled, Thing.Removed)
_CREATED, _SECRET_CHANGED, _ENABLED, _DISABLED, _REMOVED = (name_of(cls) for cls in HANDLES)
_THING = _CREATED[0]


@dataclass(frozen=True)
class ThingKey:
    """What a secret names: a thing and whether it is enabled."""

    thing_id: str
    enabled: bool


class ThingKeysView(RedisView):
    """The Redis view of thing secrets; applies batches atomically with its position."""

    name = NAME
    patterns = ("thingkey:*", "thing:*")
    reads_sealed = frozenset((_CREATED, _SECRET_CHANGED))  # the secret

    def by_key(self, key_hash: str) -> str:
        return f"{self.prefix}thingkey:{key_hash}"

    def by_thing(self, thing_id: str) -> str:
        return f"{self.prefix}thing:{thing_id}"

    async def lookup(self, secret: str) -> ThingKey | None:
        """The thing whose secret this is, or None; ``ViewNotReady`` while the view is not
        whole (Redis lost it, or it is being rebuilt)."""
        wanted = secret_key(secret)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.by_key(wanted))
            pipe.get(self.epoch_key)
            found, marker = await pipe.execute()
        if not whole(marker):
            raise ViewNotReady(f"the Redis view {self.name} is not whole")
        if not found:
            return None
        held = as_bytes(await self.redis.hget(self.by_thing(found[b"id"].decode()), "key"))
        # The reverse entry must name the same key (constant-time: it is derived from a secret).
        if held is None or not hmac.compare_digest(held, wanted.encode()):
            return None
        return ThingKey(found[b"id"].decode(), found.get(b"status") == b"enabled")

    async def _changes(self, pipe: Any, batch: Sequence[tuple[int, Envelope]]) -> list[Write]:
        state: dict[str, dict[str, str]] = {}  # thing id -> {key, status}, as of the batch so far
        writes: list[Write] = []

        async def current(tid: str) -> dict[str, str]:
            if tid not in state:
                raw = await pipe.hgetall(self.by_thing(tid))
                state[tid] = {k.decode(): v.decode() for k, v in raw.items()}
            return state[tid]

        for _seq, env in batch:
            if env.aggregate != _THING:
                continue  # (the unique claims of a bulk create: half its events)
            event = (env.aggregate, env.type)
            tid = env.aggregate_id
            if event == _CREATED:
                key = secret_key(env.data["secret"])
                status = status_of(env.data.get("enabled", True))
                state[tid] = {"key": key, "status": status}
                writes += [("hset", self.by_key(key), {"id": tid, "status": status}),
                           ("hset", self.by_thing(tid), {"key": key, "status": status})]
            elif event == _SECRET_CHANGED:
                cur = await current(tid)
                if cur.get("key"):
                    writes.append(("del", self.by_key(cur["key"]), None))
                key = secret_key(env.data["secret"])
                status = cur.get("status", "enabled")
                state[tid] = {"key": key, "status": status}
                writes += [("hset", self.by_key(key), {"id": tid, "status": status}),
                           ("hset", self.by_thing(tid), {"key": key, "status": status})]
            elif event == _REMOVED:  # forgotten: its secret names nothing any more
                cur = await current(tid)
                if cur.get("key"):
                    writes.append(("del", self.by_key(cur["key"]), None))
                state[tid] = {}
                writes.append(("del", self.by_thing(tid), None))
            elif event in (_ENABLED, _DISABLED):
                cur = await current(tid)
                if cur.get("key"):
                    state[tid] = {**cur, "status": env.type}
                    writes += [("hset", self.by_key(cur["key"]), {"id": tid, "status": env.type}),
                               ("hset", self.by_thing(tid), {"key": cur["key"], "status": env.type})]
        return writes
