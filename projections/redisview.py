"""What the Redis views share: a position and stream sequence kept in the same MULTI/EXEC as
their keys, optimistic retries when another instance moved the view, and a reset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from projections.envelope import Envelope

Write = tuple[str, str, Any]


class RedisView:
    """Subclasses set ``name`` and ``patterns`` (their keys, after the prefix) and write a
    batch's changes in ``_changes``; they commit with the position, or not at all."""

    name = ""
    patterns: tuple[str, ...] = ()

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self.pos_key, self.seq_key = f"{prefix}pos:{self.name}", f"{prefix}seq:{self.name}"

    async def position(self) -> tuple[int, int]:
        pos, seq = await self.redis.mget(self.pos_key, self.seq_key)
        return int(pos or 0), int(seq or 0)

    async def apply(self, batch: Sequence[tuple[int, Envelope]]) -> int:
        """Apply the events not yet applied; a redelivered event changes nothing."""
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.pos_key)
                    done = int(await pipe.get(self.pos_key) or 0)
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
        """Drop the view: every key of it, and its position."""
        for pattern in self.patterns:
            async for key in self.redis.scan_iter(match=f"{self.prefix}{pattern}", count=1000):
                await self.redis.delete(key)
        await self.redis.delete(self.pos_key, self.seq_key)


def _queue(pipe: Any, writes: Sequence[Write]) -> None:
    """Queue a batch's writes in few commands. Each write replaces its key whole (``set``,
    ``del``, or ``hset`` of the whole hash), and the batch commits at once (MULTI/EXEC), so
    only each key's last write matters: one DEL, one MSET, and the hashes."""
    last: dict[str, tuple[str, Any]] = {}
    for op, key, value in writes:
        last.pop(key, None)  # re-inserted: the key's last write keeps its place in the order
        last[key] = (op, value)
    dels = [k for k, (op, _) in last.items() if op in ("del", "hset")]
    if dels:
        pipe.delete(*dels)
    sets = {k: (v or "") for k, (op, v) in last.items() if op == "set"}
    if sets:
        pipe.mset(sets)
    for key, (op, value) in last.items():
        if op == "hset" and value:
            pipe.hset(key, mapping=value)
