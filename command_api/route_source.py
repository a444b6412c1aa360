"""What a route reads (helpers, query parameters, body type), found in its source so the document cannot drift."""

from __future__ import annotations

import dis
import inspect
import re
import types
from collections.abc import Iterator
from typing import Any

from command_api import route_shapes, shapes, wire

_BODY = re.compile(r"wire\.body\(\s*request\s*,\s*(?P<type>[\w.]+(?:\[[^\]]*\])?)(?P<rest>[^)]*)\)")
_QUERY = [re.compile(p) for p in (
    r"query\.get\(\s*\"(\w+)\"", r"query\[\"(\w+)\"\]",
)]
_QUERY_INT = re.compile(r"_int\(\s*request\s*,\s*\"(\w+)\"\s*,\s*([^,]+),\s*([^,]+),\s*([^)]+)\)")
_QUERY_TIME = re.compile(r"_time\(\s*request\s*,\s*\"(\w+)\"")
_QUERY_LOOP = re.compile(r"\(\"(\w+)\", \"\w+\"\)")  # ``for name, column in (("a", "a"), …)``
_NOT_ROUTES = {"command_api.openapi", __name__, "command_api.observability", "command_api.app"}


def sources(fn: Any, seen: set[Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The source of ``fn`` and of the route helpers it calls, with their globals."""
    seen = set() if seen is None else seen
    fn = getattr(fn, "__func__", fn)  # a class's method, as ``Filters.of``
    if not isinstance(fn, types.FunctionType):
        return []
    fn = inspect.unwrap(fn)
    if fn in seen or not fn.__module__.startswith("command_api.") or fn.__module__ in _NOT_ROUTES:
        return []
    seen.add(fn)
    out = [(inspect.getsource(fn), fn.__globals__)]
    for obj in _called(fn.__code__, fn.__globals__):
        out += sources(obj, seen)
    return out


def _called(code: types.CodeType, namespace: dict[str, Any]) -> Iterator[Any]:
    """The globals ``code`` loads, and ``module.attr`` (or ``Class.attr``) of the modules (and
    classes) among them."""
    module: Any = None
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_GLOBAL":
            obj = namespace.get(ins.argval)
            module = obj if isinstance(obj, (types.ModuleType, type)) else None
            if module is None:
                yield obj
        elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and module is not None:
            yield getattr(module, ins.argval, None)
            module = None
        else:
            module = None
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _called(const, namespace)


def query_parameters(sources: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    src = "\n".join(s for s, _ in sources)
    text = {"type": "string", "pattern": shapes.NO_NUL}
    params: dict[str, dict[str, Any]] = {}
    if "wire.paging(" in src:
        params["offset"] = {"type": "integer", "minimum": 0, "maximum": wire.MAX_OFFSET, "default": 0}
        params["limit"] = {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    if "wire.status_filter(" in src:
        params["status"] = {"type": "string", "enum": ["enabled", "disabled", "all"], "default": "enabled"}
    if "wire.name_filter(" in src:
        params["name"] = text
    if "wire.metadata_filter(" in src:
        params["metadata"] = shapes.METADATA_QUERY
    for body, namespace in sources:  # _int(request, name, default, low, high)
        for m in _QUERY_INT.finditer(body):
            default, low, high = (eval(x, dict(namespace)) for x in m.group(2, 3, 4))  # noqa: S307 - ours
            params[m.group(1)] = {"type": "integer", "minimum": low, "maximum": high, "default": default}
    for name in _QUERY_TIME.findall(src):
        params[name] = {"type": "string", "format": "date-time"}
    found = [m for rx in _QUERY for m in rx.findall(src)]
    if "query.get(name" in src:
        found += _QUERY_LOOP.findall(src)
    for name in found:
        params.setdefault(name, route_shapes.QUERY.get(name, text))
    out = []
    for n, schema in params.items():
        param: dict[str, Any] = {"name": n, "in": "query", "required": False}
        if schema.get("type") == "object":  # JSON text in the query
            param["content"] = {"application/json": {"schema": schema}}
        else:
            param["schema"] = schema
        out.append(param)
    return out


def body_type(sources: list[tuple[str, dict[str, Any]]]) -> tuple[Any, bool] | None:
    """The type the route decodes its body into, and whether the body is required."""
    for src, namespace in sources:
        m = _BODY.search(src)
        if m:
            tp = eval(m.group("type"), dict(namespace))  # noqa: S307 - our own source code
            return tp, "optional=True" not in m.group("rest")
    return None
