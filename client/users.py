"""``smq users``: user accounts and tokens over the HTTP API."""

from __future__ import annotations

import argparse
import json
from typing import Any

from client.http import ApiError, call, user_token


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
        return call("GET", "/users/profile", token=user_token(args))
    if args.action == "get":
        path = "/users" if not a or a[0] == "all" else f"/users/{a[0]}"
        return call("GET", path, token=user_token(args))
    if args.action in ("enable", "disable"):
        return call("POST", f"/users/{a[0]}/{args.action}", token=user_token(args))
    if args.action == "update":
        return call("PATCH", f"/users/{a[0]}", json.loads(a[1]), token=user_token(args))
    raise ApiError(f"unknown users action {args.action!r}")
