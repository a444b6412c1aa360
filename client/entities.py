"""``smq things|channels``: create (one or in bulk from a file), read, update, share and connect."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from client.http import ApiError, call, user_token

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
    a, token = args.args, user_token(args)
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
        return call(method, f"/channels/{a[1]}/things/{a[0]}", token=user_token(args))
    if len(a) != 1:
        raise ApiError(f"usage: smq {kind} connections <id>")
    other = "channels" if kind == "things" else "things"
    return call("GET", f"/{kind}/{a[0]}/{other}{_page_query(args)}", token=user_token(args))
