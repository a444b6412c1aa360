"""``smq events tail``: follow the event log, over HTTP or from the JetStream stream."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlencode

import msgspec

from client.http import ApiError, call, user_token
from infra.settings import Settings


def events_command(args: argparse.Namespace, settings: Settings) -> int:
    """``smq events tail``: follow the event log, one JSON line per event, until Ctrl-C
    (or ``--count`` events, or ``--idle-exit`` seconds without one)."""
    try:
        if args.nats:
            return asyncio.run(_tail_nats(args, settings))
        return _tail_http(args)
    except KeyboardInterrupt:
        return 0


def _tail_http(args: argparse.Namespace) -> int:
    """Pages of ``GET /events?after=…`` (administrators), each after the last one's ``next``."""
    token, after, seen = user_token(args), args.after, 0
    quiet_since = time.monotonic()
    while True:
        query = {k: v for k, v in (("after", after), ("limit", 500), ("aggregate", args.aggregate),
                                   ("type", args.type)) if v is not None}
        page = call("GET", f"/events?{urlencode(query)}", token=token)
        for ev in page["events"]:
            print(json.dumps(ev), flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return 0
        after = page["next"]
        if page["events"]:
            quiet_since = time.monotonic()
        elif args.idle_exit is not None and time.monotonic() - quiet_since >= args.idle_exit:
            return 0
        else:
            time.sleep(args.interval)


async def _tail_nats(args: argparse.Namespace, settings: Settings) -> int:
    """The JetStream stream itself, from the first retained event after ``--after``."""
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from infra import bus
    from projections.envelope import decode
    from projections.events import redact

    if not settings.nats_url:
        raise ApiError("--nats needs SMQ_NATS_URL (`smq serve` prints it)")
    nc = await bus.connect(settings.nats_url, "smq-events-tail")
    try:
        js, root = nc.jetstream(), settings.events_subject
        start, first = await bus.sequence_after(js, settings.stream, root, args.after)
        if first > args.after + 1:
            print(f"warning: the stream starts at position {first}; earlier events: "
                  f"GET /events?after={args.after}", file=sys.stderr)
        sub = await js.subscribe(f"{root}.{args.aggregate or '*'}.{args.type or '*'}", stream=settings.stream,
                                 ordered_consumer=True, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                 config=ConsumerConfig(opt_start_seq=start))
        seen = 0
        while not (args.count and seen >= args.count):
            try:
                msg = await sub.next_msg(timeout=args.idle_exit or 3600)
            except (TimeoutError, NatsTimeout):
                if args.idle_exit is not None:
                    break
                continue
            ev = msgspec.to_builtins(decode(msg.data))
            if ev["position"] > args.after:  # below it only if positions were re-published
                print(json.dumps({**ev, "data": redact(ev["data"])}), flush=True)
                seen += 1
    finally:
        await nc.close()
    return 0
