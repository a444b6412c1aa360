"""A batch's hash writes reach Redis the same whether they go as one JSON argument or per
argument (``projections.redisview._queue``)."""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

from projections.redisview import _queue


async def _apply(redis: Redis, writes: list) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.multi()
        _queue(pipe, writes)
        await pipe.execute()


async def test_hashes_json_and_fallback_write_the_same(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    p = f"test_hashes_{secrets.token_hex(4)}:"
    try:
        await redis.hset(f"{p}a", mapping={"stale": "x", "id": "old"})
        await redis.hset(f"{p}gone", mapping={"f": "v"})
        await _apply(redis, [
            ("hset", f"{p}a", {"id": "é-1", "n": 3, "x": 1.5}),  # JSON: replaced whole
            ("hset", f"{p}gone", {}),                              # an empty hash: deleted
            ("hset", f"{p}b", {"k": "v"}), ("hfield", f"{p}b", ("k2", "v2")),
            ("set", f"{p}s", "1"),
        ])
        assert await redis.hgetall(f"{p}a") == {b"id": "é-1".encode(), b"n": b"3", b"x": b"1.5"}
        assert not await redis.exists(f"{p}gone")
        assert await redis.hgetall(f"{p}b") == {b"k": b"v", b"k2": b"v2"}
        # A value JSON text cannot carry as redis-py would (bytes) takes the per-argument way.
        await _apply(redis, [("hset", f"{p}a", {"raw": b"\xff\x00"}), ("del", f"{p}s", None)])
        assert await redis.hgetall(f"{p}a") == {b"raw": b"\xff\x00"}
        assert not await redis.exists(f"{p}s")
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{p}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
