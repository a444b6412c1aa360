"""``python -m bench <scenario>... [options]``: one JSON line per scenario run."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

from bench.mqttload import MQTT_SCENARIOS, add_arguments, mqtt_connect, mqtt_publish
from bench.mqttwire import Refused
from bench.runner import Api, SetupFailed, Unsupported, closed_loop, failed_line, unsupported_line
from bench.scenarios import SCENARIOS

INTERNAL = {"projection-lag": 16, "replay": 1}
ALL = [*SCENARIOS, *INTERNAL, *MQTT_SCENARIOS]

EPILOG = """scenarios:
  create-thing    POST /things
  bulk-create     POST /things/bulk, --batch things a call (100); extra.things_per_s
  get-thing       GET /things/{id} over --pool things created first (1000)
  list            GET /things?limit=100 [--metadata JSON]; --seed N things first, by bulk calls,
                  metadata {"bench_group": "g<i % --groups>"}: --metadata '{"bench_group":"g0"}'
                  matches 1/--groups of them (default 100; --seed 0 with a pre-seeded --identity)
  connect         PUT /channels/{cid}/things/{tid} over --pairs-side^2 pre-created pairs
  publish         POST /http/channels/{cid}/messages, Authorization: Thing <secret>
  issue-token     POST /users/tokens/issue (argon2 verification)
  provision       POST /mapping, a fresh external_id each (4 clients by default)
  projection-lag  create-thing load; time from answer to the view's position in PostgreSQL
                  (--database-url); extra.lag_p50_ms, lag_p99_ms
  replay          read the whole store from position 0 and apply every view into a fresh
                  database (--database-url); extra.events_per_s
  mqtt-connect    MQTT device connects (CONNECT, CONNACK, DISCONNECT) authorized by the server,
                  over --pool things connected to a channel (--mqtt-url); rps = connects/s
  mqtt-publish    --clients MQTT publishers (1) -> one MQTT subscriber on a channel, --qos 0|1,
                  a flood (--rate 0) or paced at --rate msg/s; latency = publisher's clock to
                  the subscriber's; rps = messages/s received
  all             every HTTP scenario in turn (the internal and MQTT ones are named explicitly)

A scenario whose route the server lacks (404/405) prints "unsupported": true.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="Closed-loop load generator "
                                "for the SuperMQ HTTP API (smq-es or upstream).", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="+", choices=[*ALL, "all"], metavar="scenario",
                   help="one or more of: " + ", ".join([*ALL, "all"]))
    p.add_argument("--url", default="http://127.0.0.1:9000", help="base URL of the API (default %(default)s)")
    p.add_argument("--clients", type=int, default=None,
                   help="concurrent closed-loop clients (default 16; provision 4)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--duration", type=float, default=10.0, help="seconds measured (default %(default)s)")
    g.add_argument("--requests", type=int, default=None, help="requests measured, instead of a duration")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of unrecorded load first (default %(default)s)")
    p.add_argument("--identity", help="an existing user's identity (default: create a fresh user)")
    p.add_argument("--secret", help="that user's secret")
    p.add_argument("--metadata", help="list: a JSON metadata filter, e.g. '{\"bench_group\":\"g0\"}'")
    p.add_argument("--seed", type=int, default=100, help="list: things created first by bulk calls (default %(default)s)")
    p.add_argument("--groups", type=int, default=10, help="list: seeded things carry bench_group g0..g<N-1> (default %(default)s)")
    p.add_argument("--seed-clients", type=int, default=4, help="list: concurrent bulk calls while seeding (default %(default)s)")
    p.add_argument("--seed-wait", type=float, default=300.0, help="list: seconds to wait for the view to show the seed")
    p.add_argument("--limit", type=int, default=100, help="list: page size (default %(default)s)")
    p.add_argument("--offset", type=int, default=0, help="list: offset (default %(default)s)")
    p.add_argument("--batch", type=int, default=100, help="bulk-create: things a call (default %(default)s)")
    p.add_argument("--pool", type=int, default=1000,
                   help="get-thing: things created to read; mqtt-connect: things connecting (default %(default)s)")
    p.add_argument("--pairs-side", type=int, default=100,
                   help="connect: things and channels created; pairs = side^2 (default %(default)s)")
    p.add_argument("--database-url", help="projection-lag, replay: the server's PostgreSQL (default $SMQ_DATABASE_URL)")
    p.add_argument("--redis-url", help="replay: also apply the Redis view, under a throw-away prefix")
    p.add_argument("--view", default="things", help="projection-lag: the view whose position is polled")
    p.add_argument("--lag-load", choices=["create-thing", "bulk-create"], default="create-thing",
                   help="projection-lag: the load (bulk-create: --batch things a call, every call sampled)")
    p.add_argument("--lag-every", type=int, default=5, help="projection-lag: sample one command in N (default %(default)s)")
    p.add_argument("--lag-poll-ms", type=float, default=2.0, help="projection-lag: poll interval (default %(default)s)")
    p.add_argument("--lag-drain", type=float, default=30.0, help="projection-lag: seconds to wait for the last samples")
    p.add_argument("--replay-batch", type=int, default=1000, help="replay: events read a batch (default %(default)s)")
    p.add_argument("--keep-replay-db", action="store_true", help="replay: keep the rebuilt database")
    add_arguments(p)
    return p


async def run_one(name: str, args: argparse.Namespace, api: Api | None) -> dict[str, Any]:
    clients = args.clients or INTERNAL.get(name) or MQTT_SCENARIOS.get(name) or SCENARIOS[name][1]
    try:
        if name == "replay":
            from bench.internal import replay

            res = await replay(args)
            line = res.line()
            line["requests"], line["rps"] = res.extra["events"], res.extra["events_per_s"]
            line["extra"]["latencies_are"] = "per batch"
            return line
        assert api is not None
        if name == "projection-lag":
            from bench.internal import projection_lag

            return (await projection_lag(api, args, clients)).line()
        if name in MQTT_SCENARIOS:
            run = mqtt_connect if name == "mqtt-connect" else mqtt_publish
            return (await run(api, args, clients)).line()
        prepare, _ = SCENARIOS[name]
        t0 = time.perf_counter()
        prepared = await prepare(api, args)
        setup_s = time.perf_counter() - t0
        res = await closed_loop(name, prepared.call, clients, args.duration, args.requests, args.warmup)
        res.extra.update(prepared.extra or {})
        if prepared.finish:
            prepared.finish(res)
        res.extra["setup_s"] = round(setup_s, 2)
        return res.line()
    except Unsupported as exc:
        return unsupported_line(name, clients, str(exc))
    except (SetupFailed, Refused, aiohttp.ClientError, OSError) as exc:
        return failed_line(name, clients, f"{type(exc).__name__}: {exc}")


async def amain(args: argparse.Namespace) -> int:
    names: list[str] = []
    for s in args.scenario:
        names.extend(SCENARIOS if s == "all" else [s])
    code = 0
    need_http = any(n != "replay" for n in names)
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        api = None
        if need_http:
            api = Api(args.url, session)
            try:
                await api.login(args.identity, args.secret)
            except (Unsupported, SetupFailed, aiohttp.ClientError, OSError) as exc:
                for n in names:
                    if n == "replay":
                        continue
                    print(json.dumps(failed_line(n, args.clients or 0, f"login: {exc}")), flush=True)
                names = [n for n in names if n == "replay"]
                code = 1
        for name in names:
            line = await run_one(name, args, api)
            if line.get("failed"):
                code = 1
            print(json.dumps(line), flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
