"""The two internal figures: they read PostgreSQL directly, and ``replay`` uses the project's code.

projection-lag
    Runs the create-thing load through the HTTP API. For every ``--lag-every``-th command it
    takes the answer's ``X-Smq-Position`` and the time the answer arrived, and a single poller
    reads ``view_positions`` (the row of ``--view``, ``things`` by default) every
    ``--lag-poll-ms`` until the view's position reaches it. Lag = time the poller saw it -
    time the answer arrived: command answered -> relay -> JetStream -> projector -> SQL commit,
    over-estimated by at most one poll interval plus one query (~2-3 ms by default).

replay
    Reads the event store from position 0 with ``infra.store.Store.read`` (the eventsourcing
    PostgreSQL recorder's ``select_notifications`` + the transcoder's decoding + building the
    bus envelopes, encoded and decoded once as the relay and the projector do) in batches of
    ``--replay-batch``, and applies each batch to every view of
    ``service.container.Container.views()`` (the SQL views; the Redis view too when ``--redis-url``
    is given, under a throw-away prefix) in a fresh database created for the run and dropped
    after it. No NATS: this is the rebuild path's cost of reading + decoding + applying. It stops
    at the end of the store or after ``--duration`` seconds, whichever comes first
    (``extra.complete`` says which).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import time
from typing import Any

from bench.runner import Api, Result, SetupFailed, Unsupported, closed_loop, route_of, summary_ms


def _database_url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("SMQ_DATABASE_URL")
    if not url:
        raise SetupFailed("needs --database-url (or SMQ_DATABASE_URL): the server's PostgreSQL")
    return url


async def projection_lag(api: Api, args: argparse.Namespace, clients: int) -> Result:
    import psycopg

    url = _database_url(args)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    query = "select position from view_positions where view=%s"
    bulk = getattr(args, "lag_load", "create-thing") == "bulk-create"
    if bulk:  # every call is sampled: its position is its last thing's
        body = json.dumps([{"name": f"bench-lag-{i}", "metadata": {"bench": "lag"}}
                           for i in range(args.batch)]).encode()
    else:
        body = json.dumps({"name": "bench-lag", "metadata": {"bench": "lag"}}).encode()
    headers = {**api.auth(), "Content-Type": "application/json"}
    target = api.base + ("/things/bulk" if bulk else "/things")
    created = 200 if bulk else 201
    pending: list[tuple[int, float]] = []  # heap of (position, time the answer arrived)
    lags: list[tuple[float, float]] = []  # (time the answer arrived, lag)
    every = 1 if bulk else max(1, args.lag_every)
    wake = asyncio.Event()
    stop = False

    async def send(n: int) -> int:
        async with api.s.post(target, data=body, headers=headers) as r:
            await r.read()
            if n % every == 0 and r.status == created:
                pos = r.headers.get("X-Smq-Position")
                if pos is None:
                    raise Unsupported(f"POST {route_of(target)} answers without X-Smq-Position")
                heapq.heappush(pending, (int(pos), time.perf_counter()))
                wake.set()
            return r.status

    status = await send(0)
    if status in (404, 405):
        raise Unsupported(f"POST {route_of(target)} answered {status}")
    pending.clear()
    cur = await conn.execute(query, (args.view,))
    if await cur.fetchone() is None:
        raise SetupFailed(f"no view_positions row for view {args.view!r}")

    async def poller() -> None:
        interval = args.lag_poll_ms / 1000.0
        while not (stop and not pending):
            if not pending:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), 0.1)
                except TimeoutError:
                    pass
                continue
            row = await (await conn.execute(query, (args.view,))).fetchone()
            seen = int(row[0]) if row else 0
            now = time.perf_counter()
            while pending and pending[0][0] <= seen:
                answered = heapq.heappop(pending)[1]
                lags.append((answered, now - answered))
            await asyncio.sleep(interval)

    poll = asyncio.create_task(poller())

    async def call(_c: int, n: int) -> int:
        return await send(n)

    measure_from = time.perf_counter() + args.warmup
    res = await closed_loop("projection-lag", call, clients, args.duration, args.requests, args.warmup)
    stop = True
    try:
        await asyncio.wait_for(poll, args.lag_drain)
    except TimeoutError:
        pass
    await conn.close()
    measured = [lag for answered, lag in lags if answered >= measure_from]
    s = summary_ms(measured)
    if bulk:
        ok = res.statuses.get(str(created), 0)
        res.extra.update({"load": "bulk-create", "batch": args.batch,
                          "things_per_s": round(ok * args.batch / res.elapsed, 1) if res.elapsed else 0.0})
    res.extra.update({"view": args.view, "lag_samples": len(measured), "lag_unresolved": len(pending),
                      "lag_p50_ms": s["p50_ms"], "lag_p99_ms": s["p99_ms"], "lag_max_ms": s["max_ms"],
                      "lag_poll_ms": args.lag_poll_ms})
    return res


def _with_db(url: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(url)
    info["dbname"] = dbname
    return make_conninfo(**info)


async def replay(args: argparse.Namespace) -> Result:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from domain.app import Smq
    from infra import sql
    from infra.hashing import Argon2Hasher
    from infra.settings import Settings
    from infra.store import Store
    from service.container import Container, store_env
    from workers.feed import feed

    src = _database_url(args)
    target_db = f"{conninfo_to_dict(src).get('dbname') or 'postgres'}_replay_{os.getpid()}"
    target = _with_db(src, target_db)
    async with await psycopg.AsyncConnection.connect(src, autocommit=True) as admin:
        await admin.execute(f'drop database if exists "{target_db}"')
        await admin.execute(f'create database "{target_db}"')
    store = Store(Smq(env=store_env(src), hasher=Argon2Hasher()), workers=2)
    pool = await sql.open_pool(target, max_size=8)
    redis = None
    # A container that holds only what the views need: the views are built by its own methods.
    c = object.__new__(Container)
    c.pool, c.extras = pool, {}
    prefix = f"bench_replay_{os.getpid()}:"
    if args.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(args.redis_url)
        c.redis, c.settings = redis, Settings(redis_prefix=prefix)
        views: list[Any] = c.views()
    else:
        views = c.sql_views()
    res = Result("replay", 1)
    events = 0
    try:
        store_max = await store.max_position()
        t_start = last = time.perf_counter()
        reached = 0

        def batch_done(_n: int, position: int) -> None:
            nonlocal last, reached
            now = time.perf_counter()
            res.latencies.append(now - last)
            res.statuses["batch"] += 1
            last, reached = now, position

        # The product's own replay loop (workers.feed.feed): read ahead, the SQL views of a
        # batch in one transaction, as the projector applies them.
        events = await feed(store, views, 0, store_max, size=args.replay_batch,
                            until=time.monotonic() + args.duration, on_batch=batch_done)
        complete = reached >= store_max
        res.elapsed = max(time.perf_counter() - t_start, 1e-9)
    finally:
        await pool.close()
        store.close()
        if redis is not None:
            keys = [k async for k in redis.scan_iter(match=prefix + "*", count=1000)]
            for i in range(0, len(keys), 500):
                await redis.delete(*keys[i:i + 500])
            await redis.aclose()
        if not args.keep_replay_db:
            async with await psycopg.AsyncConnection.connect(src, autocommit=True) as admin:
                await admin.execute(f'drop database if exists "{target_db}"')
    res.extra.update({
        "events": events, "events_per_s": round(events / res.elapsed, 1),
        "views": [v.name for v in views], "batch": args.replay_batch,
        "store_max_position": store_max, "complete": complete,
        "target_database": target_db if args.keep_replay_db else None,
    })
    return res
