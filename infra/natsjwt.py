"""The few NATS JWT operations the auth callout needs, on ``nkeys`` (ed25519).

A NATS JWT is ``b64url(header).b64url(claims).b64url(signature)``, header
``{"typ":"JWT","alg":"ed25519-nkey"}``, the signature the issuer nkey's over the first two
parts; ``jti`` is any unique id (the server does not recompute it). The server's request is
signed by the server's own key (its ``iss``, ``N…``); our answer and the user JWT inside it by
the issuer (``A…``). Shapes as observed in the spike (docs/mqtt-spike.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from typing import Any

import msgspec
import nkeys
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
REQUEST_AUDIENCE = "nats-authorization-request"
_ENCODE = msgspec.json.Encoder(order="sorted")  # compact, keys sorted
_DECODE = msgspec.json.Decoder()


class BadToken(ValueError):
    """Not a NATS JWT, or not signed by its issuer, or expired."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(msgspec.json.encode(HEADER))  # the encoded header every token starts with


@functools.lru_cache(maxsize=64)  # a server's key signs every request it sends
def verify_key(public: str) -> VerifyKey:
    """The ed25519 key of a NATS public nkey (a prefix byte, 32 key bytes, a CRC16)."""
    raw = base64.b32decode(public + "=" * (-len(public) % 8))
    if len(raw) != 35 or nkeys.crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        raise BadToken("malformed public nkey")
    return VerifyKey(raw[1:33])


def encode(claims: dict[str, Any], kp: nkeys.KeyPair) -> str:
    """``claims`` signed by ``kp`` (its public key as ``iss``)."""
    claims = dict(claims)
    claims.setdefault("iat", int(time.time()))
    claims["iss"] = kp.public_key.decode()
    claims.pop("jti", None)
    claims["jti"] = hashlib.sha256(_ENCODE.encode(claims)).hexdigest()  # unique; the server never recomputes it
    signing_input = f"{_HEADER}.{_b64(_ENCODE.encode(claims))}"
    return f"{signing_input}.{_b64(kp.sign(signing_input.encode()))}"


def decode(token: str, now: float | None = None) -> dict[str, Any]:
    """The claims of ``token``, its signature checked against its own ``iss`` and its ``exp``."""
    try:
        head, body, sig = token.split(".")
        if head != _HEADER and _DECODE.decode(_unb64(head)) != HEADER:
            raise BadToken("not a NATS JWT")
        claims = _DECODE.decode(_unb64(body))
        if not isinstance(claims, dict) or not isinstance(claims.get("iss"), str):
            raise BadToken("no issuer")
        verify_key(claims["iss"]).verify(f"{head}.{body}".encode(), _unb64(sig))
    except (ValueError, TypeError, BadSignatureError, msgspec.DecodeError) as exc:
        raise BadToken(type(exc).__name__) from None
    exp = claims.get("exp")
    if isinstance(exp, int | float) and exp < (time.time() if now is None else now):
        raise BadToken("expired")
    return claims


def authorization_request(token: str) -> dict[str, Any]:
    """The server's question (the ``nats`` claim of a checked ``authorization_request``);
    it carries the client's password: never log it."""
    claims = decode(token)
    nats = claims.get("nats")
    if claims.get("aud") != REQUEST_AUDIENCE or not isinstance(nats, dict) \
            or nats.get("type") != "authorization_request" or claims["iss"] != \
            (nats.get("server_id") or {}).get("id") or not isinstance(nats.get("user_nkey"), str):
        raise BadToken("not an authorization request")
    return nats


def user_jwt(kp: nkeys.KeyPair, user_nkey: str, account: str, name: str, pub_allow: list[str],
             sub_allow: list[str], ttl: float) -> str:
    """A user of ``account`` named ``name`` that may publish and subscribe on those subjects
    only (an empty side: nothing), for ``ttl`` seconds."""
    now = int(time.time())
    nats = {"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1,
            "pub": {"allow": pub_allow} if pub_allow else {"deny": [">"]},
            "sub": {"allow": sub_allow} if sub_allow else {"deny": [">"]}}
    return encode({"sub": user_nkey, "aud": account, "name": name, "iat": now,
                   "exp": now + int(ttl), "nats": nats}, kp)


def authorization_response(kp: nkeys.KeyPair, request: dict[str, Any], jwt: str | None = None,
                           error: str | None = None) -> str:
    """The answer to ``request`` (its ``nats`` claim): the user JWT, or an error (refused)."""
    nats: dict[str, Any] = {"type": "authorization_response", "version": 2}
    if jwt:
        nats["jwt"] = jwt
    else:
        nats["error"] = error or "not authorized"
    return encode({"sub": request["user_nkey"], "aud": request["server_id"]["id"], "nats": nats}, kp)
