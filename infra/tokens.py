"""JWT access and refresh tokens: HS512, with sub, identity, type, iat, exp and epoch (the user's
token epoch when issued: a secret change or a disable starts a new one and ends older tokens;
a counter, not a time, so no clock and no one-second ``iat`` decides)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt

from domain.errors import Unauthenticated

ISSUER = "smq.auth"
ALGORITHM = "HS512"
CACHED_TOKENS = 10_000
CACHED_TOKEN_LENGTH = 2048


@dataclass(frozen=True)
class Claims:
    user_id: UUID
    identity: str
    role: str
    type: str
    epoch: int = 0  # tokens of earlier releases carry none: epoch 0


class Tokens:
    """Issues and checks tokens; every fault is the same 401 to the caller."""

    def __init__(self, secret: str, access_ttl: float, refresh_ttl: float) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes")
        # HS512 wants a 64-byte key; the configured secret (32 bytes or more) is stretched to one.
        self._secret = hashlib.sha512(b"smq-es/jwt/" + secret.encode()).digest()
        self.access_ttl, self.refresh_ttl = access_ttl, refresh_ttl
        # Tokens already verified, with their expiry: a client sends the same token with
        # every request, and its signature is checked once. Bounded; the oldest go first.
        self._verified: dict[tuple[str, str], tuple[Claims, float]] = {}

    def _encode(self, user_id: UUID, identity: str, role: str, kind: str, ttl: float, now: float,
                epoch: int) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER, "sub": str(user_id), "identity": identity, "role": role,
            "type": kind, "iat": int(now), "exp": int(now + ttl), "epoch": epoch,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue(self, user_id: UUID, identity: str, role: str, epoch: int = 0) -> dict[str, str]:
        now = time.time()
        return {
            "access_token": self._encode(user_id, identity, role, "access", self.access_ttl, now, epoch),
            "refresh_token": self._encode(user_id, identity, role, "refresh", self.refresh_ttl, now, epoch),
            "access_type": "Bearer",
        }

    def check(self, token: str, kind: str) -> Claims:
        known = self._verified.get((token, kind))
        if known is not None:
            claims, exp = known
            if exp > time.time():
                return claims
            self._verified.pop((token, kind), None)
        claims, exp = self._verify(token, kind)
        if len(token) <= CACHED_TOKEN_LENGTH:
            if len(self._verified) >= CACHED_TOKENS:
                del self._verified[next(iter(self._verified))]
            self._verified[(token, kind)] = (claims, exp)
        return claims

    def _verify(self, token: str, kind: str) -> tuple[Claims, float]:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "type", "iss"]},
            )
            if claims.get("type") != kind:
                raise Unauthenticated(f"not an {kind} token" if kind == "access" else f"not a {kind} token")
            epoch = claims.get("epoch", 0)
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise ValueError("epoch")
            return Claims(UUID(claims["sub"]), str(claims.get("identity", "")),
                          str(claims.get("role", "user")), kind, epoch), float(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise Unauthenticated("invalid or expired token") from exc
