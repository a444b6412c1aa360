"""Client commands for gateways: bootstrap configs, certificates and provisioning."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMMANDS = ("bootstrap", "certs", "provision")
BOOTSTRAP = ("add", "get", "list", "update", "certs", "connections", "state", "remove", "fetch")
CERTS = ("issue", "get", "serials", "revoke", "ca", "crl")


def add_parsers(sub: Any) -> None:
    b = sub.add_parser("bootstrap", help="bootstrap configs: add <json>, get <id>, list, update <id> <json>, "
                                         "certs <id> <json>, connections <id> <channel>…, state <id> 0|1, "
                                         "remove <id>, fetch <external_id> <external_key>")
    b.add_argument("action", choices=BOOTSTRAP)
    b.add_argument("args", nargs="*")
    b.add_argument("--file", help="the JSON body of add or update, from a file")
    b.add_argument("--token", help="access token (or SMQ_TOKEN)")
    b.add_argument("--offset", type=int)
    b.add_argument("--limit", type=int)
    c = sub.add_parser("certs", help="certificates: issue <thing_id> [--ttl 24h], get <serial>, "
                                     "serials <thing_id>, revoke <thing_id>, ca, crl")
    c.add_argument("action", choices=CERTS)
    c.add_argument("args", nargs="*")
    c.add_argument("--ttl", default="8760h", help="how long an issued certificate is valid")
    c.add_argument("--token", help="access token (or SMQ_TOKEN)")
    p = sub.add_parser("provision", help="provision a gateway: <external_id> <external_key> [--name N]")
    p.add_argument("args", nargs="*")
    p.add_argument("--name", help="the name of the gateway's things")
    p.add_argument("--file", help="the request body (as POST /mapping takes it) from a JSON file")
    p.add_argument("--dry-run", action="store_true", help="say what would be created; create nothing")
    p.add_argument("--token", help="access token (or SMQ_TOKEN; else the server's configured credentials)")


Call = Callable[..., Any]


def _body(args: argparse.Namespace, index: int) -> Any:
    if args.file:
        return json.loads(Path(args.file).read_text())
    if len(args.args) <= index:
        raise ValueError("a JSON body is needed (an argument or --file)")
    return json.loads(args.args[index])


def _arg(args: argparse.Namespace, index: int, what: str) -> str:
    if len(args.args) <= index:
        raise ValueError(f"{args.command} {args.action}: <{what}> is missing")
    return str(args.args[index])


def run(args: argparse.Namespace, call: Call, token_of: Callable[[argparse.Namespace], str]) -> Any:
    if args.command == "provision":
        return _provision(args, call)
    if args.command == "certs":
        return _certs(args, call, token_of)
    return _bootstrap(args, call, token_of)


def _bootstrap(args: argparse.Namespace, call: Call, token_of: Callable[[argparse.Namespace], str]) -> Any:
    a = args.action
    if a == "fetch":
        return call("GET", f"/things/bootstrap/{_arg(args, 0, 'external_id')}",
                    thing_secret=_arg(args, 1, "external_key"))
    token = token_of(args)
    if a == "add":
        return call("POST", "/things/configs", _body(args, 0), token=token)
    if a == "list":
        query = "&".join(f"{k}={v}" for k, v in (("offset", args.offset), ("limit", args.limit)) if v is not None)
        return call("GET", "/things/configs" + (f"?{query}" if query else ""), token=token)
    tid = _arg(args, 0, "thing_id")
    if a == "get":
        return call("GET", f"/things/configs/{tid}", token=token)
    if a == "update":
        return call("PUT", f"/things/configs/{tid}", _body(args, 1), token=token)
    if a == "certs":
        return call("PATCH", f"/things/configs/certs/{tid}", _body(args, 1), token=token)
    if a == "connections":
        return call("PUT", f"/things/configs/connections/{tid}", {"channels": args.args[1:]}, token=token)
    if a == "state":
        return call("PUT", f"/things/state/{tid}", {"state": int(_arg(args, 1, "0|1"))}, token=token)
    call("DELETE", f"/things/configs/{tid}", token=token)
    return None


def _certs(args: argparse.Namespace, call: Call, token_of: Callable[[argparse.Namespace], str]) -> Any:
    a = args.action
    if a in ("ca", "crl"):
        print(call("GET", f"/certs/{a}"), end="")
        return None
    token = token_of(args)
    if a == "issue":
        return call("POST", "/certs", {"thing_id": _arg(args, 0, "thing_id"), "ttl": args.ttl}, token=token)
    if a == "get":
        return call("GET", f"/certs/{_arg(args, 0, 'serial')}", token=token)
    if a == "serials":
        return call("GET", f"/serials/{_arg(args, 0, 'thing_id')}", token=token)
    return call("DELETE", f"/certs/{_arg(args, 0, 'thing_id')}", token=token)


def _provision(args: argparse.Namespace, call: Call) -> Any:
    import os

    if args.file:
        body = json.loads(Path(args.file).read_text())
    else:
        if len(args.args) != 2:
            raise ValueError("usage: smq provision <external_id> <external_key> [--name N]")
        body = {"external_id": args.args[0], "external_key": args.args[1]}
    if args.name:
        body["name"] = args.name
    token = args.token or os.environ.get("SMQ_TOKEN") or None
    return call("POST", "/mapping" + ("?dry_run=true" if args.dry_run else ""), body, token=token)
