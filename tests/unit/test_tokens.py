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


# -- verified tokens are remembered (Tokens._verified) -----------------------------------------
def test_a_remembered_token_is_verified_once(tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    verify = tokens._verify

    def counting(token: str, kind: str) -> tuple:
        calls.append(kind)
        return verify(token, kind)

    monkeypatch.setattr(tokens, "_verify", counting)
    uid = uuid.uuid4()
    access = tokens.issue(uid, "a@b.co", "user")["access_token"]
    assert [tokens.check(access, "access").user_id for _ in range(5)] == [uid] * 5
    assert calls == ["access"]


def test_a_remembered_token_is_refused_once_it_has_expired() -> None:
    tokens = Tokens(SECRET, 1, 86400)
    now = time.time()
    exp = int(now) + 1  # valid now, expired within a second (PyJWT reads the real clock)
    token = _forge(_claims(iat=int(now), exp=exp))
    assert tokens.check(token, "access").identity == "a@b.co"
    assert (token, "access") in tokens._verified  # remembered while valid
    deadline = time.monotonic() + 5
    while time.time() <= exp + 0.05:  # wait (bounded) until the token is past its expiry
        assert time.monotonic() < deadline, "the clock did not pass the token's expiry"
        time.sleep(0.02)
    with pytest.raises(Unauthenticated):
        tokens.check(token, "access")
    assert (token, "access") not in tokens._verified  # and forgotten
    with pytest.raises(Unauthenticated):
        tokens.check(token, "access")


def test_the_remembered_kind_is_part_of_the_key(tokens: Tokens) -> None:
    uid = uuid.uuid4()
    pair = tokens.issue(uid, "a@b.co", "user")
    refresh, access = pair["refresh_token"], pair["access_token"]
    # Verified (and remembered) as what they are...
    assert tokens.check(refresh, "refresh").type == "refresh"
    assert tokens.check(access, "access").type == "access"
    # ...each is still refused as the other kind, however often it is presented.
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            tokens.check(refresh, "access")
        with pytest.raises(Unauthenticated):
            tokens.check(access, "refresh")
    assert tokens.check(refresh, "refresh").user_id == uid  # the right kind still passes


def test_the_remembered_tokens_stay_bounded(tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.tokens

    monkeypatch.setattr(infra.tokens, "CACHED_TOKENS", 3)
    issued = [tokens.issue(uuid.uuid4(), f"u{i}@b.co", "user")["access_token"] for i in range(10)]
    for token in issued:
        tokens.check(token, "access")
        assert len(tokens._verified) <= 3
    # The oldest went first; the newest are remembered.
    assert list(tokens._verified) == [(t, "access") for t in issued[-3:]]
    # A forgotten token is verified again, and still passes.
    assert tokens.check(issued[0], "access").identity == "u0@b.co"
    assert len(tokens._verified) <= 3
    # A refused token is never remembered.
    with pytest.raises(Unauthenticated):
        tokens.check(_forge(_claims(), key=b"another-key-" + b"k" * 60), "access")
    assert len(tokens._verified) <= 3


def test_an_overlong_token_is_not_remembered(tokens: Tokens) -> None:
    from infra.tokens import CACHED_TOKEN_LENGTH

    token = tokens.issue(uuid.uuid4(), "a" * CACHED_TOKEN_LENGTH + "@b.co", "user")["access_token"]
    assert len(token) > CACHED_TOKEN_LENGTH
    assert tokens.check(token, "access").identity.endswith("@b.co")
    assert tokens._verified == {}
