"""The token rules under attack, through HTTP: every forged, altered, expired, misused or
orphaned token is the same 401 on a protected route."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import ADMIN, Client

PROTECTED = [("GET", "/users/profile"), ("GET", "/things"), ("POST", "/channels")]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(p))), s


def _forge(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), signature])


async def _refused(client: Client, token: str, what: str) -> None:
    for method, path in PROTECTED:
        st, body, headers = await client.call(method, path, {"name": "x"} if method == "POST" else None,
                                              token=token)
        assert st == 401, (what, method, path, st, body)
        assert isinstance(body, dict) and body.get("error"), what
        assert headers["X-Frame-Options"] == "DENY"


async def test_forged_and_altered_tokens(client: Client, service: Any) -> None:
    uid, token = await client.user()
    assert (await client.call("GET", "/users/profile", token=token))[0] == 200
    header, payload, signature = _parts(token)
    key = service.container.tokens._secret  # the real signing key
    now = int(time.time())
    claims = {**payload, "iat": now, "exp": now + 600}

    # A changed signature (one character in the middle, so the decoded bytes differ).
    mid = len(signature) // 2
    flipped = signature[:mid] + ("A" if signature[mid] != "A" else "B") + signature[mid + 1:]
    await _refused(client, f"{token.rsplit('.', 1)[0]}.{flipped}", "tampered signature")
    await _refused(client, f"{token.rsplit('.', 1)[0]}.", "empty signature")
    # A changed payload under the old signature: another user, or the admin role.
    await _refused(client, _forge(header, {**payload, "sub": str(uuid.uuid4())}, signature), "other sub")
    await _refused(client, _forge(header, {**payload, "role": "admin"}, signature), "role admin")
    await _refused(client, _forge(header, {**payload, "exp": now + 10**6}, signature), "longer exp")
    # Expired, though signed with the real key.
    expired = jwt.encode({**payload, "iat": now - 3600, "exp": now - 60}, key, algorithm="HS512")
    await _refused(client, expired, "expired")
    # Not yet valid iat is fine for PyJWT, but an absent exp is not.
    no_exp = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key, algorithm="HS512")
    await _refused(client, no_exp, "no exp")
    await _refused(client, jwt.encode({**claims, "iss": "someone.else"}, key, algorithm="HS512"), "issuer")
    await _refused(client, jwt.encode({**claims, "sub": "not-a-uuid"}, key, algorithm="HS512"), "bad sub")
    # Other algorithms, with the same key or the configured secret.
    await _refused(client, jwt.encode(claims, key, algorithm="HS256"), "HS256 same key")
    await _refused(client, jwt.encode(claims, key, algorithm="HS384"), "HS384 same key")
    secret = service.settings.jwt_secret.encode()
    await _refused(client, jwt.encode(claims, secret, algorithm="HS512"), "unstretched secret")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await _refused(client, jwt.encode(claims, private, algorithm="RS256"), "RS256")
    # alg none, in its spellings, with and without the old signature.
    for alg in ("none", "None", "NONE", "nOnE"):
        await _refused(client, _forge({"alg": alg, "typ": "JWT"}, claims, ""), f"alg {alg}")
        await _refused(client, _forge({"alg": alg, "typ": "JWT"}, claims, signature), f"alg {alg} + sig")
    # The header claims HS512 but names a key id or a key URL: the signature still decides.
    await _refused(client, _forge({**header, "kid": "../../dev/null", "jku": "http://evil/"},
                                  {**payload, "role": "admin"}, signature), "kid/jku")
    # The original still works: nothing above was a lock-out.
    assert (await client.call("GET", "/users/profile", token=token))[0] == 200


async def test_refresh_token_is_not_an_access_token(client: Client) -> None:
    identity = f"r{uuid.uuid4().hex[:8]}@example.com"
    await client.user(identity)
    _, pair, _ = await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "12345678"})
    await _refused(client, pair["refresh_token"], "refresh as access")
    st, _, _ = await client.call("POST", "/users/tokens/refresh", token=pair["access_token"])
    assert st == 401


async def test_tokens_of_disabled_and_unknown_users(client: Client, service: Any) -> None:
    identity = f"d{uuid.uuid4().hex[:8]}@example.com"
    uid, _ = await client.user(identity)
    _, pair, _ = await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "12345678"})
    assert (await client.call("GET", "/users/profile", token=pair["access_token"]))[0] == 200
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    st, _, _ = await client.call("POST", f"/users/{uid}/disable", token=admin["access_token"])
    assert st == 200
    # At once, without waiting for any view: the token of a disabled user is refused.
    await _refused(client, pair["access_token"], "disabled user")
    st, _, _ = await client.call("POST", "/users/tokens/refresh", token=pair["refresh_token"])
    assert st == 401
    st, _, _ = await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "12345678"})
    assert st == 401
    # Enabled again: the tokens issued before the disable stay ended; a new login works.
    assert (await client.call("POST", f"/users/{uid}/enable", token=admin["access_token"]))[0] == 200
    await _refused(client, pair["access_token"], "token of before the disable")
    st, _, _ = await client.call("POST", "/users/tokens/refresh", token=pair["refresh_token"])
    assert st == 401
    st, fresh, _ = await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "12345678"})
    assert st == 201
    assert (await client.call("GET", "/users/profile", token=fresh["access_token"]))[0] == 200

    # A well-signed token of a user the store does not know (deleted, or never was).
    ghost = service.container.tokens.issue(uuid.uuid4(), "ghost@example.com", "admin")
    await _refused(client, ghost["access_token"], "unknown user")
    st, _, _ = await client.call("POST", "/users/tokens/refresh", token=ghost["refresh_token"])
    assert st == 401
