"""The ``smq`` commands that talk to the HTTP API of a running service (``SMQ_URL``): users,
things, channels, messages, events, and the gateway commands (``client.gateways``)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec

from client import gateways as cli_gateways
from infra.settings import Settings


class ApiError(Exception):
    pass


def call(method: str, path: str, body: Any = None, token: str | None = None,
         thing_secret: str | None = None, raw_body: bytes | None = None) -> Any:
    base = os.environ.get("SMQ_URL", "http://127.0.0.1:9000").rstrip("/")
    data = raw_body if raw_body is not None else json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if thing_secret:
        req.add_header("Authorization", f"Thing {thing_secret}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the user's own URL
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            message = json.loads(raw).get("error", raw.decode())
        except ValueError:
            message = raw.decode(errors="replace")
        raise ApiError(f"{exc.code}: {message}") from exc
    except urllib.error.URLError as exc:
        raise ApiError(f"cannot reach {base}: {exc.reason}") from exc
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")  # PEM documents: the CA, the CRL


def _token(args: argparse.Namespace) -> str:
    token = getattr(args, "token", None) or os.environ.get("SMQ_TOKEN") or os.environ.get("TOKEN")
    if not token:
        raise ApiError("a user token is needed: pass --token or set SMQ_TOKEN")
    return token


def users_command(args: argparse.Namespace) -> Any:
    a = args.args
    if args.action == "create":
        if len(a) == 2:
            name, identity, secret = "", a[0], a[1]
        elif len(a) == 3:
            name, identity, secret = a
        else:
            raise ApiError("usage: smq users create [<name>] <identity> <secret>")
        return call("POST", "/users", {"name": name, "credentials": {"identity": identity, "secret": secret}})
    if args.action == "token":
        if len(a) != 2:
            raise ApiError("usage: smq users token <identity> <secret>")
        tokens = call("POST", "/users/tokens/issue", {"identity": a[0], "secret": a[1]})
        if args.json:
            return tokens
        print(f"created: {tokens['access_token']}")
        return None
    if args.action == "profile":
        return call("GET", "/users/profile", token=_token(args))
    if args.action == "get":
        path = "/users" if not a or a[0] == "all" else f"/users/{a[0]}"
        return call("GET", path, token=_token(args))
    if args.action in ("enable", "disable"):
        return call("POST", f"/users/{a[0]}/{args.action}", token=_token(args))
    if args.action == "update":
        return call("PATCH", f"/users/{a[0]}", json.loads(a[1]), token=_token(args))
    raise ApiError(f"unknown users action {args.action!r}")


_CSV_COLUMNS = ("name", "id", "secret", "description", "tags", "metadata")


def _csv_items(text: str) -> list[dict[str, Any]]:
    """Rows of a CSV file: with a header naming columns among name, id, secret, description,
    tags (separated by ``;``) and metadata (JSON); without one, ``name[,secret]`` per line."""
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    if set(header) <= set(_CSV_COLUMNS) and "name" in header:
        records = [dict(zip(header, (c.strip() for c in r), strict=False)) for r in rows[1:]]
    else:
        records = [{"name": r[0].strip(), **({"secret": r[1].strip()} if len(r) > 1 and r[1].strip() else {})}
                   for r in rows]
    items: list[dict[str, Any]] = []
    for rec in records:
        item: dict[str, Any] = {"name": rec.get("name", "")}
        if rec.get("id"):
            item["id"] = rec["id"]
        if rec.get("secret"):
            item["credentials"] = {"secret": rec["secret"]}
        if rec.get("description"):
            item["description"] = rec["description"]
        if rec.get("tags"):
            item["tags"] = [t.strip() for t in rec["tags"].split(";") if t.strip()]
        if rec.get("metadata"):
            try:
                item["metadata"] = json.loads(rec["metadata"])
            except ValueError as exc:
                raise ApiError(f"metadata of {item['name']!r} is not JSON") from exc
        items.append(item)
    return items


def load_items(path: str) -> list[dict[str, Any]]:
    """Items for a bulk create from a JSON array or a CSV file (``-`` reads stdin)."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    if path.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ApiError(f"{path} is not valid JSON") from exc
        items = data if isinstance(data, list) else [data]
    else:
        items = _csv_items(text)
    if not items:
        raise ApiError(f"{path} holds no items")
    return items


def entities_command(kind: str, args: argparse.Namespace) -> Any:
    """``smq things|channels create|get|list|update|enable|disable|share``."""
    a, token = args.args, _token(args)
    base = f"/{kind}"
    if args.action == "create":
        if args.file:
            return call("POST", f"{base}/bulk", load_items(args.file), token=token)
        if len(a) > 1:
            raise ApiError(f"usage: smq {kind} create [<name>] | --file <json or csv>")
        body: dict[str, Any] = {"name": a[0] if a else ""}
        if args.metadata:
            body["metadata"] = json.loads(args.metadata)
        return call("POST", base, body, token=token)
    if args.action in ("get", "list"):
        if args.action == "get" and a and a[0] != "all":
            return call("GET", f"{base}/{a[0]}", token=token)
        query = {k: v for k, v in (("offset", args.offset), ("limit", args.limit), ("name", args.name),
                                   ("metadata", args.metadata), ("status", args.status)) if v is not None}
        return call("GET", base + (f"?{urlencode(query)}" if query else ""), token=token)
    if not a:
        raise ApiError(f"usage: smq {kind} {args.action} <id> …")
    if args.action in ("enable", "disable"):
        return call("POST", f"{base}/{a[0]}/{args.action}", token=token)
    if args.action == "update":
        # smq things update <id> '<json>' | smq things update <id> tags '["a"]' | … secret <secret>
        if len(a) == 3 and a[1] == "tags" and kind == "things":
            return call("PATCH", f"{base}/{a[0]}/tags", {"tags": json.loads(a[2])}, token=token)
        if len(a) == 3 and a[1] == "secret" and kind == "things":
            return call("PATCH", f"{base}/{a[0]}/secret", {"secret": a[2]}, token=token)
        if len(a) != 2:
            raise ApiError(f"usage: smq {kind} update <id> '<json>'")
        return call("PATCH", f"{base}/{a[0]}", json.loads(a[1]), token=token)
    if args.action == "share":
        if len(a) < 3:
            raise ApiError(f"usage: smq {kind} share <id> <user_id> <action>[,<action>…]")
        return call("POST", f"{base}/{a[0]}/share", {"user_ids": [a[1]], "actions": a[2].split(",")},
                    token=token)
    raise ApiError(f"unknown {kind} action {args.action!r}")


CONNECTION_ACTIONS = {"things": ["connect", "disconnect", "connections", "identify"],
                      "channels": ["connections"]}


def _page_query(args: argparse.Namespace) -> str:
    query = {k: v for k, v in (("offset", args.offset), ("limit", args.limit), ("status", args.status))
             if v is not None}
    return f"?{urlencode(query)}" if query else ""


def connections_command(kind: str, args: argparse.Namespace) -> Any:
    """``smq things connect|disconnect <tid> <cid>``, ``smq things connections <tid>``,
    ``smq things identify <secret>``, ``smq channels connections <cid>``."""
    a = args.args
    if args.action == "identify":
        if len(a) != 1:
            raise ApiError("usage: smq things identify <thing secret>")
        return call("POST", "/identify", thing_secret=a[0])
    if args.action in ("connect", "disconnect"):
        if len(a) != 2:
            raise ApiError(f"usage: smq things {args.action} <thing_id> <channel_id>")
        method = "PUT" if args.action == "connect" else "DELETE"
        return call(method, f"/channels/{a[1]}/things/{a[0]}", token=_token(args))
    if len(a) != 1:
        raise ApiError(f"usage: smq {kind} connections <id>")
    other = "channels" if kind == "things" else "things"
    return call("GET", f"/{kind}/{a[0]}/{other}{_page_query(args)}", token=_token(args))


def messages_command(args: argparse.Namespace) -> Any:
    """``smq messages send <channel_id> <json> <thing secret>``: the JSON is sent as given."""
    a = args.args
    if len(a) != 3:
        raise ApiError("usage: smq messages send <channel_id> <json> <thing secret>")
    json.loads(a[1])  # a ValueError here is the user's typo, reported before sending
    path = f"/http/channels/{a[0]}/messages" + (f"/{args.subtopic}" if args.subtopic else "")
    call("POST", path, raw_body=a[1].encode(), thing_secret=a[2])
    return {"status": "accepted"}


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
    token, after, seen = _token(args), args.after, 0
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


def add_parsers(sub: Any) -> None:
    """The client commands' parsers (the gateway commands': ``client.gateways.add_parsers``)."""
    users = sub.add_parser("users", help="user accounts and tokens")
    users.add_argument("action", choices=["create", "token", "profile", "get", "enable", "disable", "update"])
    users.add_argument("args", nargs="*")
    users.add_argument("--token", help="access token (or SMQ_TOKEN)")
    users.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    for kind in ("things", "channels"):
        p = sub.add_parser(kind, help=f"{kind}: create (one or from a JSON/CSV file), get, list, update, …")
        p.add_argument("action", choices=["create", "get", "list", "update", "enable", "disable", "share",
                                          *CONNECTION_ACTIONS[kind]])
        p.add_argument("args", nargs="*")
        p.add_argument("--file", help="bulk create from a JSON array or a CSV file ('-' for stdin)")
        p.add_argument("--token", help="access token (or SMQ_TOKEN)")
        p.add_argument("--offset", type=int)
        p.add_argument("--limit", type=int)
        p.add_argument("--name")
        p.add_argument("--metadata", help="JSON: on create, the metadata; on list, a partial match")
        p.add_argument("--status", choices=["enabled", "disabled", "all"])
    messages = sub.add_parser("messages", help="send a message as a thing: send <channel> <json> <secret>")
    messages.add_argument("action", choices=["send"])
    messages.add_argument("args", nargs="*")
    messages.add_argument("--subtopic", help="publish under <channel>.<subtopic>")
    events = sub.add_parser("events", help="the event log: tail [--after N] [--aggregate A] [--type T] [--nats]")
    events.add_argument("action", choices=["tail"])
    events.add_argument("--after", type=int, default=0, help="start after this position")
    events.add_argument("--aggregate", help="only events of this aggregate (thing, channel, user, …)")
    events.add_argument("--type", help="only events of this type (created, disabled, …)")
    events.add_argument("--nats", action="store_true", help="subscribe to the JetStream stream (SMQ_NATS_URL)")
    events.add_argument("--count", type=int, help="stop after this many events")
    events.add_argument("--idle-exit", type=float, help="stop after this many seconds without an event")
    events.add_argument("--interval", type=float, default=0.5, help="seconds between polls over HTTP")
    events.add_argument("--token", help="an administrator's access token (or SMQ_TOKEN)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a client command; its exit status."""
    try:
        if args.command == "events":
            return events_command(args, settings)
        if args.command in ("things", "channels") and args.action in CONNECTION_ACTIONS[args.command]:
            result = connections_command(args.command, args)
        elif args.command in cli_gateways.COMMANDS:
            result = cli_gateways.run(args, call, _token)
        elif args.command == "messages":
            result = messages_command(args)
        elif args.command in ("things", "channels"):
            result = entities_command(args.command, args)
        else:
            result = users_command(args)
    except (ApiError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0
