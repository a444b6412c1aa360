"""The MQTT scenarios: things provisioned and connected to a channel through the public HTTP
API, then load on the broker's MQTT listener (``--mqtt-url``) with the raw load generator of
``bench.mqttwire``, every device authorized by the server (smq-es: NATS's auth callout answered
by the ``authz`` role).

mqtt-connect
    A closed loop of device connects: TCP connect, CONNECT (username = thing id, password =
    its secret), CONNACK, DISCONNECT, over ``--pool`` things connected to one channel, a fresh
    client id each. ``rps`` = connects/s; latency = TCP connect to CONNACK.
mqtt-publish
    ``--clients`` publisher connections (one thing, ``m_write``) and one subscriber (another
    thing, ``m_read``) on ``channels/<cid>/messages/bench``, at ``--qos`` 0 or 1 (the
    subscription at the same QoS; QoS 1 publishers keep at most ``--inflight`` unacknowledged),
    flooding (``--rate 0``) or paced at ``--rate`` messages/s, for ``--warmup`` +
    ``--duration`` seconds. ``requests`` = measured messages received, ``rps`` = received /
    (last arrival - first measured send); latency = publisher's clock to subscriber's clock
    (one process: the same clock). Under a flood the latencies are queueing in the generator and
    the broker; the paced runs give the latency below saturation.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench import mqttwire
from bench.runner import Api, Result, SetupFailed, Unsupported, closed_loop, summary_ms

MQTT_SCENARIOS = {"mqtt-connect": 16, "mqtt-publish": 1}  # name: default clients


def _secret(thing: dict[str, Any]) -> str:
    secret = (thing.get("credentials") or {}).get("secret") or thing.get("key")
    if not secret:
        raise SetupFailed("a created thing came back without its secret")
    return str(secret)


async def connected_things(api: Api, n: int) -> tuple[str, list[tuple[str, str]]]:
    """A channel and ``n`` things connected to it (publish and subscribe): (channel id,
    [(thing id, secret)])."""
    try:
        things = await api.create_things(n)
        channel = (await api.create_channels(1))[0]
    except Unsupported as exc:
        raise Unsupported(f"cannot create things and a channel: {exc}") from exc
    cid = channel["id"]
    ids = [t["id"] for t in things]
    try:
        for i in range(0, len(ids), 100):
            await api.expect("POST", "/connect", {"channel_ids": [cid], "thing_ids": ids[i:i + 100]},
                             ok=(200, 201, 204))
    except Unsupported:
        for tid in ids:
            await api.expect("PUT", f"/channels/{cid}/things/{tid}", ok=(200, 201))
    return cid, [(t["id"], _secret(t)) for t in things]


async def _reachable(host: str, port: int) -> None:
    try:
        code = await mqttwire.connect_once(host, port, "bench-probe", "bench-probe", "not-a-secret", bound=5)
    except (OSError, TimeoutError) as exc:
        raise SetupFailed(f"no MQTT listener at {host}:{port} ({type(exc).__name__}); set --mqtt-url") from exc
    if code == 0:
        raise SetupFailed("the MQTT listener admitted an unknown thing: no authorization to measure")


async def mqtt_connect(api: Api, args: argparse.Namespace, clients: int) -> Result:
    host, port = mqttwire.address(args.mqtt_url)
    await _reachable(host, port)
    t0 = time.perf_counter()
    _cid, things = await connected_things(api, max(1, args.pool))
    setup_s = time.perf_counter() - t0
    tid, secret = things[0]
    if (code := await mqttwire.connect_once(host, port, "bench-first", tid, secret)) != 0:
        raise SetupFailed(f"a provisioned thing's MQTT connect was refused (CONNACK {code})")
    run = f"{time.time_ns() % 10**9:x}"

    async def call(_c: int, n: int) -> str:
        tid, secret = things[n % len(things)]
        code = await mqttwire.connect_once(host, port, f"bench-{run}-{n}", tid, secret)
        return "accepted" if code == 0 else f"refused:{code}"

    res = await closed_loop("mqtt-connect", call, clients, args.duration, args.requests, args.warmup)
    res.extra.update({"things": len(things), "setup_s": round(setup_s, 2)})
    return res


async def mqtt_publish(api: Api, args: argparse.Namespace, clients: int) -> Result:
    host, port = mqttwire.address(args.mqtt_url)
    await _reachable(host, port)
    qos = 1 if args.qos else 0
    t0 = time.perf_counter()
    cid, things = await connected_things(api, 2)
    (pub_id, pub_secret), (sub_id, sub_secret) = things
    topic = f"channels/{cid}/messages/bench"
    r, w = await mqttwire.open_session(host, port, f"bench-sub-{cid[:8]}", sub_id, sub_secret)
    sub = mqttwire.Subscriber(r, w)
    await sub.subscribe(topic, qos)
    pubs = []
    for i in range(max(1, clients)):
        r, w = await mqttwire.open_session(host, port, f"bench-pub-{cid[:8]}-{i}", pub_id, pub_secret)
        pubs.append(mqttwire.Publisher(r, w, topic, args.size, qos, args.inflight))
    setup_s = time.perf_counter() - t0
    try:
        started, spent, sent = await pace(pubs, args.rate, args.duration, args.warmup,
                                                   stop=lambda: sub.closed is not None)
        for p in pubs:
            await p.settle(args.drain)
        await sub.wait_for(sent, args.drain)
    finally:
        for p in pubs:
            await p.close()
        await sub.close()
    res = Result("mqtt-publish", clients, latencies=sub.latencies)
    res.statuses["delivered"] = sub.received
    if sent > sub.received:
        res.statuses["lost"] = sent - sub.received
    res.elapsed = max(sub.last - started, 1e-9) if sub.received else 0.0
    res.extra.update({"qos": qos, "rate": args.rate or "flood", "sent": sent,
                      "sent_per_s": round(sent / spent, 1) if spent else 0.0,
                      "payload_bytes": max(args.size, mqttwire.HEAD), "setup_s": round(setup_s, 2)})
    if qos:
        acks = summary_ms([x for p in pubs for x in p.ack_latencies])
        res.extra.update({"inflight": args.inflight, "puback_p50_ms": acks["p50_ms"],
                          "puback_p99_ms": acks["p99_ms"]})
    if sub.closed:
        res.extra["closed"] = sub.closed
    return res


async def pace(publishers: list[mqttwire.Publisher], rate: float, duration: float, warmup: float,
               batch: int = 50, stop: Callable[[], bool] = lambda: False) -> tuple[float, float, int]:
    """Publish round-robin over ``publishers`` at ``rate`` messages/s (0: as fast as they
    drain) for ``warmup`` + ``duration`` seconds. (perf_counter of the first measured
    message, seconds spent publishing measured messages, measured messages sent)."""
    t0 = time.perf_counter()
    measure_from, end = t0 + warmup, t0 + warmup + duration
    started = 0.0
    sent = measured_sent = 0
    i = 0
    while not stop():
        now = time.perf_counter()
        if now >= end:
            break
        measured = now >= measure_from
        if measured and not started:
            started = now
        await publishers[i % len(publishers)].batch(batch, measured)
        i += 1
        sent += batch
        measured_sent += batch if measured else 0
        if rate:
            await asyncio.sleep(max(0.0, t0 + sent / rate - time.perf_counter()))
        else:
            await asyncio.sleep(0)  # let the subscriber read
    return started, (time.perf_counter() - started) if started else 0.0, measured_sent


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mqtt-url", default="tcp://127.0.0.1:1883",
                   help="mqtt-*: the broker's MQTT listener (default %(default)s)")
    p.add_argument("--qos", type=int, choices=(0, 1), default=0, help="mqtt-publish: QoS (default %(default)s)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="mqtt-publish: messages/s offered, 0 for a flood (default %(default)s)")
    p.add_argument("--size", type=int, default=64, help="mqtt-publish: payload bytes (default %(default)s, at least 9)")
    p.add_argument("--inflight", type=int, default=256,
                   help="mqtt-publish: QoS 1 messages unacknowledged per publisher (default %(default)s)")
    p.add_argument("--drain", type=float, default=5.0,
                   help="mqtt-publish: seconds to wait for the last messages (default %(default)s)")
