"""Entities rendered as the API's JSON by PostgreSQL, straight from their view rows.

A list of 100 things decoded by psycopg (UUIDs, ``jsonb`` through ``json.loads``,
timestamps) and encoded again in Python was more than half of a list call's CPU in the API
process; PostgreSQL renders the same text in a fraction of a millisecond. The text is the
same JSON the Python shapes give (``domain`` objects through ``thing_json`` and friends, for
answers to commands): the same keys in the same order, empty tags, metadata and description
left out, timestamps as ``2026-11-25T22:45:41.947131Z``. ``jsonb`` values come out in
PostgreSQL's own spacing (``{"a": 1}``), which is the same JSON.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["uuid", "text", "text?", "json", "json?", "time", "raw"]

# Microseconds always, as Python's isoformat(timespec="microseconds"); UTC whatever the session.
_TIME = "to_char(({}) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _value(kind: Kind, expr: str) -> str:
    if kind == "uuid":
        return f"'\"' || ({expr})::text || '\"'"
    if kind in ("text", "text?"):
        return f"to_json(({expr})::text)::text"
    if kind in ("json", "json?"):
        return f"({expr})::text"
    if kind == "time":  # (null for 'infinity', whose to_char is NULL: never a NULL document)
        return "coalesce('\"' || " + _TIME.format(expr) + " || '\"', 'null')"
    return expr  # raw: already JSON text


def _omitted(kind: Kind, expr: str) -> str | None:
    """When an optional member is left out: the cases where Python's ``if value:`` is false."""
    if kind == "text?":
        return f"({expr}) = ''"
    if kind == "json?":
        return f"({expr}) in ('{{}}'::jsonb, '[]'::jsonb, 'null'::jsonb, '\"\"'::jsonb)"
    return None


def obj(*members: tuple[str, Kind, str]) -> str:
    """A SQL expression giving the JSON text of an object with these (key, kind, expression)
    members, in order. The first member must be present always."""
    parts: list[str] = []
    for i, (key, kind, expr) in enumerate(members):
        lead = "{" if i == 0 else ","
        piece = f"'{lead}\"{key}\":' || {_value(kind, expr)}"
        cond = _omitted(kind, expr)
        if cond is not None:
            if i == 0:
                raise ValueError("the first member of an object cannot be optional")
            piece = f"(case when {cond} then '' else {piece} end)"
        parts.append(piece)
    return "(" + " || ".join(parts) + " || '}')"


def page(limit: int, offset: int, total: int, plural: str, docs: str) -> bytes:
    """``{limit, offset, total, <plural>: [...]}`` around documents rendered by ``obj`` and
    joined by commas."""
    return f'{{"limit":{limit},"offset":{offset},"total":{total},"{plural}":[{docs}]}}'.encode()
