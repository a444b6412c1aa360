"""What the Redis views share: a position and stream sequence kept in the same MULTI/EXEC as
their keys, optimistic retries when another instance moved the view, and a reset.

Each Redis view also has a marker, ``{prefix}epoch:{view}``: a random id that the projector
(``workers.redisguard``) also records in PostgreSQL. While it is there and final the view is
whole; when it is missing (Redis lost its data) or says ``rebuilding:…``, readers answer
from the SQL views instead, and ``{prefix}rebuild:{view}`` says how far the rebuild is."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from infra.fastredis import ScriptHost
from projections.envelope import Envelope

Write = tuple[str, str, Any]
# Told a view's marker (as read) and position: may a batch be applied to it?
Check = Callable[[bytes | None, int], bool]
REBUILDING = b"rebuilding:"


class RedisLost(Exception):
    """The view's marker or position is not what its writer expects: Redis lost (or was
    replaced under) what the view wrote; nothing of the batch was applied."""

    def __init__(self, view: str, marker: bytes | None, position: int) -> None:
        super().__init__(f"{view}: marker {marker!r}, position {position}")
        self.marker, self.position = marker, position


class ViewNotReady(Exception):
    """The view is not whole (lost or being rebuilt): ask the SQL views instead."""


def as_bytes(raw: bytes | str | None) -> bytes | None:
    """A Redis reply as this project reads it: its clients never decode replies (bytes), but
    redis-py types every reply as bytes or str."""
    return raw.encode() if isinstance(raw, str) else raw


def whole(marker: bytes | None) -> bool:
    """Whether a view with this marker holds everything up to its position."""
    return marker is not None and not marker.startswith(REBUILDING)


async def rebuilding(redis: Redis, prefix: str, views: Iterable[str]) -> str | None:
    """None when every view is whole, else what /health shows, e.g.
    ``rebuilding: thing_keys at 1200 of 5000``."""
    views = list(views)
    raw = await redis.mget([k for v in views for k in (f"{prefix}epoch:{v}", f"{prefix}rebuild:{v}")])
    parts = []
    for i, view in enumerate(views):
        marker, progress = as_bytes(raw[2 * i]), as_bytes(raw[2 * i + 1])
        if whole(marker):
            continue
        if progress:
            done, _, head = progress.decode().partition(" ")
            parts.append(f"{view} at {done} of {head}")
        else:
            parts.append(f"{view} lost, waiting for the projector")
    return "rebuilding: " + "; ".join(parts) if parts else None


def position_key(prefix: str, view: str) -> str:
    """Where a Redis view keeps its position (moved in the same MULTI/EXEC as its keys)."""
    return f"{prefix}pos:{view}"


class RedisView:
    """Subclasses set ``name`` and ``patterns`` (their keys, after the prefix) and write a
    batch's changes in ``_changes``; they commit with the position, or not at all."""

    name = ""
    patterns: tuple[str, ...] = ()
    # The events whose sealed fields it reads, opened by the projector (None: any event's).
    reads_sealed: frozenset[tuple[str, str]] | None = None

    def __init__(self, redis: Redis, prefix: str, scripts: ScriptHost | None = None) -> None:
        self.redis, self.prefix = redis, prefix
        # Where its hot scripts run: the lean caller (``infra.fastredis``), else the client.
        self.scripts: ScriptHost = scripts if scripts is not None else redis
        self.pos_key, self.seq_key = position_key(prefix, self.name), f"{prefix}seq:{self.name}"
        self.epoch_key, self.rebuild_key = f"{prefix}epoch:{self.name}", f"{prefix}rebuild:{self.name}"

    async def position(self) -> tuple[int, int]:
        pos, seq = await self.redis.mget(self.pos_key, self.seq_key)
        return int(pos or 0), int(seq or 0)

    async def apply(self, batch: Sequence[tuple[int, Envelope]], check: Check | None = None) -> int:
        """Apply the events not yet applied; a redelivered event changes nothing. With
        ``check``, the view's marker and position are read in the same watch, and the batch
        is refused (``RedisLost``) unless ``check`` accepts them."""
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.pos_key, self.epoch_key)
                    raw, replied = await pipe.mget(self.pos_key, self.epoch_key)
                    marker = as_bytes(replied)
                    done = int(raw or 0)
                    if check is not None and not check(marker, done):
                        raise RedisLost(self.name, marker, done)
                    fresh = [(seq, env) for seq, env in batch if env.position > done]
                    writes = await self._changes(pipe, fresh)
                    pipe.multi()
                    _queue(pipe, writes)
                    last_pos = max((env.position for _, env in fresh), default=done)
                    if last_pos > done:
                        pipe.set(self.pos_key, last_pos)
                    if batch:
                        pipe.set(self.seq_key, batch[-1][0])
                    await pipe.execute()
                    return last_pos
                except WatchError:
                    continue  # another instance moved the view meanwhile: read it again

    async def _changes(self, pipe: Any, batch: Sequence[tuple[int, Envelope]]) -> list[Write]:
        """The writes of a batch (only events past the position), as (``del`` | ``set`` |
        ``hset``, key, value); reads made here through ``pipe`` (before MULTI) are watched."""
        raise NotImplementedError

    async def reset(self) -> None:
        """Drop the view: every key of it, its position and its marker."""
        for pattern in self.patterns:
            keys: list[bytes] = []
            async for key in self.redis.scan_iter(match=f"{self.prefix}{pattern}", count=1000):
                keys.append(key)
                if len(keys) >= 1000:
                    await self.redis.delete(*keys)
                    keys = []
            if keys:
                await self.redis.delete(*keys)
        await self.redis.delete(self.pos_key, self.seq_key, self.epoch_key, self.rebuild_key)


# KEYS: hashes to fill (each deleted first, in the same MULTI); ARGV: per key, its number of
# fields, then field, value, ... One command for every hash of a batch: redis-py spends more
# on a command (packing it, reading its QUEUED) than Redis does (docs/performance.md).
_HASHES = """
local a = 1
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  if n > 0 then redis.call('HSET', key, unpack(ARGV, a + 1, a + 2 * n)) end
  a = a + 1 + 2 * n
end
return #KEYS
"""
# The same with every field and value in one JSON argument (a list per key: field, value,
# ...), each key deleted by the script: redis-py packs one argument, not one per field and
# value, and the DEL names only the keys deleted for good (replay: ~18 % of its CPU went to
# packing the hashes' arguments).
_HASHES_JSON = """
local spec = cjson.decode(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('DEL', key)
  local fv = spec[i]
  if #fv > 0 then redis.call('HSET', key, unpack(fv)) end
end
return #KEYS
"""
_HASHES_PER_CALL = 1000  # keys per script call (Lua's unpack and the reply stay small)
_json = msgspec.json.Encoder().encode


def _flat(mapping: dict[str, Any]) -> list[str] | None:
    """A hash's fields and values as the text redis-py would send (None: one is not str,
    int or float, and goes the per-argument way)."""
    out: list[str] = []
    for field, value in mapping.items():
        t = type(value)
        if t is not str:
            if t is not int and t is not float:
                return None
            value = repr(value)
        if type(field) is not str:
            return None
        out += (field, value)
    return out


def _hashes_json(hashes: Sequence[tuple[str, Any]]) -> list[tuple[list[str], str]] | None:
    """The JSON script calls (keys, spec) that replace ``hashes`` whole; None when one cannot
    go as JSON text."""
    calls = []
    for i in range(0, len(hashes), _HASHES_PER_CALL):
        part = hashes[i:i + _HASHES_PER_CALL]
        flats = [_flat(m) for _k, m in part]
        if any(f is None for f in flats):
            return None
        try:
            calls.append(([k for k, _ in part], _json(flats).decode()))
        except UnicodeEncodeError:  # a lone surrogate: redis-py's own encoding raises too
            return None
    return calls


def _queue(pipe: Any, writes: Sequence[Write]) -> None:
    """Queue a batch's writes in few commands. Each write replaces its key whole (``set``,
    ``del``, or ``hset`` of the whole hash), or sets or deletes one field of a hash
    (``hfield``, value ``(field, value or None)``), and the batch commits at once
    (MULTI/EXEC), so only each key's (or field's) last write matters: one DEL, one MSET, one
    script for the hashes, then the fields."""
    last: dict[str, tuple[str, Any]] = {}
    fields: dict[tuple[str, str], str | None] = {}
    for op, key, value in writes:
        if op == "hfield":
            fields.pop((key, value[0]), None)
            fields[(key, value[0])] = value[1]
            continue
        last.pop(key, None)  # re-inserted: the key's last write keeps its place in the order
        last[key] = (op, value)
    hashes = [(k, v) for k, (op, v) in last.items() if op == "hset" and v]
    calls = _hashes_json(hashes) if hashes else None
    # With the JSON script, the script deletes the hashes it fills; the DEL the rest.
    dels = [k for k, (op, v) in last.items()
            if op == "del" or (op == "hset" and not (calls is not None and v))]
    if dels:
        pipe.delete(*dels)
    sets = {k: (v or "") for k, (op, v) in last.items() if op == "set"}
    if sets:
        pipe.mset(sets)
    if calls is not None:
        for keys, spec in calls:
            pipe.eval(_HASHES_JSON, len(keys), *keys, spec)
        hashes = []
    for i in range(0, len(hashes), _HASHES_PER_CALL):
        part = hashes[i:i + _HASHES_PER_CALL]
        args: list[Any] = []
        for _key, mapping in part:
            args.append(len(mapping))
            for field, value in mapping.items():
                args += (field, value)
        pipe.eval(_HASHES, len(part), *[k for k, _ in part], *args)
    for (key, name), value in fields.items():
        if value is None:
            pipe.hdel(key, name)
        else:
            pipe.hset(key, name, value)
