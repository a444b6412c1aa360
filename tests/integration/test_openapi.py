"""GET /openapi.json: the whole API, true to the router in both directions."""

from __future__ import annotations

from typing import Any

from command_api.app import create_app
from command_api.openapi import operations
from tests.conftest import Client

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def _registered(service: Any) -> set[tuple[str, str]]:
    """Every method and path the app serves, read from a fresh app's router (HEAD beside GET
    is implied by the GET)."""
    app = create_app(service.container)
    gets = {r.resource.canonical for r in app.router.routes() if r.method == "GET"}
    return {(r.method, r.resource.canonical) for r in app.router.routes()
            if r.resource is not None and not (r.method == "HEAD" and r.resource.canonical in gets)}


async def test_document_matches_the_routes(client: Client, service: Any) -> None:
    st, doc, headers = await client.call("GET", "/openapi.json")
    assert st == 200 and headers["Content-Type"].startswith("application/json")
    assert doc["openapi"].startswith("3.") and doc["info"]["title"]
    documented, registered = _documented(doc), _registered(service)
    assert registered - documented == set(), "routes missing from /openapi.json"
    assert documented - registered == set(), "documented operations that no route serves"
    assert {("POST", "/users"), ("GET", "/things/{id}"), ("DELETE", "/channels/{cid}/things/{tid}"),
            ("GET", "/metrics"), ("GET", "/openapi.json")} <= documented
    assert len({(m, p) for m, p, _ in operations(create_app(service.container))}) == len(registered)


async def test_operations_are_described(client: Client) -> None:
    _, doc, _ = await client.call("GET", "/openapi.json")
    ids = set()
    for path, item in doc["paths"].items():
        assert ":" not in path, f"regex left in {path}"
        names = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        for method, op in item.items():
            assert op["summary"] and op["responses"], (method, path)
            assert op["operationId"] not in ids
            ids.add(op["operationId"])
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == names, (method, path)
    users = doc["paths"]["/users"]["post"]
    schema = users["requestBody"]["content"]["application/json"]["schema"]
    create_user = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    assert "credentials" in create_user["required"]
    creds = doc["components"]["schemas"]["UserCredentials"]
    assert set(creds["required"]) == {"identity", "secret"}
    assert creds["properties"]["secret"]["minLength"] == 8
    assert doc["paths"]["/users/profile"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in doc["paths"]["/users"]["post"]
    listing = {p["name"] for p in doc["paths"]["/things"]["get"]["parameters"]}
    assert {"offset", "limit", "status", "name", "metadata"} <= listing
    thing_id = doc["paths"]["/things/{id}"]["get"]["parameters"][0]
    assert thing_id["schema"]["format"] == "uuid"
    limit = next(p for p in doc["paths"]["/things"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)


async def test_every_operation_has_its_answers(client: Client) -> None:
    _, doc, _ = await client.call("GET", "/openapi.json")
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert "default" not in codes, (method, path)
            assert any(c.startswith("2") for c in codes), (method, path)
            for code, answer in op["responses"].items():
                if code.startswith("4"):
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, (method, path, code)
                elif code != "204" and method != "delete" or code == "200":
                    assert answer.get("content") or code in ("201", "202"), (method, path, code)
            if op.get("security"):
                assert "401" in codes, (method, path)
            if "requestBody" in op:
                assert {"400", "415"} <= codes, (method, path)
    page = doc["components"]["schemas"]["ThingsPage"]
    assert set(page["required"]) == {"limit", "offset", "total", "things"}
    assert doc["components"]["schemas"]["Thing"]["properties"]["created_at"]["format"] == "date-time"
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]


async def test_security_only_where_required(client: Client) -> None:
    _, doc, _ = await client.call("GET", "/openapi.json")
    paths = doc["paths"]
    assert "security" not in paths["/certs/crl"]["get"]
    assert "security" not in paths["/health"]["get"] and "security" not in paths["/users/tokens/issue"]["post"]
    assert {} in paths["/identify"]["post"]["security"]
    assert paths["/things"]["post"]["security"] == [{"bearerAuth": []}]
    st, _, _ = await client.call("GET", "/certs/crl")
    assert st == 200


def test_struct_bodies_keep_their_required_fields() -> None:
    """Where a route decodes a Struct and the document shows another shape, the two agree on
    field names, and every field the route requires is required in the document."""
    import msgspec

    from command_api import route_shapes as shapes
    from command_api.route_source import body_type as _body_type
    from command_api.route_source import sources as _sources
    app = create_app(None)  # type: ignore[arg-type]
    for _method, _path, route in operations(app):
        handler = route.handler
        key = f"{handler.__module__.rsplit('.', 1)[-1]}.{handler.__name__}"
        body = _body_type(_sources(handler))
        if body is None or key not in shapes.REQUESTS:
            continue
        decoded, shown = body[0], shapes.REQUESTS[key]
        shown = getattr(shown, "__origin__", shown)
        if not (isinstance(decoded, type) and issubclass(decoded, msgspec.Struct)):
            continue
        d, s = msgspec.structs.fields(decoded), msgspec.structs.fields(shown)
        assert {f.name for f in d} == {f.name for f in s}, key
        assert {f.name for f in d if f.required} <= {f.name for f in s if f.required}, key
