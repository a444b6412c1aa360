"""AccessView: which things may do what on which channels, in Redis, for the message path
(the HTTP adapter, ``/channels/{id}/access``), which must not touch SQL or the store.

Keys (one scheme, written down here only):
  ``{prefix}conn:{channel}:{thing}`` the connection's actions, comma-separated; absent when
      the thing is not connected;
  ``{prefix}chan:{channel}`` ``disabled`` while the channel is disabled, absent otherwise;
      a removed channel leaves neither key;
  ``{prefix}tconn:{thing}`` hash channel -> the connection's actions: every channel of a thing
      (the MQTT authorizer lists them all when the thing connects);
  ``{prefix}pos:access`` and ``{prefix}seq:access``: the view's position and stream sequence,
      written in the same MULTI/EXEC as the changes they cover;
  ``{prefix}epoch:access`` and ``{prefix}rebuild:access``: its marker and the progress of a
      rebuild (``projections.redisview``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from domain.channels import Channel
from domain.connections import Connection
from infra.fastredis import ScriptHost
from projections.access_scripts import SNAPSHOT, THING
from projections.envelope import Envelope, name_of
from projections.lookups import ThingKeysView
from projections.redisview import RedisView, Write, as_bytes, whole

NAME = "access"

SHAPE = b"2"  # 2: with ``tconn:{thing}``


async def upgrade(redis: Redis, prefix: str) -> bool:
    """An access view written before it kept ``tconn:{thing}`` is rebuilt once: its marker is
    dropped, so the projector's guard takes it for lost and rebuilds it from the store (the
    shape is remembered in ``{prefix}shape:access``). True when it was dropped."""
    shape = f"{prefix}shape:{NAME}"
    if await redis.get(shape) == SHAPE:
        return False
    dropped = await redis.delete(f"{prefix}epoch:{NAME}")
    await redis.set(shape, SHAPE)
    return bool(dropped)


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None


@dataclass(frozen=True)
class Snapshot:
    """What the views say, at one instant, about a secret and a channel."""

    thing_id: str | None
    enabled: bool
    held_key: str | None      # the key the thing holds now (must equal the secret's)
    actions: frozenset[str]
    channel_enabled: bool
    target: int               # the position the views must reach for this to be fresh
    reached: int              # the lower of the two views' positions
    whole: bool = True        # False while a Redis view is lost or rebuilt: ask SQL instead
    blocked_ms: int = -2      # the PTTL of the block key asked for (-2: none)


@dataclass(frozen=True)
class ThingSnapshot:
    """What the views say, at one instant, about a secret and every channel of its thing."""

    thing_id: str | None
    enabled: bool
    held_key: str | None                   # the key the thing holds now (must equal the secret's)
    channels: dict[str, frozenset[str]]    # its enabled channels -> the connection's actions
    target: int                            # the position the views must reach to be fresh
    reached: int
    whole: bool = True
    blocked_ms: int = -2                   # the PTTL of the block key asked for (-2: none)
    recorded: bool = False                 # the session asked for was recorded by this read


@dataclass(frozen=True)
class SessionRecord:
    """Where a read of ``thing_snapshot`` records the MQTT session it decides: the field
    ``field`` of the hash ``<prefix><thing id>``, the session's expiry in Unix seconds."""

    prefix: str
    field: str
    expires: int


class AccessView(RedisView):
    """The Redis view of connections; applies batches atomically with its position."""

    name = NAME
    patterns = ("conn:*", "chan:*", "tconn:*")
    reads_sealed: frozenset[tuple[str, str]] = frozenset()  # no credential

    def __init__(self, redis: Redis, prefix: str, scripts: ScriptHost | None = None) -> None:
        super().__init__(redis, prefix, scripts)
        self._snapshot = self.scripts.register_script(SNAPSHOT)
        self._thing = self.scripts.register_script(THING)

    async def reset(self) -> None:
        """Drop the view before it is built again, in this version's shape: the shape is
        recorded with it, so a view rebuilt after Redis lost it (the shape's key with it) is
        not rebuilt once more at the next start (``upgrade``)."""
        await super().reset()
        await self.redis.set(f"{self.prefix}shape:{NAME}", SHAPE)

    def thing_key(self, thing_id: str) -> str:
        return f"{self.prefix}tconn:{thing_id}"

    def conn_key(self, channel_id: str, thing_id: str) -> str:
        return f"{self.prefix}conn:{channel_id}:{thing_id}"

    def channel_key(self, channel_id: str) -> str:
        return f"{self.prefix}chan:{channel_id}"

    async def actions(self, channel_id: str, thing_id: str) -> frozenset[str]:
        raw = as_bytes(await self.redis.get(self.conn_key(channel_id, thing_id)))
        return frozenset(raw.decode().split(",")) if raw else frozenset()

    async def snapshot(self, keys: ThingKeysView, rw_prefix: str, key_hash: str,
                       channel_id: str, block_key: str | None = None) -> Snapshot:
        """The secret's thing and its access to the channel, how fresh that is, whether the
        views are whole (and, in the same round trip, how long ``block_key`` still lives)."""
        args = [keys.by_key(key_hash), keys.by_thing(""), self.conn_key(channel_id, ""),
                self.channel_key(channel_id), rw_prefix, channel_id, keys.pos_key, self.pos_key,
                keys.epoch_key, self.epoch_key]
        r = await self._snapshot(args=args if block_key is None else [*args, block_key])
        r = [v if v is not False else None for v in r] + [None] * (12 - len(r))
        (tid, status, held, conn, chan, rw_thing, rw_chan, pos_keys, pos_access, m_keys, m_access,
         blocked) = r
        return Snapshot(
            thing_id=_text(tid), enabled=status == b"enabled", held_key=_text(held),
            actions=frozenset(conn.decode().split(",")) if conn else frozenset(),
            channel_enabled=chan != b"disabled",
            target=max(int(rw_thing or 0), int(rw_chan or 0)),
            reached=min(int(pos_keys or 0), int(pos_access or 0)),
            whole=whole(m_keys) and whole(m_access),
            blocked_ms=int(blocked) if isinstance(blocked, int) else -2)

    async def thing_snapshot(self, keys: ThingKeysView, rw_prefix: str, key_hash: str,
                             block_key: str | None = None, session: SessionRecord | None = None) -> ThingSnapshot:
        """The secret's thing and every enabled channel it is connected to, how fresh that is,
        whether the views are whole; in the same round trip and instant, how long
        ``block_key`` still lives (nothing else is read while it does) and, for an enabled
        thing, ``session`` recorded with the position read (so a revocation the views apply
        later finds it)."""
        args = [keys.by_key(key_hash), keys.by_thing(""), self.thing_key(""), self.channel_key(""),
                rw_prefix, keys.pos_key, self.pos_key, keys.epoch_key, self.epoch_key, block_key or ""]
        if session is not None:
            args += [session.prefix, session.field, str(int(session.expires))]
        r = await self._thing(args=args)
        tid, status, held, rw, pos_keys, pos_access, m_keys, m_access, flat = (
            v if v is not False else None for v in r[:9])
        flat = flat or []
        return ThingSnapshot(
            thing_id=_text(tid), enabled=status == b"enabled", held_key=_text(held),
            channels={flat[i].decode(): frozenset(flat[i + 1].decode().split(","))
                      for i in range(0, len(flat), 2)},
            target=int(rw or 0), reached=min(int(pos_keys or 0), int(pos_access or 0)),
            whole=whole(m_keys) and whole(m_access), blocked_ms=int(r[9]), recorded=bool(r[10]))

    def _change(self, env: Envelope) -> list[Write]:
        """The writes an event makes: (op, key, value)."""
        handler = _BY_NAME.get((env.aggregate, env.type))
        return handler(self, env) if handler is not None else []

    async def _changes(self, pipe: Any, batch: Sequence[tuple[int, Envelope]]) -> list[Write]:
        writes: list[Write] = []
        for _seq, env in batch:
            if (env.aggregate, env.type) == _CHANNEL_REMOVED:
                writes += await self._connections_of(env.aggregate_id, writes)
            writes += self._change(env)
        return writes

    async def _connections_of(self, channel_id: str, earlier: Sequence[Write]) -> list[Write]:
        """The deletion of every connection key of a removed channel, and of its field in each
        thing's ``tconn``: those in Redis (a scan: removals are rare, and the compensation that
        removes has disconnected its layout's pairs already) and those written earlier in this
        batch."""
        prefix = self.conn_key(channel_id, "")
        keys = {key.decode() async for key in self.redis.scan_iter(match=_glob(prefix) + "*", count=1000)}
        keys |= {key for op, key, _value in earlier if op == "set" and key.startswith(prefix)}
        writes: list[Write] = []
        for key in sorted(keys):
            writes += [("del", key, None), ("hfield", self.thing_key(key[len(prefix):]), (channel_id, None))]
        return writes


def _connected(view: AccessView, e: Envelope) -> list[Write]:
    channel, thing, actions = str(e.data["channel_id"]), str(e.data["thing_id"]), ",".join(e.data["actions"])
    return [("set", view.conn_key(channel, thing), actions),
            ("hfield", view.thing_key(thing), (channel, actions))]


def _disconnected(view: AccessView, e: Envelope) -> list[Write]:
    channel, thing = str(e.data["channel_id"]), str(e.data["thing_id"])
    return [("del", view.conn_key(channel, thing), None), ("hfield", view.thing_key(thing), (channel, None))]


def _glob(text: str) -> str:
    """``text`` as a Redis match pattern that matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def _channel_created(view: AccessView, e: Envelope) -> list[Write]:
    return [("set", view.channel_key(e.aggregate_id), "disabled")] if e.data.get("enabled") is False else []


# The events the view follows, keyed by their classes (the catalogue lists the others it ignores).
HANDLERS: dict[type, Callable[[AccessView, Envelope], list[Write]]] = {
    Connection.Connected: _connected,
    Connection.Disconnected: _disconnected,
    Channel.Disabled: lambda view, e: [("set", view.channel_key(e.aggregate_id), "disabled")],
    Channel.Enabled: lambda view, e: [("del", view.channel_key(e.aggregate_id), None)],
    Channel.Created: _channel_created,
    # Forgotten: its status key here, its connection keys by ``AccessView._connections_of``.
    Channel.Removed: lambda view, e: [("del", view.channel_key(e.aggregate_id), None)],
}
_BY_NAME = {name_of(cls): handler for cls, handler in HANDLERS.items()}
_CHANNEL_REMOVED = name_of(Channel.Removed)
