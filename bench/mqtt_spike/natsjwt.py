"""The few NATS JWT operations an auth callout needs, on top of ``nkeys`` (ed25519).

A NATS JWT is ``b64url(header).b64url(claims).b64url(ed25519 signature)`` with the header
``{"typ":"JWT","alg":"ed25519-nkey"}``; the signature is made by the issuer's nkey over the
first two parts. ``jti`` is any unique id (the server does not recompute it).
"""
from __future__ import annotations

import base64
import hashlib
import json
import time

import nkeys
from nacl.signing import VerifyKey

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_key(public: str) -> VerifyKey:
    """The ed25519 key of a NATS public nkey (one prefix byte, 32 key bytes, CRC16)."""
    raw = base64.b32decode(public + "=" * (-len(public) % 8))
    if len(raw) != 35 or nkeys.crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        raise ValueError("malformed public nkey")
    return VerifyKey(raw[1:33])


def encode(claims: dict, kp: nkeys.KeyPair) -> str:
    claims = dict(claims)
    claims.setdefault("iat", int(time.time()))
    claims["iss"] = kp.public_key.decode()
    body = json.dumps(claims, separators=(",", ":"), sort_keys=True)
    claims["jti"] = base64.b32encode(hashlib.sha256(body.encode()).digest()).decode().rstrip("=")
    signing_input = f"{_b64(json.dumps(HEADER).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(kp.sign(signing_input.encode()))}"


def decode(token: str, issuer: str | None = None) -> dict:
    """The claims of ``token``, its signature checked against its ``iss`` (which must be
    ``issuer`` when given: a server's request is signed by the server's own key)."""
    head, body, sig = token.split(".")
    if json.loads(_unb64(head)) != HEADER:
        raise ValueError("not a NATS JWT")
    claims = json.loads(_unb64(body))
    if issuer is not None and claims.get("iss") != issuer:
        raise ValueError("unexpected issuer")
    verify_key(claims["iss"]).verify(f"{head}.{body}".encode(), _unb64(sig))
    return claims


def user_jwt(kp: nkeys.KeyPair, user_nkey: str, account: str, name: str,
             pub_allow: list[str], sub_allow: list[str], ttl: int | None = None,
             tags: list[str] | None = None) -> str:
    now = int(time.time())
    nats = {"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1,
            "pub": {"allow": pub_allow} if pub_allow else {"deny": [">"]},
            "sub": {"allow": sub_allow} if sub_allow else {"deny": [">"]}}
    if tags:
        nats["tags"] = tags
    claims = {"sub": user_nkey, "aud": account, "name": name, "iat": now, "nats": nats}
    if ttl:
        claims["exp"] = now + ttl
    return encode(claims, kp)


def auth_response(kp: nkeys.KeyPair, request: dict, jwt: str | None = None,
                  error: str | None = None) -> str:
    nats = {"type": "authorization_response", "version": 2}
    if jwt:
        nats["jwt"] = jwt
    if error:
        nats["error"] = error
    return encode({"sub": request["nats"]["user_nkey"], "aud": request["nats"]["server_id"]["id"],
                   "nats": nats}, kp)
