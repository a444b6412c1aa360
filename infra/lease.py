"""A lease held as a PostgreSQL advisory lock: one holder per key across processes.

The lock belongs to a database session, so a holder that dies (or loses its connection)
lets it go at once and a standby takes it over on its next try.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

import psycopg
from psycopg import AsyncConnection

log = logging.getLogger("smq.lease")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lease name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Lease:
    def __init__(self, database_url: str, name: str) -> None:
        self.url, self.name, self.key = database_url, name, lock_key(name)
        self._conn: AsyncConnection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held and self._conn is not None and not self._conn.closed

    async def acquire(self) -> bool:
        """True when this process holds the lease (now or already)."""
        if self.held:
            return True
        self._held = False
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await AsyncConnection.connect(self.url, autocommit=True)
            row = await (await self._conn.execute("select pg_try_advisory_lock(%s)", (self.key,))).fetchone()
        except (OSError, psycopg.Error) as exc:  # PostgreSQL away or restarting: try again later
            log.warning("lease %s: %s", self.name, exc)
            if self._conn is not None and not self._conn.closed:
                with contextlib.suppress(Exception):
                    await self._conn.close()
            self._conn = None
            return False
        self._held = bool(row and row[0])
        if self._held:
            log.info("lease %s taken", self.name)
        return self._held

    async def release(self) -> None:
        self._held = False
        if self._conn is not None and not self._conn.closed:
            await self._conn.close()
        self._conn = None
