"""The ``smq`` client commands: their parsers, and which module runs each (one per resource group)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from client import gateways as cli_gateways
from client.entities import CONNECTION_ACTIONS, connections_command, entities_command
from client.events import events_command
from client.http import ApiError, call, user_token
from client.messages import messages_command
from client.users import users_command
from infra.settings import Settings


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
            result = cli_gateways.run(args, call, user_token)
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
