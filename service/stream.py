"""``smq stream status`` and ``smq stream adopt --reset | --keep``: the operator's answer when the
events stream is refused (another store's, or ahead of this store: ``infra.streamowner``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from infra import bus
from infra.settings import Settings
from infra.store import Store
from infra.streamowner import Finding, inspect
from projections.sqlview import SqlView
from service.container import open_app
from service.digest import SQL_TABLES
from service.replay import Storage

log = logging.getLogger("smq.stream")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("stream", help="whose is the events stream: status; adopt --reset (start it over "
                                      "from this store) or --keep (leave it, publish nothing)")
    p.add_argument("action", choices=["status", "adopt"])
    how = p.add_mutually_exclusive_group()
    how.add_argument("--reset", action="store_true",
                     help="delete the refused stream, start it over from this store's position 1 and "
                          "rebuild every view from it")
    how.add_argument("--keep", action="store_true",
                     help="leave the stream as it is; the relay and projector keep refusing it (the default)")


def _print(finding: Finding) -> None:
    print(f"{finding.describe()}; {'usable' if finding.usable else 'REFUSED'}")


async def reset(c: Storage, js: JetStreamContext) -> None:
    """Start the stream over from this store: the views first (so no projector applies anything
    of the old stream to the new start), then the relay's checkpoint, then the stream itself,
    deleted and created again (a purge would keep its duplicate window: the store's positions
    1, 2, … would be dropped as repeats of the old stream's)."""
    s = c.settings
    for view in c.views():
        if isinstance(view, SqlView):
            await view.reset(SQL_TABLES.get(view.name, ()))
        else:
            await view.reset()
    async with c.pool.connection() as conn:
        await conn.execute("delete from relay_checkpoint")
    await js.delete_stream(s.stream)
    await bus.ensure_stream(js, s.stream, s.events_subject, s.stream_max_age, s.stream_max_bytes,
                            s.stream_replicas)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """0: the stream is usable (now); 1: it is refused and stays so; 2: the servers are not named."""
    if not (settings.database_url and settings.nats_url and settings.redis_url):
        print("error: smq stream needs SMQ_DATABASE_URL, SMQ_NATS_URL and SMQ_REDIS_URL (`smq serve` "
              "prints them)", file=sys.stderr)
        return 2
    store = Store(open_app(settings.database_url), workers=2)
    pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=4, open=False,
                               kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=15)
    c = Storage(settings, pool, Redis.from_url(settings.redis_url), store)
    nc = await bus.connect(settings.nats_url, "smq-stream")
    js = nc.jetstream(timeout=10)
    try:
        assert c.store is not None
        finding = await inspect(js, settings.stream, c.store)
        _print(finding)
        if finding.usable:
            if args.action == "adopt":
                print("the stream is this store's: nothing to do")
            return 0
        if args.action == "adopt" and args.reset:
            await reset(c, js)
            log.warning("stream %s deleted and created again for store %s (was: %s); the relay republishes "
                        "from position 1 and the views rebuild", settings.stream, finding.ours,
                        finding.describe())
            print(f"stream {settings.stream} started over: the relay republishes this store's events from "
                  "position 1 and every view rebuilds from them")
            return 0
        print("the stream is kept as it is: the relay publishes nothing and the views read nothing from it; "
              "`smq stream adopt --reset` starts it over from this store, or set SMQ_NATS_STREAM to a "
              "stream of this store's own", file=sys.stderr)
        return 1
    finally:
        await nc.close()
        await c.redis.aclose()
        await pool.close()
        store.close()
