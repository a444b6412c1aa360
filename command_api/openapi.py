"""The OpenAPI 3.1 document of the API, generated from the app's router so that it cannot
drift from the routes: every method and path, path parameters, query parameters, the
request body's schema (the msgspec type the route decodes, or its shape in
``command_api.route_shapes`` when the route reads it loosely), who may call it, and its answers:
statuses and bodies (``command_api.route_shapes``), refusals as ``{"error": …}``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from aiohttp import web

from command_api import answer_shapes, route_shapes, route_source, shapes, wire
from command_api.listing import ID

TITLE = "smq-es"
VERSION = "0.1.0"
_UUID_REGEX = ID[ID.index(":") + 1:-1]
_DEFAULT_REGEX = "[^{}/]+"

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
        if name in route_shapes.PATH:
            schema: dict[str, Any] = route_shapes.PATH[name]
        elif regex == _UUID_REGEX:
            schema = {"type": "string", "format": "uuid"}
        elif regex == _DEFAULT_REGEX:
            schema = {"type": "string", "pattern": "^[^/\\x00-\\x1f\\x7f-\\x9f]+$"}
        else:
            schema = {"type": "string", "pattern": f"^(?:{regex})$"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _security(key: str, src: str) -> list[dict[str, list[str]]] | None:
    if key in route_shapes.PUBLIC:
        return None
    if key in route_shapes.OPTIONAL_AUTH:
        return [{route_shapes.OPTIONAL_AUTH[key]: []}, {}]
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
    codes = set(route_shapes.MORE_ERRORS.get(key, ()))
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
    types_: list[Any] = [answer_shapes.Error]  # every schema msgspec renders; ints in ops point here
    used_ids: set[str] = set()
    for method, path, route in operations(app):
        handler = route.handler
        sources = route_source.sources(handler)
        src = "\n".join(s for s, _ in sources)
        module = getattr(handler, "__module__", "").rsplit(".", 1)[-1]
        key = f"{module}.{getattr(handler, '__name__', 'handler')}"
        op_id = key.replace(".", "_")
        while op_id in used_ids:
            op_id += "_"
        used_ids.add(op_id)
        op: dict[str, Any] = {"operationId": op_id, "summary": _summary(handler),
                              "tags": [path.strip("/").split("/")[0] or "root"]}
        params = _path_parameters(route.resource) + route_source.query_parameters(sources)  # type: ignore[arg-type]
        if params:
            op["parameters"] = params
        security = _security(key, src)
        if security is not None:
            op["security"] = security
        body = route_source.body_type(sources)
        if key in route_shapes.RAW_BODIES:
            op["requestBody"] = {"required": False, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"$ref": shapes.JSON_VALUE}}}}
        elif key in route_shapes.REQUESTS or body is not None:
            tp = route_shapes.REQUESTS.get(key, body[0] if body else None)
            required = bool(body and body[1]) and key not in route_shapes.OPTIONAL_BODIES
            types_.append(tp)
            op["requestBody"] = {"required": required,
                                 "content": {"application/json": {"schema": len(types_) - 1}}}
        responses: dict[str, Any] = {}
        for status, answer in sorted(route_shapes.ANSWERS[key].items()):
            out: dict[str, Any] = {"description": "Success" if status < 400 else _REASONS.get(status, "Error")}
            content = _content(answer, types_)
            if content is not None:
                out["content"] = content
            responses[str(status)] = out
        for status in sorted(_errors(key, src, "requestBody" in op, params, security) - set(route_shapes.ANSWERS[key])):
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
