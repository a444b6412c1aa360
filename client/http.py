"""The one HTTP call every client command makes to the running service (``SMQ_URL``), and its errors."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any


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


def user_token(args: argparse.Namespace) -> str:
    token = getattr(args, "token", None) or os.environ.get("SMQ_TOKEN") or os.environ.get("TOKEN")
    if not token:
        raise ApiError("a user token is needed: pass --token or set SMQ_TOKEN")
    return token
