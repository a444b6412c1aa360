"""``smq messages send``: publish a message as a thing over the HTTP adapter."""

from __future__ import annotations

import argparse
import json
from typing import Any

from client.http import ApiError, call


def messages_command(args: argparse.Namespace) -> Any:
    """``smq messages send <channel_id> <json> <thing secret>``: the JSON is sent as given."""
    a = args.args
    if len(a) != 3:
        raise ApiError("usage: smq messages send <channel_id> <json> <thing secret>")
    json.loads(a[1])  # a ValueError here is the user's typo, reported before sending
    path = f"/http/channels/{a[0]}/messages" + (f"/{args.subtopic}" if args.subtopic else "")
    call("POST", path, raw_body=a[1].encode(), thing_secret=a[2])
    return {"status": "accepted"}
