"""CertsView: issued certificates by serial and by thing, and which are revoked (for the CRL)."""

from __future__ import annotations

from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from domain.certs import CertBook
from projections.envelope import Envelope
from projections.sqlview import Handlers, SqlView

NAME = "certs"
TABLES = ("certs_view",)


async def _opened(cur: AsyncCursor, e: Envelope) -> None:
    return None  # the book itself has nothing to show; its certificates do


async def _issued(cur: AsyncCursor, e: Envelope) -> None:
    d = e.data
    await cur.execute(
        "insert into certs_view (serial, thing_id, owner, cert, expires_at, issued_at, created_pos)"
        " values (%s,%s,%s,%s,%s,%s,%s) on conflict (serial) do nothing",
        (d["serial"], d["thing_id"], d["owner"], d["cert"], d["expires_at"], e.occurred_at, e.position))


async def _revoked(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update certs_view set revoked_at=%s where serial = any(%s)",
                      (e.data["revoked_at"], list(e.data["serials"])))


HANDLERS: Handlers = {
    CertBook.Opened: _opened,
    CertBook.Issued: _issued,
    CertBook.Revoked: _revoked,
}


def certs_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
