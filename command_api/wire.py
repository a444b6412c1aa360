"""Reading requests and writing answers: JSON bodies, paging, timestamps."""

from __future__ import annotations

import json as pyjson
import re
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from command_api.errors import BadRequest, UnsupportedMedia
from domain.common import MAX_METADATA_DEPTH, check_strings

T = TypeVar("T")
_encoder = msgspec.json.Encoder()

# The deepest body a route takes: metadata at its deepest inside a bulk request's items.
MAX_BODY_DEPTH = MAX_METADATA_DEPTH + 4
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# What a control character or a surrogate in a JSON text's strings is written as: an escape,
# a raw DEL or C1 character (JSON refuses raw C0 characters in strings; those between tokens
# are listed too, for safety, but tab and line breaks). A body without any holds no string
# the text rule refuses, so its strings need no walk.
_MAYBE_NOT_TEXT = re.compile(rb"\\[ubfnrt]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def nesting(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings aside);
    counted without recursion, before any decoder recurses."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_BODY_DEPTH:
        return 0  # cannot be deeper than the bound: no need to look closer
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")  # no quote is escaped now
    outside = b"".join(unescaped.split(b'"')[::2])  # the text between strings
    brackets = outside.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def decode_json(raw: bytes | str, schema: Any = Any, what: str = "body") -> Any:
    """The one way a request's JSON is read: nesting bounded, UTF-8 checked, decoded strictly
    into ``schema``, and every string in it held to the text rule (``domain.common``).
    Anything else is a 400 naming what is wrong."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if nesting(raw) > MAX_BODY_DEPTH:
        raise BadRequest(f"malformed {what}: nested deeper than {MAX_BODY_DEPTH} levels")
    try:
        value = msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
        raise BadRequest(f"malformed {what}: {exc}") from exc
    except msgspec.DecodeError as exc:
        _name_bad_text(raw, what)
        raise BadRequest(f"malformed {what}: invalid JSON") from exc
    except UnicodeDecodeError as exc:
        _name_bad_text(raw, what)
        raise BadRequest(f"malformed {what}: not valid UTF-8") from exc
    except RecursionError as exc:
        raise BadRequest(f"malformed {what}: nested too deep") from exc
    if _MAYBE_NOT_TEXT.search(raw):
        check_strings(value, "" if what == "body" else what)
    return value


def timestamp(dt: datetime) -> str:
    """``2026-11-25T22:45:41.947131Z`` (isoformat: strftime was a visible cost of bulk answers; in
    UTC it ends ``+00:00``, cut here rather than copying the datetime without its zone)."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="microseconds")[:-6] + "Z"


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
    return decode_json(raw, schema)


def _name_bad_text(raw: bytes, what: str) -> None:
    """Name the string of a refused JSON text that is not UTF-8 text (invalid bytes, a lone
    surrogate escape), when the text is otherwise JSON: ``Invalid`` from the text rule."""
    try:
        value = pyjson.loads(raw.decode("utf-8", "surrogateescape"))  # depth bounded already
    except ValueError:
        return
    check_strings(value, "" if what == "body" else what)


# Deeper than any list can be, and small enough that ``offset + limit`` stays a bigint.
MAX_OFFSET = 10**12
_INTEGER = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: int() takes " 5", "٣", "1_0"


def integer(raw: str, name: str, low: int, high: int) -> int:
    """An integer of the query (ASCII digits, an optional minus) within ``low..high``; 400 naming
    ``name`` otherwise."""
    if not _INTEGER.fullmatch(raw):
        if re.fullmatch(r"-?[0-9]+", raw):
            raise BadRequest(f"{name} must be between {low} and {high}")
        raise BadRequest(f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def paging(request: web.Request, default_limit: int = 10, max_limit: int = 100) -> tuple[int, int]:
    """``offset`` (default 0, at most MAX_OFFSET) and ``limit`` (default 10, 1..100); anything
    else is 400."""
    q = request.query
    offset = integer(q.get("offset", "0"), "offset", 0, MAX_OFFSET)
    limit = integer(q.get("limit", str(default_limit)), "limit", 1, max_limit)
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
        value = decode_json(raw, Any, "metadata")
    except BadRequest as exc:
        raise BadRequest(f"metadata must be a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest("metadata must be a JSON object")
    _check_filter(value)
    return value


def _check_filter(value: Any) -> None:
    """What PostgreSQL's jsonb cannot hold (NUL), and deeper than stored metadata can be (so
    that nothing recurses deeply later), is a 400 rather than a failed statement."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)) and depth > MAX_METADATA_DEPTH:
            raise BadRequest(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(item, dict):
            if any("\x00" in k for k in item):
                raise BadRequest("metadata must not contain NUL characters")
            todo.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, depth + 1) for v in item)
        elif isinstance(item, str) and "\x00" in item:
            raise BadRequest("metadata must not contain NUL characters")


def name_filter(request: web.Request) -> str | None:
    name = request.query.get("name")
    if name is None:
        return None
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]  # the guide quotes it: name="weio"
    return name


def refuse_nul(request: web.Request) -> None:
    """PostgreSQL's text cannot hold NUL: a path or query parameter with one is refused
    before any route runs, before it reaches a statement."""
    if "\x00" in request.path:
        raise BadRequest("the path must not contain NUL characters")
    for name, value in request.query.items():
        if "\x00" in name or "\x00" in value:
            raise BadRequest(f"query parameter {name.replace(chr(0), '')[:64]!r} must not contain NUL characters")
