"""A bounded fuzz run of the whole API from its own /openapi.json (schemathesis) with every
check: no answer is a 5xx, every answer (status, media type, headers, body) is one the document
describes, what it calls valid is taken and what it calls invalid refused, auth is enforced where
declared; and no refused request (4xx) changes the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation

from tests.conftest import Client

EXAMPLES = 6           # per operation and generation mode
TOTAL_BOUND = 60.0     # seconds for the whole run; operations left over are reported, not run
SEED = 20240901


def _fuzz(doc: dict[str, Any], base_url: str, token: str,
          position: Callable[[], int]) -> tuple[list[str], int, list[str]]:
    """Run every operation in turn; the faults found, the calls made and the operations skipped."""
    schema = schemathesis.openapi.from_dict(doc)
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + TOTAL_BOUND
    faults: list[str] = []
    skipped: list[str] = []
    calls = 0
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.label)
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() > deadline:
                skipped.append(f"{op.label} ({mode.value})")
                continue

            @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                                 phases=[Phase.explicit, Phase.generate], print_blob=False,
                                 suppress_health_check=list(HealthCheck))
            @hypothesis.given(case=op.as_strategy(generation_mode=mode))
            @hypothesis.seed(SEED)
            def check(case: Any) -> None:
                nonlocal calls
                if time.monotonic() > deadline:
                    return
                before = position()
                try:
                    # A case without its credentials (negative in its headers) is sent as made.
                    sent = {} if case.meta.is_negative_at(ParameterLocation.HEADER) else headers
                    resp = case.call_and_validate(base_url=base_url,
                                                  headers={**(case.headers or {}), **sent}, timeout=15)
                except FailureGroup as exc:
                    faults.append(f"{case.operation.label}: {exc}"[:1500])
                    return
                except Exception as exc:  # noqa: BLE001 - a reset connection is a fault too
                    faults.append(f"{case.operation.label}: {type(exc).__name__}: {exc}"[:1500])
                    return
                calls += 1
                if resp.status_code >= 400 and position() != before:
                    faults.append(f"{case.operation.label} -> {resp.status_code} yet the store moved\n"
                                  f"  {case.as_curl_command()[:600]}")

            try:
                check()
            except Unsatisfiable:
                pass  # nothing to make invalid in this operation (no parameters, no body)
    return faults, calls, skipped


async def test_fuzz_the_api_from_its_openapi_document(client: Client, service: Any) -> None:
    _, token = await client.user()
    st, doc, _ = await client.call("GET", "/openapi.json")
    assert st == 200
    loop = asyncio.get_running_loop()
    store = service.container.store

    def position() -> int:
        return asyncio.run_coroutine_threadsafe(store.max_position(), loop).result(10)

    started = time.monotonic()
    faults, calls, skipped = await asyncio.to_thread(_fuzz, doc, service.url, token, position)
    assert not faults, "\n".join(faults[:60])
    assert calls >= 200, (calls, skipped)
    assert time.monotonic() - started < TOTAL_BOUND + 30
    # The service is still well after the run.
    st, body, _ = await client.call("GET", "/health")
    assert st == 200, body


async def test_refused_requests_change_nothing(client: Client, service: Any) -> None:
    uid, token = await client.user()
    _, other = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "mine"}, token=token)
    st, channel, _ = await client.call("POST", "/channels", {"name": "mine"}, token=token)
    tid, cid = thing["id"], channel["id"]
    before = await service.container.store.max_position()
    ghost = "00000000-0000-4000-8000-000000000000"
    batch: list[tuple[str, str, Any, str | None]] = [
        ("POST", "/users", {"credentials": {"identity": "bad", "secret": "12345678"}}, None),
        ("POST", "/users", {"credentials": {"identity": "x@example.com", "secret": "short"}}, None),
        ("POST", "/things", {"name": "x"}, None),                           # no token
        ("POST", "/things", {"name": "x"}, "garbage"),                      # bad token
        ("POST", "/things", {"id": "not-a-uuid", "name": "x"}, token),
        ("POST", "/things/bulk", [{"name": "ok"}, {"name": 5}], token),     # all or nothing
        ("POST", "/things/bulk", [], token),
        ("PATCH", f"/things/{tid}", {"name": "hijack"}, other),             # not theirs: 404
        ("POST", f"/things/{tid}/disable", None, other),
        ("PATCH", f"/things/{ghost}", {"name": "x"}, token),
        ("PUT", f"/channels/{cid}/things/{ghost}", None, token),
        ("POST", "/connect", {"channel_ids": [cid], "thing_ids": [tid, ghost]}, token),
        ("DELETE", f"/channels/{cid}/things/{tid}", None, token),           # not connected
        ("POST", f"/things/{tid}/share", {"user_ids": [uid], "actions": ["fly"]}, token),
        ("POST", "/policies", {"subject": ghost, "object": cid, "actions": ["g_add"]}, other),
        ("PATCH", "/users/secret", {"old_secret": "wrong-secret", "new_secret": "newsecret"}, token),
        ("POST", f"/users/{uid}/disable", None, other),
        ("POST", "/things/configs", {"external_key": "k"}, token),
        ("PUT", f"/things/state/{tid}", {"state": 7}, token),
        ("POST", "/certs", {"thing_id": ghost, "ttl": "1h"}, token),
        ("POST", "/mapping", {"external_key": "k"}, token),
    ]
    for method, path, body, tok in batch:
        st, err, _ = await client.call(method, path, body, token=tok)
        assert 400 <= st < 500, (method, path, st, err)
    assert await service.container.store.max_position() == before
