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
    assert doc["paths"]["/users/profile"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in doc["paths"]["/users"]["post"]
    listing = {p["name"] for p in doc["paths"]["/things"]["get"]["parameters"]}
    assert {"offset", "limit", "status", "name", "metadata"} <= listing
    thing_id = doc["paths"]["/things/{id}"]["get"]["parameters"][0]
    assert thing_id["schema"]["format"] == "uuid"
