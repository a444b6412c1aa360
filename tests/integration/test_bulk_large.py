"""The largest bulk the API allows commits in one transaction (it used to hang in psycopg's
pipeline mode over the embedded PostgreSQL's Unix socket: infra/esstore.py)."""

from __future__ import annotations

import pytest

from tests.conftest import Client


@pytest.mark.timeout(60)
async def test_a_bulk_of_1000_things_commits(client: Client) -> None:
    _, token = await client.user()
    st, body, _ = await client.call("POST", "/things/bulk", [{"name": f"t{i}"} for i in range(1000)], token=token)
    assert st == 200 and body["total"] == 1000
    st, page, _ = await client.call("GET", "/things?limit=1", token=token)
    assert page["total"] == 1000
    too_many = [{"name": f"x{i}"} for i in range(1001)]
    st, err, _ = await client.call("POST", "/things/bulk", too_many, token=token)
    assert st == 400 and "1000" in err["error"]
