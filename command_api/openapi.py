"""The OpenAPI 3 document of the API, generated from the app's router so that it cannot
drift from the routes: every method and path, path parameters, query parameters, the
request body's schema (from the msgspec type the route decodes) and who may call it."""

from __future__ import annotations

import dis
import inspect
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from aiohttp import web

from command_api import wire
from command_api.listing import ID

TITLE = "smq-es"
VERSION = "0.1.0"
_UUID_REGEX = ID[ID.index(":") + 1:-1]
_DEFAULT_REGEX = "[^{}/]+"
_BODY = re.compile(r"wire\.body\(\s*request\s*,\s*(?P<type>[\w.]+(?:\[[^\]]*\])?)(?P<rest>[^)]*)\)")
_QUERY = [re.compile(p) for p in (
    r"query\.get\(\s*\"(\w+)\"", r"query\[\"(\w+)\"\]", r"_int\(\s*request\s*,\s*\"(\w+)\"",
    r"_time\(\s*request\s*,\s*\"(\w+)\"")]
_QUERY_LOOP = re.compile(r"\(\"(\w+)\", \"\w+\"\)")  # ``for name, column in (("a", "a"), …)``
_NOT_ROUTES = {__name__, "command_api.observability", "command_api.app"}
_STATUS = re.compile(r"status=(\d{3})\b|web\.HTTP(NoContent)\b")

DOC = web.AppKey("smq.openapi", dict)


def operations(app: web.Application) -> Iterator[tuple[str, str, web.AbstractRoute]]:
    """``(method, path template, route)`` of every registered route; the HEAD that aiohttp
    adds beside a GET is the GET's, and documented with it."""
    gets = {r.resource.canonical for r in app.router.routes() if r.method == "GET" and r.resource}
    for route in app.router.routes():
        if route.resource is None or route.method == "*":
            continue
        path = route.resource.canonical
        if route.method == "HEAD" and path in gets:
            continue
        yield route.method, path, route


def _group(pattern: str, name: str) -> str:
    """The regular expression of the named group ``name`` in ``pattern``."""
    start = pattern.index(f"(?P<{name}>") + len(f"(?P<{name}>")
    depth, i = 0, start
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return pattern[start:i]
            depth -= 1
        i += 1
    raise ValueError(f"unbalanced group {name} in {pattern}")


def _path_parameters(resource: web.AbstractResource) -> list[dict[str, Any]]:
    info = resource.get_info()
    compiled = info.get("pattern")
    if compiled is None:
        return []
    out = []
    for name in sorted(compiled.groupindex, key=compiled.groupindex.__getitem__):
        regex = _group(compiled.pattern, name)
        if regex == _UUID_REGEX:
            schema: dict[str, Any] = {"type": "string", "format": "uuid"}
        elif regex == _DEFAULT_REGEX:
            schema = {"type": "string", "pattern": "^[^/]+$"}
        else:
            schema = {"type": "string", "pattern": f"^(?:{regex})$"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _sources(fn: Any, seen: set[Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The source of ``fn`` and of the route helpers it calls, with their globals."""
    seen = set() if seen is None else seen
    if not isinstance(fn, types.FunctionType):
        return []
    fn = inspect.unwrap(fn)
    if fn in seen or not fn.__module__.startswith("command_api.") or fn.__module__ in _NOT_ROUTES:
        return []
    seen.add(fn)
    out = [(inspect.getsource(fn), fn.__globals__)]
    for obj in _called(fn.__code__, fn.__globals__):
        out += _sources(obj, seen)
    return out


def _called(code: types.CodeType, namespace: dict[str, Any]) -> Iterator[Any]:
    """The globals ``code`` loads, and ``module.attr`` of the modules among them."""
    module: Any = None
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_GLOBAL":
            obj = namespace.get(ins.argval)
            module = obj if isinstance(obj, types.ModuleType) else None
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


def _query_parameters(src: str) -> list[dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    if "wire.paging(" in src:
        params["offset"] = {"type": "integer", "minimum": 0, "maximum": wire.MAX_OFFSET, "default": 0}
        params["limit"] = {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    if "wire.status_filter(" in src:
        params["status"] = {"type": "string", "enum": ["enabled", "disabled", "all"], "default": "enabled"}
    if "wire.name_filter(" in src:
        params["name"] = {"type": "string"}
    if "wire.metadata_filter(" in src:
        params["metadata"] = {"type": "string", "description": "a JSON object, matched partially"}
    found = [m for rx in _QUERY for m in rx.findall(src)]
    if "query.get(name" in src:
        found += _QUERY_LOOP.findall(src)
    for name in found:
        params.setdefault(name, {"type": "string"})
    return [{"name": n, "in": "query", "required": False, "schema": s} for n, s in params.items()]


def _body_type(sources: list[tuple[str, dict[str, Any]]]) -> tuple[Any, bool] | None:
    """The type the route decodes its body into, and whether the body is required."""
    for src, namespace in sources:
        m = _BODY.search(src)
        if m:
            tp = eval(m.group("type"), dict(namespace))  # noqa: S307 - our own source code
            return tp, "optional=True" not in m.group("rest")
    return None


def _security(src: str) -> list[dict[str, list[str]]] | None:
    if "principal(" in src or "bearer(" in src:
        return [{"bearerAuth": []}]
    if "thing_secret(" in src or "_external_key(" in src or "Thing " in src:
        return [{"thingKey": []}]
    return None


def _summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn)
    if doc:
        return doc.splitlines()[0].rstrip(".")
    return fn.__name__.replace("_", " ").strip().capitalize()


def _responses(src: str) -> dict[str, Any]:
    codes = sorted({m[0] or "204" for m in _STATUS.findall(src) if not m[0] or m[0].startswith("2")})
    out: dict[str, Any] = {code: {"description": "Success"} for code in codes or ["200"]}
    out["default"] = {"description": "An error",
                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return out


def build(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``app``'s routes."""
    paths: dict[str, dict[str, Any]] = {}
    bodies: list[tuple[dict[str, Any], Any, bool]] = []
    used_ids: set[str] = set()
    for method, path, route in operations(app):
        handler = route.handler
        sources = _sources(handler)
        src = "\n".join(s for s, _ in sources)
        module = getattr(handler, "__module__", "").rsplit(".", 1)[-1]
        op_id = f"{module}_{getattr(handler, '__name__', 'handler')}"
        while op_id in used_ids:
            op_id += "_"
        used_ids.add(op_id)
        op: dict[str, Any] = {"operationId": op_id, "summary": _summary(handler),
                              "tags": [path.strip("/").split("/")[0] or "root"],
                              "responses": _responses(src)}
        params = _path_parameters(route.resource) + _query_parameters(src)  # type: ignore[arg-type]
        if params:
            op["parameters"] = params
        security = _security(src)
        if security is not None:
            op["security"] = security
        body = _body_type(sources)
        if body is not None:
            bodies.append((op, *body))
        paths.setdefault(path, {})[method.lower()] = op
    components = _components(bodies)
    return {
        "openapi": "3.0.3",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Event-sourced CQRS backend that speaks the SuperMQ HTTP API."},
        "paths": dict(sorted(paths.items())),
        "components": components,
    }


def _components(bodies: list[tuple[dict[str, Any], Any, bool]]) -> dict[str, Any]:
    schemas, defs = msgspec.json.schema_components(
        [tp for _, tp, _ in bodies], ref_template="#/components/schemas/{name}")
    for (op, _, required), schema in zip(bodies, schemas, strict=True):
        op["requestBody"] = {"required": required,
                             "content": {"application/json": {"schema": _openapi30(schema)}}}
    defs = {name: _openapi30(s) for name, s in defs.items()}
    defs["Error"] = {"type": "object", "required": ["error"],
                     "properties": {"error": {"type": "string"}}}
    return {
        "schemas": dict(sorted(defs.items())),
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "a user's access token (a refresh token on /users/tokens/refresh)"},
            "thingKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                         "description": "`Thing <secret>` (a thing's secret, or a config's external key)"},
        },
    }


def _openapi30(schema: Any) -> Any:
    """JSON Schema from msgspec, made OpenAPI 3.0: ``anyOf [X, null]`` becomes ``nullable``,
    and an empty ``required`` goes."""
    if isinstance(schema, list):
        return [_openapi30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    variants = schema.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            schema.update(rest[0])
        elif len(rest) == 1:
            schema["allOf"] = rest
        else:
            schema["anyOf"] = rest
        schema["nullable"] = True
    if schema.get("required") == []:
        del schema["required"]
    return {k: _openapi30(v) for k, v in schema.items()}


async def prepare(app: web.Application) -> None:
    """On startup: a place for the document, built on its first request."""
    app[DOC] = {}


async def openapi_json(request: web.Request) -> web.Response:
    """This API's OpenAPI 3 document."""
    doc = request.app[DOC]
    if not doc:
        doc.update(build(request.app))
    return wire.json(doc)
