"""The OpenAPI 3.1 document of the API, generated from the app's router so that it cannot
drift from the routes: every method and path, path parameters, query parameters, the
request body's schema (the msgspec type the route decodes, or its shape in
``command_api.shapes`` when the route reads it loosely), who may call it, and its answers:
statuses and bodies (``command_api.shapes``), refusals as ``{"error": …}``."""

from __future__ import annotations

import dis
import inspect
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from aiohttp import web

from command_api import shapes, wire
from command_api.listing import ID

TITLE = "smq-es"
VERSION = "0.1.0"
_UUID_REGEX = ID[ID.index(":") + 1:-1]
_DEFAULT_REGEX = "[^{}/]+"
_BODY = re.compile(r"wire\.body\(\s*request\s*,\s*(?P<type>[\w.]+(?:\[[^\]]*\])?)(?P<rest>[^)]*)\)")
_QUERY = [re.compile(p) for p in (
    r"query\.get\(\s*\"(\w+)\"", r"query\[\"(\w+)\"\]",
)]
_QUERY_INT = re.compile(r"_int\(\s*request\s*,\s*\"(\w+)\"\s*,\s*([^,]+),\s*([^,]+),\s*([^)]+)\)")
_QUERY_TIME = re.compile(r"_time\(\s*request\s*,\s*\"(\w+)\"")
_QUERY_LOOP = re.compile(r"\(\"(\w+)\", \"\w+\"\)")  # ``for name, column in (("a", "a"), …)``
_NOT_ROUTES = {__name__, "command_api.observability", "command_api.app"}

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
        if name in shapes.PATH:
            schema: dict[str, Any] = shapes.PATH[name]
        elif regex == _UUID_REGEX:
            schema = {"type": "string", "format": "uuid"}
        elif regex == _DEFAULT_REGEX:
            schema = {"type": "string", "pattern": "^[^/\\x00-\\x1f\\x7f-\\x9f]+$"}
        else:
            schema = {"type": "string", "pattern": f"^(?:{regex})$"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _sources(fn: Any, seen: set[Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
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
        out += _sources(obj, seen)
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


def _query_parameters(sources: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
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
        params.setdefault(name, shapes.QUERY.get(name, text))
    out = []
    for n, schema in params.items():
        param: dict[str, Any] = {"name": n, "in": "query", "required": False}
        if schema.get("type") == "object":  # JSON text in the query
            param["content"] = {"application/json": {"schema": schema}}
        else:
            param["schema"] = schema
        out.append(param)
    return out


def _body_type(sources: list[tuple[str, dict[str, Any]]]) -> tuple[Any, bool] | None:
    """The type the route decodes its body into, and whether the body is required."""
    for src, namespace in sources:
        m = _BODY.search(src)
        if m:
            tp = eval(m.group("type"), dict(namespace))  # noqa: S307 - our own source code
            return tp, "optional=True" not in m.group("rest")
    return None


def _security(key: str, src: str) -> list[dict[str, list[str]]] | None:
    if key in shapes.PUBLIC:
        return None
    if key in shapes.OPTIONAL_AUTH:
        return [{shapes.OPTIONAL_AUTH[key]: []}, {}]
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


_REASONS = {400: "Malformed request: the error names the field", 401: "Missing or invalid credentials",
            403: "Not allowed", 404: "Not found (or not visible to the caller)", 409: "Conflict",
            413: "Body too large", 415: "Body is not JSON", 429: "Too many attempts: see Retry-After",
            503: "A dependency is unavailable", 504: "Still running: repeat the request for its result"}


def _errors(key: str, src: str, has_body: bool, params: list[dict[str, Any]],
            security: list[dict[str, list[str]]] | None) -> set[int]:
    """The refusals an operation may answer, from what it reads and does."""
    codes = set(shapes.MORE_ERRORS.get(key, ()))
    if has_body:
        codes |= {400, 413, 415}
    if any(p["in"] == "query" for p in params):
        codes.add(400)
    if security:
        codes.add(401)
    if any(p["in"] == "path" for p in params):
        codes.add(404)
    if "store.command(" in src:
        codes |= {400, 403, 404, 409}
    if "Forbidden(" in src:
        codes.add(403)
    return codes


def _content(answer: Any, refs: list[Any]) -> dict[str, Any] | None:
    """The ``content`` of an answer: a media type, or a type whose schema comes later."""
    if answer is None:
        return None
    if isinstance(answer, str):
        return {answer: {"schema": {"type": "string"}}}
    refs.append(answer)
    return {"application/json": {"schema": len(refs) - 1}}


def build(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    paths: dict[str, dict[str, Any]] = {}
    types_: list[Any] = [shapes.Error]  # every schema msgspec renders; ints in ops point here
    used_ids: set[str] = set()
    for method, path, route in operations(app):
        handler = route.handler
        sources = _sources(handler)
        src = "\n".join(s for s, _ in sources)
        module = getattr(handler, "__module__", "").rsplit(".", 1)[-1]
        key = f"{module}.{getattr(handler, '__name__', 'handler')}"
        op_id = key.replace(".", "_")
        while op_id in used_ids:
            op_id += "_"
        used_ids.add(op_id)
        op: dict[str, Any] = {"operationId": op_id, "summary": _summary(handler),
                              "tags": [path.strip("/").split("/")[0] or "root"]}
        params = _path_parameters(route.resource) + _query_parameters(sources)  # type: ignore[arg-type]
        if params:
            op["parameters"] = params
        security = _security(key, src)
        if security is not None:
            op["security"] = security
        body = _body_type(sources)
        if key in shapes.RAW_BODIES:
            op["requestBody"] = {"required": False, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"$ref": shapes.JSON_VALUE}}}}
        elif key in shapes.REQUESTS or body is not None:
            tp = shapes.REQUESTS.get(key, body[0] if body else None)
            required = bool(body and body[1]) and key not in shapes.OPTIONAL_BODIES
            types_.append(tp)
            op["requestBody"] = {"required": required,
                                 "content": {"application/json": {"schema": len(types_) - 1}}}
        responses: dict[str, Any] = {}
        for status, answer in sorted(shapes.ANSWERS[key].items()):
            out: dict[str, Any] = {"description": "Success" if status < 400 else _REASONS.get(status, "Error")}
            content = _content(answer, types_)
            if content is not None:
                out["content"] = content
            responses[str(status)] = out
        for status in sorted(_errors(key, src, "requestBody" in op, params, security) - set(shapes.ANSWERS[key])):
            responses[str(status)] = {"description": _REASONS.get(status, "Error"), "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        op["responses"] = responses
        paths.setdefault(path, {})[method.lower()] = op
    schemas, defs = msgspec.json.schema_components(types_, ref_template="#/components/schemas/{name}")
    for item in paths.values():
        for op in item.values():
            for media in [*op.get("requestBody", {}).get("content", {}).values(),
                          *(c for r in op["responses"].values() for c in r.get("content", {}).values())]:
                if isinstance(media["schema"], int):
                    media["schema"] = schemas[media["schema"]]
    for schema in defs.values():  # the text rule holds for every member of a body, known or not
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            schema.setdefault("propertyNames", {"pattern": shapes.TEXT_PATTERN})
            schema.setdefault("additionalProperties", {"$ref": shapes.JSON_VALUE})
    defs["JsonValue"] = shapes.JSON_VALUE_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Event-sourced CQRS backend that speaks the SuperMQ HTTP API."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(defs.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                               "description": "a user's access token (a refresh token on /users/tokens/refresh)"},
                "thingKey": {"type": "apiKey", "in": "header", "name": "Authorization",
                             "description": "`Thing <secret>` (a thing's secret, or a config's external key)"},
            },
        },
    }


async def prepare(app: web.Application) -> None:
    """On startup: a place for the document, built on its first request."""
    app[DOC] = {}


async def openapi_json(request: web.Request) -> web.Response:
    """This API's OpenAPI 3 document."""
    doc = request.app[DOC]
    if not doc:
        doc.update(build(request.app))
    return wire.json(doc)
