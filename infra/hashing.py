"""Argon2id password hashes (the Hasher port of the domain)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2Hasher:
    """Slow salted hashes; verification is constant-time inside argon2."""

    def __init__(self, time_cost: int = 2, memory_cost: int = 19 * 1024, parallelism: int = 1) -> None:
        # OWASP's minimum for argon2id: m=19 MiB, t=2, p=1 (stronger than bcrypt cost 10).
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)

    def hash(self, secret: str) -> str:
        return self._ph.hash(secret)

    def verify(self, secret_hash: str, secret: str) -> bool:
        try:
            return self._ph.verify(secret_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
