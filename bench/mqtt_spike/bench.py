"""Measurements for the spike: MQTT connects with the auth callout, publish throughput.

    cd bench/mqtt_spike && /work/main/.venv/bin/python bench.py [--connects 2000] [--messages 100000]

Two kinds of load: ``paho`` (paho-mqtt 2.x, a real client: its own Python cost is in the figure)
and ``raw`` (pre-encoded MQTT 3.1.1 packets written on asyncio sockets, ``bench/mqttwire.py``: only
a load generator, so the figure is the server's and the callout's, not a client library's). The
same load against the real service: ``python -m bench mqtt-connect|mqtt-publish`` (docs/performance.md).
"""
from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import threading
import time
import uuid
from pathlib import Path

import callout
import nats
import paho.mqtt.client as mqtt
import server

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.mqttwire import connect_packet, publish_packet  # noqa: E402 - the packets, shared with `python -m bench mqtt-*`


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def raw_connects(port: int, things: list[tuple[str, str]], total: int, conc: int):
    lat: list[float] = []
    refused = 0
    it = iter(range(total))

    async def worker():
        nonlocal refused
        for i in it:
            tid, secret = things[i % len(things)]
            t0 = time.perf_counter()
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(connect_packet(f"bench-{i}", tid, secret))
            ack = await r.readexactly(4)
            lat.append(time.perf_counter() - t0)
            refused += ack[3] != 0
            w.write(b"\xe0\x00")
            w.close()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return total / (time.perf_counter() - t0), lat, refused


def paho_connect_latency(port: int, tid: str, secret: str, n: int) -> list[float]:
    lat = []
    for i in range(n):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho-{i}")
        c.username_pw_set(tid, secret)
        done = threading.Event()
        c.on_connect = lambda *a, done=done: done.set()
        t0 = time.perf_counter()
        c.connect("127.0.0.1", port)
        c.loop_start()
        done.wait(5)
        lat.append(time.perf_counter() - t0)
        c.disconnect()
        c.loop_stop()
    return lat


async def nats_sink(nc, subject: str, n: int):
    """Subscribe
    returns (future of (rate, latencies), counter)."""
    lat: list[float] = []
    first = [0.0]
    done = asyncio.get_running_loop().create_future()

    async def cb(msg, done=done):
        now = time.time()
        if not lat:
            first[0] = time.perf_counter()
        lat.append(now - struct.unpack("!d", msg.data[:8])[0])
        if len(lat) >= n and not done.done():
            done.set_result(None)
    sub = await nc.subscribe(subject, cb=cb, pending_msgs_limit=10 * n, pending_bytes_limit=-1)
    await nc.flush()
    return sub, lat, first, done


async def raw_publish(port, tid, secret, topic, n, size, rate=0):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(connect_packet("raw-pub", tid, secret))
    assert (await r.readexactly(4))[3] == 0
    pad = b"x" * (size - 8)
    t0 = time.perf_counter()
    for i in range(n):
        w.write(publish_packet(topic, struct.pack("!d", time.time()) + pad))
        if i % 100 == 99:
            await w.drain()
            if rate:  # paced: stay on the offered rate
                await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
    await w.drain()
    return w


def paho_publish(port, tid, secret, topic, n, size, qos, rate=0):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho-pub-{qos}")
    c.username_pw_set(tid, secret)
    c.max_inflight_messages_set(200)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    pad = b"x" * (size - 8)
    last = None
    t0 = time.perf_counter()
    for i in range(n):
        last = c.publish(topic, struct.pack("!d", time.time()) + pad, qos=qos)
        if rate and i % 50 == 49:
            time.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
    last.wait_for_publish(60)
    return c


def report(name, n, elapsed, lat):
    print(f"{name:<52} {n / elapsed:>9.0f} msg/s  p50 {pct(lat, .5) * 1e3:7.2f} ms  "
          f"p99 {pct(lat, .99) * 1e3:7.2f} ms  ({len(lat)}/{n} received)")


async def main(args) -> None:
    iss = server.account_key()
    srv = server.Server(iss).start()
    r = callout.Responder(iss)
    cid = str(uuid.uuid4())
    things = [(str(uuid.uuid4()), uuid.uuid4().hex) for _ in range(100)]
    for tid, secret in things:
        r.things[tid] = callout.Thing(secret, {cid: {"m_read", "m_write"}})
    tid, secret = things[0]
    topic, subject = f"channels/{cid}/messages/t", f"channels.{cid}.messages.t"
    try:
        await r.start(srv.url("authz"))
        svc = await nats.connect(srv.url("svc"))
        # --- connects
        lat = await asyncio.to_thread(paho_connect_latency, srv.mqtt_port, tid, secret, 200)
        print(f"paho connect latency, sequential (200)                 p50 {pct(lat, .5)*1e3:.2f} ms"
              f"  p99 {pct(lat, .99)*1e3:.2f} ms")
        for conc in (1, 16, 64):
            n0, b0 = sum(r.decisions.values()), r.busy
            rate, lat, refused = await raw_connects(srv.mqtt_port, things, args.connects, conc)
            per = (r.busy - b0) / max(1, sum(r.decisions.values()) - n0)
            print(f"raw connects, {conc:>2} concurrent ({args.connects}):{'':<14}{rate:>7.0f}/s  "
                  f"p50 {pct(lat, .5)*1e3:.2f} ms  p99 {pct(lat, .99)*1e3:.2f} ms  refused {refused}"
                  f"  callout handler {per*1e6:.0f} µs/request")
        # --- publish QoS 0, raw load, to a NATS subscriber
        n = args.messages
        for name, qos, loader, rate in [
                ("raw QoS 0 publish -> NATS subscriber (flood)", 0, "raw", 0),
                ("raw QoS 0 -> NATS subscriber, paced 20,000/s", 0, "raw", 20000),
                ("paho QoS 0 publish -> NATS subscriber (flood)", 0, "paho", 0),
                ("paho QoS 0 -> NATS subscriber, paced 10,000/s", 0, "paho", 10000),
                ("paho QoS 1 publish -> NATS subscriber (flood)", 1, "paho", 0),
                ("paho QoS 1 -> NATS subscriber, paced 2,000/s", 1, "paho", 2000)]:
            m = n if qos == 0 else n // 5
            m = min(m, rate * 3) if rate else m
            sub, lat, first, done = await nats_sink(svc, subject, m)
            t0 = time.perf_counter()
            if loader == "raw":
                w = await raw_publish(srv.mqtt_port, tid, secret, topic, m, args.size, rate)
            else:
                c = await asyncio.to_thread(paho_publish, srv.mqtt_port, tid, secret, topic, m,
                                            args.size, qos, rate)
            try:
                await asyncio.wait_for(done, 60)
            except TimeoutError:
                pass
            report(name, m, time.perf_counter() - t0, lat)
            await sub.unsubscribe()
            if loader == "raw":
                w.close()
            else:
                c.disconnect()
                c.loop_stop()
        # --- MQTT -> MQTT, QoS 0 and 1 (paho both ends)
        for qos in (0, 1):
            m = n // 5
            lat = []
            got = threading.Event()
            sc = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{qos}")
            sc.username_pw_set(*things[1])

            def on_msg(_c, _u, msg, lat=lat, m=m, got=got):
                lat.append(time.time() - struct.unpack("!d", msg.payload[:8])[0])
                if len(lat) >= m:
                    got.set()
            sc.on_message = on_msg
            sc.connect("127.0.0.1", srv.mqtt_port)
            sc.subscribe(topic, qos=qos)
            sc.loop_start()
            await asyncio.sleep(0.5)
            t0 = time.perf_counter()
            c = await asyncio.to_thread(paho_publish, srv.mqtt_port, tid, secret, topic, m,
                                        args.size, qos)
            await asyncio.to_thread(got.wait, 60)
            report(f"paho QoS {qos} publish -> paho QoS {qos} subscriber", m,
                   time.perf_counter() - t0, lat)
            c.disconnect()
            c.loop_stop()
            sc.disconnect()
            sc.loop_stop()
        print("callout decisions", r.decisions)
    finally:
        srv.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--connects", type=int, default=2000)
    p.add_argument("--messages", type=int, default=100000)
    p.add_argument("--size", type=int, default=64)
    asyncio.run(main(p.parse_args()))
