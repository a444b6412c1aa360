"""Reading requests and writing answers: JSON bodies, paging, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from command_api.errors import BadRequest, UnsupportedMedia

T = TypeVar("T")
_encoder = msgspec.json.Encoder()


def timestamp(dt: datetime) -> str:
    """``2026-11-25T22:45:41.947131Z`` (isoformat: strftime was a visible cost of bulk answers)."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return raw_json(_encoder.encode(data), status, headers)


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An answer whose JSON is already rendered (by PostgreSQL: command_api.docsql)."""
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


async def body(request: web.Request, schema: type[T], *, optional: bool = False) -> T:
    """Decode the JSON body into ``schema``: 415 when it is not JSON, 400 when it is malformed."""
    raw = await request.read()
    if not raw and optional:
        return msgspec.convert({}, schema)
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        if raw or not optional:
            raise UnsupportedMedia("content type must be application/json")
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
        raise BadRequest(f"malformed body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadRequest("malformed body: invalid JSON") from exc


def paging(request: web.Request, default_limit: int = 10, max_limit: int = 100) -> tuple[int, int]:
    """``offset`` (default 0) and ``limit`` (default 10, 1..100); anything else is 400."""
    q = request.query
    try:
        offset = int(q.get("offset", "0"))
        limit = int(q.get("limit", str(default_limit)))
    except ValueError as exc:
        raise BadRequest("offset and limit must be integers") from exc
    if offset < 0:
        raise BadRequest("offset must not be negative")
    if not 1 <= limit <= max_limit:
        raise BadRequest(f"limit must be between 1 and {max_limit}")
    return offset, limit


def status_filter(request: web.Request) -> str | None:
    value = request.query.get("status", "enabled").lower()
    if value not in ("enabled", "disabled", "all"):
        raise BadRequest("status must be enabled, disabled or all")
    return None if value == "all" else value


def metadata_filter(request: web.Request) -> dict[str, Any] | None:
    raw = request.query.get("metadata")
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest("metadata must be a JSON object") from exc
    if not isinstance(value, dict):
        raise BadRequest("metadata must be a JSON object")
    return value


def name_filter(request: web.Request) -> str | None:
    name = request.query.get("name")
    if name is None:
        return None
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]  # the guide quotes it: name="weio"
    return name
