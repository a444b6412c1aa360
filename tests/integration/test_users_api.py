"""Users and tokens through HTTP, with the real store, bus and views behind."""

from __future__ import annotations

import time
import uuid

import jwt

from tests.conftest import ADMIN, Client

GUIDE_USER = {"name": "John Doe", "credentials": {"identity": "john.doe@email.com", "secret": "12345678"},
              "status": "enabled"}


async def test_guide_account_and_token(client: Client) -> None:
    st, body, headers = await client.call("POST", "/users", GUIDE_USER)
    assert st == 201
    assert headers["Location"] == f"/users/{body['id']}"
    assert body["credentials"] == {"identity": "john.doe@email.com"}
    assert body["name"] == "John Doe" and body["status"] == "enabled"
    assert "secret" not in str(body)
    assert headers["X-Frame-Options"] == "DENY" and headers["Access-Control-Allow-Origin"] == "*"

    st, tok, _ = await client.call("POST", "/users/tokens/issue",
                                   {"identity": "john.doe@email.com", "secret": "12345678"})
    assert st == 201 and tok["access_type"] == "Bearer"
    # Read-your-writes: the profile right after the create, with no waiting by the client.
    st, profile, _ = await client.call("GET", "/users/profile", token=tok["access_token"])
    assert st == 200 and profile["id"] == body["id"] and profile["name"] == "John Doe"


async def test_bad_bodies(client: Client) -> None:
    cases = [
        ({"credentials": {"identity": "not-an-email", "secret": "12345678"}}, 400),
        ({"credentials": {"identity": "a@example.com", "secret": "1234"}}, 400),
        ({"name": "x"}, 400),
        ({"credentials": {"identity": 5, "secret": "12345678"}}, 400),
    ]
    for body, status in cases:
        st, err, _ = await client.call("POST", "/users", body)
        assert st == status, (body, err)
        assert isinstance(err["error"], str) and err["error"]
    st, err, _ = await client.call("POST", "/users", data=b"{not json", headers={"Content-Type": "application/json"})
    assert st == 400 and "error" in err
    st, err, _ = await client.call("POST", "/users", data=b"identity=a", headers={"Content-Type": "text/plain"})
    assert st == 415
    # Nothing of the above was created.
    admin_token = (await client.call("POST", "/users/tokens/issue",
                                     {"identity": ADMIN[0], "secret": ADMIN[1]}))[1]["access_token"]
    st, users, _ = await client.call("GET", "/users?status=all", token=admin_token)
    assert st == 200 and users["total"] == 1  # the admin alone


async def test_duplicate_identity_is_409(client: Client) -> None:
    assert (await client.call("POST", "/users", GUIDE_USER))[0] == 201
    dup = {**GUIDE_USER, "credentials": {"identity": "John.Doe@email.com", "secret": "abcdefgh"}}
    st, err, _ = await client.call("POST", "/users", dup)
    assert st == 409 and err["error"] == "identity already exists"


async def test_every_bad_token_is_401(client: Client, settings) -> None:  # noqa: ANN001
    uid, token = await client.user()
    st, tok, _ = await client.call("POST", "/users/tokens/issue",
                                   {"identity": "nobody@example.com", "secret": "12345678"})
    assert st == 401
    now = int(time.time())
    expired = jwt.encode({"iss": "smq.auth", "sub": uid, "type": "access", "iat": now - 100, "exp": now - 50},
                         "whatever-key-" + "x" * 60, algorithm="HS512")
    for bad in ["", "garbage", token + "x", expired]:
        st, err, _ = await client.call("GET", "/users/profile", token=bad or None)
        assert st == 401, bad
        assert "error" in err
    st, _, _ = await client.call("GET", "/users/profile", headers={"Authorization": f"Basic {token}"})
    assert st == 401


async def test_refresh(client: Client) -> None:
    identity = f"r{uuid.uuid4().hex[:6]}@example.com"
    await client.user(identity)
    _, pair, _ = await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "12345678"})
    st, new, _ = await client.call("POST", "/users/tokens/refresh", token=pair["refresh_token"])
    assert st == 201 and new["access_token"] and new["refresh_token"]
    st, _, _ = await client.call("POST", "/users/tokens/refresh", token=pair["access_token"])
    assert st == 401
    st, _, _ = await client.call("GET", "/users/profile", token=pair["refresh_token"])
    assert st == 401


async def test_update_and_read_your_writes(client: Client) -> None:
    uid, token = await client.user(name="before")
    st, body, headers = await client.call("PATCH", f"/users/{uid}", {"name": "after", "metadata": {"k": 1}},
                                          token=token)
    assert st == 200 and body["name"] == "after" and int(headers["X-Smq-Position"]) > 0
    st, prof, _ = await client.call("GET", "/users/profile", token=token)
    assert prof["name"] == "after" and prof["metadata"] == {"k": 1}
    st, body, _ = await client.call("PATCH", f"/users/{uid}/tags", {"tags": ["a", "b"]}, token=token)
    assert st == 200 and body["tags"] == ["a", "b"]
    st, got, _ = await client.call("GET", f"/users/{uid}", token=token)
    assert got["tags"] == ["a", "b"]


async def test_secret_change(client: Client) -> None:
    identity = f"s{uuid.uuid4().hex[:6]}@example.com"
    _, token = await client.user(identity)
    st, _, _ = await client.call("PATCH", "/users/secret", {"old_secret": "wrong-one", "new_secret": "newsecret"},
                                 token=token)
    assert st == 401
    st, _, _ = await client.call("PATCH", "/users/secret", {"old_secret": "12345678", "new_secret": "newsecret"},
                                 token=token)
    assert st == 200
    assert (await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "12345678"}))[0] == 401
    assert (await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "newsecret"}))[0] == 201


async def test_visibility_admin_and_users(client: Client) -> None:
    a_id, a_tok = await client.user()
    b_id, b_tok = await client.user()
    st, _, _ = await client.call("GET", f"/users/{b_id}", token=a_tok)
    assert st == 404
    st, _, _ = await client.call("PATCH", f"/users/{b_id}", {"name": "hijack"}, token=a_tok)
    assert st == 404
    st, _, _ = await client.call("POST", f"/users/{b_id}/disable", token=a_tok)
    assert st == 404
    st, mine, _ = await client.call("GET", "/users", token=a_tok)
    assert st == 200 and mine["total"] == 1 and mine["users"][0]["id"] == a_id
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    st, all_users, _ = await client.call("GET", "/users", token=admin["access_token"])
    assert st == 200 and all_users["total"] == 3 and {"limit", "offset"} <= set(all_users)
    # The admin disables b: b can no longer get a token, and leaves the default list.
    st, body, _ = await client.call("POST", f"/users/{b_id}/disable", token=admin["access_token"])
    assert st == 200 and body["status"] == "disabled"
    st, again, _ = await client.call("POST", f"/users/{b_id}/disable", token=admin["access_token"])
    assert st == 200 and again["status"] == "disabled"
    st, listed, _ = await client.call("GET", "/users", token=admin["access_token"])
    assert b_id not in [u["id"] for u in listed["users"]] and listed["total"] == 2
    st, listed, _ = await client.call("GET", "/users?status=disabled", token=admin["access_token"])
    assert [u["id"] for u in listed["users"]] == [b_id]
    st, _, _ = await client.call("GET", "/users?limit=101", token=a_tok)
    assert st == 400
    st, _, _ = await client.call("GET", "/users?offset=-1", token=a_tok)
    assert st == 400


async def test_health(client: Client) -> None:
    st, body, _ = await client.call("GET", "/health")
    assert st == 200 and body["status"] == "pass"
    assert {"store", "bus", "views_sql", "views_redis", "views"} <= set(body["checks"])


async def test_unknown_route_is_json_404(client: Client) -> None:
    st, body, _ = await client.call("GET", "/nope")
    assert st == 404 and body == {"error": "not found"}
