"""A lease whose database cannot be reached is simply not held: the caller (a standby relay
polling for it) tries again later instead of dying."""

from __future__ import annotations

from infra.lease import Lease


async def test_an_unreachable_database_is_not_held_and_does_not_raise() -> None:
    # Nothing listens on port 1: psycopg raises OperationalError (not an OSError).
    lease = Lease("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2", "smq-relay:test")
    assert await lease.acquire() is False
    assert await lease.acquire() is False  # and again, from a clean state
    assert not lease.held
    await lease.release()
