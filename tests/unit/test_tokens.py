"""Token rules: type, expiry, signature, algorithm."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import jwt
import pytest

from domain.errors import Unauthenticated
from infra.tokens import ALGORITHM, ISSUER, Tokens

SECRET = "s" * 48
KEY = hashlib.sha512(b"smq-es/jwt/" + SECRET.encode()).digest()


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(SECRET, 900, 86400)


def test_issued_pair_checks_with_its_own_type(tokens: Tokens) -> None:
    uid = uuid.uuid4()
    pair = tokens.issue(uid, "a@b.co", "user")
    assert pair["access_type"] == "Bearer"
    assert tokens.check(pair["access_token"], "access").user_id == uid
    assert tokens.check(pair["refresh_token"], "refresh").user_id == uid
    with pytest.raises(Unauthenticated):
        tokens.check(pair["refresh_token"], "access")
    with pytest.raises(Unauthenticated):
        tokens.check(pair["access_token"], "refresh")


def test_claims_are_those_of_the_contract(tokens: Tokens) -> None:
    pair = tokens.issue(uuid.uuid4(), "a@b.co", "user")
    claims = jwt.decode(pair["access_token"], KEY, algorithms=[ALGORITHM])
    assert {"sub", "identity", "type", "iat", "exp"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 900


def _forge(claims: dict, key: str | bytes = KEY, alg: str = ALGORITHM) -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _claims(**over: object) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": str(uuid.uuid4()), "identity": "a@b.co", "type": "access",
            "iat": now, "exp": now + 60}
    base.update(over)
    return base


@pytest.mark.parametrize("token", [
    "", "garbage", "a.b.c",
    _forge(_claims(exp=int(time.time()) - 10)),                 # expired
    _forge(_claims(), key=b"another-key-" + b"k" * 60),            # wrong signature
    _forge(_claims(), alg="HS256"),                              # wrong algorithm
    _forge(_claims(sub="not-a-uuid")),
    _forge({k: v for k, v in _claims().items() if k != "exp"}),  # no expiry
])
def test_bad_tokens_are_refused(tokens: Tokens, token: str) -> None:
    with pytest.raises(Unauthenticated):
        tokens.check(token, "access")


def test_alg_none_is_refused(tokens: Tokens) -> None:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    token = b64({"alg": "none", "typ": "JWT"}) + "." + b64(_claims()) + "."
    with pytest.raises(Unauthenticated):
        tokens.check(token, "access")


def test_tampered_payload_is_refused(tokens: Tokens) -> None:
    pair = tokens.issue(uuid.uuid4(), "a@b.co", "user")
    head, payload, sig = pair["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        tokens.check(f"{head}.{forged}.{sig}", "access")


def test_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError):
        Tokens("short", 1, 1)
