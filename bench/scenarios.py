"""The HTTP scenarios: each prepares its data through the public API, then returns the call
that the closed loop repeats. Nothing here imports the project's code."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bench.runner import Api, Call, Result, SetupFailed, Unsupported, route_of

# A prepared scenario: the call to repeat, and what to add to the result afterwards.
Finish = Callable[[Result], None]


@dataclass
class Prepared:
    call: Call
    finish: Finish | None = None
    extra: dict[str, Any] | None = None


def _sender(api: Api, method: str, content_type: str | None = "application/json",
            auth: str | None = None) -> Callable[[str, bytes | None], Awaitable[int]]:
    """A lean request for the loop: pre-built headers, the body read and dropped."""
    headers = {"Authorization": auth} if auth else api.auth()
    if content_type:
        headers["Content-Type"] = content_type
    base, session = api.base, api.s

    async def send(path: str, body: bytes | None = None) -> int:
        async with session.request(method, base + path, data=body, headers=headers) as r:
            await r.read()
            return r.status
    return send


async def probe(send: Callable[[str, bytes | None], Awaitable[int]], path: str, body: bytes | None,
                ok: tuple[int, ...], what: str) -> None:
    status = await send(path, body)
    if status in (404, 405):
        raise Unsupported(f"{what} {route_of(path)} answered {status}")
    if status not in ok:
        raise SetupFailed(f"{what} {path} answered {status}")


async def create_thing(api: Api, args: argparse.Namespace) -> Prepared:
    send = _sender(api, "POST")
    body = json.dumps({"name": "bench-thing", "metadata": {"bench": "create"}}).encode()
    await probe(send, "/things", body, (201,), "POST")

    async def call(_c: int, _n: int) -> int:
        return await send("/things", body)
    return Prepared(call)


async def bulk_create(api: Api, args: argparse.Namespace) -> Prepared:
    send = _sender(api, "POST")
    size = args.batch
    body = json.dumps([{"name": f"bench-bulk-{i}"} for i in range(size)]).encode()
    await probe(send, "/things/bulk", body, (200, 201), "POST")

    async def call(_c: int, _n: int) -> int:
        return await send("/things/bulk", body)

    def finish(res: Result) -> None:
        ok = sum(n for k, n in res.statuses.items() if k in ("200", "201"))
        res.extra["batch"] = size
        res.extra["things_per_s"] = round(ok * size / res.elapsed, 1) if res.elapsed else 0.0
    return Prepared(call, finish)


async def wait_visible(api: Api, expected: int, wait: float) -> float:
    """Until the caller's list shows ``expected`` things (reads wait for writes only so long)."""
    t0 = time.perf_counter()
    while (seen := await _total(api, "")) < expected:
        if time.perf_counter() - t0 > wait:
            raise SetupFailed(f"the view shows {seen} of {expected} things after {wait}s")
        await asyncio.sleep(0.2)
    return time.perf_counter() - t0


async def get_thing(api: Api, args: argparse.Namespace) -> Prepared:
    try:
        before = await _total(api, "")
        things = await api.create_things(args.pool)
        waited = await wait_visible(api, before + len(things), args.seed_wait)
    except Unsupported as exc:
        raise Unsupported(f"cannot create and list the things to read: {exc}") from exc
    ids = [t["id"] for t in things]
    send = _sender(api, "GET", content_type=None)
    await probe(send, f"/things/{ids[-1]}", None, (200,), "GET")

    async def call(_c: int, n: int) -> int:
        return await send(f"/things/{ids[(n * 7919) % len(ids)]}", None)
    return Prepared(call, extra={"pool": len(ids), "visible_after_s": round(waited, 2)})


async def _total(api: Api, query: str) -> int:
    data, _ = await api.expect("GET", f"/things?limit=1{query}")
    return int(data.get("total", 0))


async def list_things(api: Api, args: argparse.Namespace) -> Prepared:
    meta_q = ""
    if args.metadata:
        json.loads(args.metadata)  # must be JSON
        meta_q = "&metadata=" + quote(args.metadata)
    before = await _total(api, "")
    extra: dict[str, Any] = {"seeded": args.seed, "offset": args.offset}
    if args.seed:
        groups = max(1, args.groups)
        t0 = time.perf_counter()
        await api.create_things(args.seed, concurrency=args.seed_clients,
                                item=lambda i: {"name": f"bench-list-{i}",
                                                "metadata": {"bench_group": f"g{i % groups}"}})
        extra["seed_s"] = round(time.perf_counter() - t0, 2)
        extra["seed_things_per_s"] = round(args.seed / (time.perf_counter() - t0), 1)
        await wait_visible(api, before + args.seed, args.seed_wait)
        extra["seed_visible_s"] = round(time.perf_counter() - t0, 2)
    extra["total"] = await _total(api, "")
    if meta_q:
        extra["metadata"] = json.loads(args.metadata)
        extra["matching"] = await _total(api, meta_q)
    path = f"/things?limit={args.limit}&offset={args.offset}{meta_q}"
    send = _sender(api, "GET", content_type=None)
    await probe(send, path, None, (200,), "GET")

    async def call(_c: int, _n: int) -> int:
        return await send(path, None)
    return Prepared(call, extra=extra)


async def connect(api: Api, args: argparse.Namespace) -> Prepared:
    side = max(1, args.pairs_side)
    try:
        things = await api.create_things(side)
        channels = await api.create_channels(side)
    except Unsupported as exc:
        raise Unsupported(f"cannot create things and channels: {exc}") from exc
    pairs = [(c["id"], t["id"]) for c in channels for t in things]
    send = _sender(api, "PUT", content_type=None)
    cid, tid = pairs[-1]
    await probe(send, f"/channels/{cid}/things/{tid}", None, (200, 201), "PUT")

    async def call(_c: int, n: int) -> int:
        c, t = pairs[n % len(pairs)]
        return await send(f"/channels/{c}/things/{t}", None)
    return Prepared(call, extra={"pairs": len(pairs)})


SENML = json.dumps([{"bn": "bench:", "bt": 1.7e9, "n": "temperature", "u": "Cel", "v": 24.5}]).encode()


async def publish(api: Api, args: argparse.Namespace) -> Prepared:
    try:
        thing = (await api.create_things(1))[0]
        channel = (await api.create_channels(1))[0]
        await api.expect("PUT", f"/channels/{channel['id']}/things/{thing['id']}", ok=(200, 201))
    except Unsupported as exc:
        raise Unsupported(f"cannot set up a connected thing: {exc}") from exc
    secret = thing.get("credentials", {}).get("secret") or thing.get("key")
    send = _sender(api, "POST", content_type="application/senml+json", auth=f"Thing {secret}")
    path = f"/http/channels/{channel['id']}/messages"
    await probe(send, path, SENML, (202, 200), "POST")

    async def call(_c: int, _n: int) -> int:
        return await send(path, SENML)
    return Prepared(call)


async def issue_token(api: Api, args: argparse.Namespace) -> Prepared:
    send = _sender_no_auth(api)
    body = json.dumps({"identity": api.identity, "secret": api.secret}).encode()
    await probe(send, "/users/tokens/issue", body, (201, 200), "POST")

    async def call(_c: int, _n: int) -> int:
        return await send("/users/tokens/issue", body)
    return Prepared(call)


def _sender_no_auth(api: Api) -> Callable[[str, bytes | None], Awaitable[int]]:
    base, session = api.base, api.s
    headers = {"Content-Type": "application/json"}

    async def send(path: str, body: bytes | None = None) -> int:
        async with session.post(base + path, data=body, headers=headers) as r:
            await r.read()
            return r.status
    return send


async def provision(api: Api, args: argparse.Namespace) -> Prepared:
    send = _sender(api, "POST")
    run = secrets.token_hex(4)

    def body(n: int) -> bytes:
        return json.dumps({"external_id": f"bench-{run}-{n}", "external_key": secrets.token_hex(8),
                           "name": f"bench-gw-{n}"}).encode()
    await probe(send, "/mapping", body(-1), (201, 200), "POST")

    async def call(_c: int, n: int) -> int:
        return await send("/mapping", body(n))
    return Prepared(call)


SCENARIOS: dict[str, tuple[Callable[[Api, argparse.Namespace], Awaitable[Prepared]], int]] = {
    # name: (prepare, default clients)
    "create-thing": (create_thing, 16),
    "bulk-create": (bulk_create, 16),
    "get-thing": (get_thing, 16),
    "list": (list_things, 16),
    "connect": (connect, 16),
    "publish": (publish, 16),
    "issue-token": (issue_token, 16),
    "provision": (provision, 4),
}
