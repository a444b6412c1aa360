"""Faults injected into the provisioning service, for tests: a step that fails, a step after
which the process dies, a CA that refuses to sign. The product knows nothing of them: a test
puts a ``FaultySaga`` where the service's provisioning service is (``inject``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.base import Meta
from domain.errors import DomainError
from infra.ca import CertificateAuthority, IssuedWithCa
from infra.store import Store
from workers.provisioning import SagaRunner


class Crash(BaseException):
    """Test fault: the process dies here (not an Exception, so nothing on the way catches it)."""


@dataclass
class Faults:
    """Faults to inject: a step that fails, or a step after which the process dies."""

    fail_at: str | None = None
    crash_after: str | None = None
    ca_refuses: bool = False


class FaultySaga(SagaRunner):
    """The provisioning service with ``faults``."""

    def __init__(self, store: Store, ca: CertificateAuthority | None, faults: Faults | None = None,
                 whole: bool = True) -> None:
        super().__init__(store, ca, whole)
        self.faults = faults or Faults()

    @property
    def at_once(self) -> bool:
        # A failure or a crash between steps needs the steps.
        return self.whole and self.faults.fail_at is None and self.faults.crash_after is None

    def issuer(self, common_name: str, ttl: float, thing_id: str) -> IssuedWithCa:
        if self.faults.ca_refuses:
            raise RuntimeError("the certificate authority refused to sign")
        return super().issuer(common_name, ttl, thing_id)

    async def step(self, prov_id: UUID, step: str, meta: Meta) -> Any:
        if self.faults.fail_at == step:
            raise DomainError(f"injected failure at {step}")
        return await super().step(prov_id, step, meta)

    def stepped(self, step: str) -> None:
        if self.faults.crash_after == step:
            raise Crash(step)


def inject(container: Any, faults: Faults) -> None:
    """The container's provisioning service from now on: one with ``faults``."""
    container.saga = FaultySaga(container.store, container.ca, faults, whole=container.settings.provision_at_once)


async def compensate_abandoned(container: Any, prov_id: UUID) -> Any:
    """The saga process's recovery of a provisioning left running (its API process died):
    once the view shows it running, ``recover`` compensates it; the provisioning after."""
    from tests.conftest import eventually

    async def seen_running() -> bool:
        async with container.pool.connection() as conn:
            row = await (await conn.execute("select status from provisionings_view where id=%s",
                                            (prov_id,))).fetchone()
        return row is not None and row[0] == "running"

    await eventually(seen_running, what="the provisioning in the view")
    assert await SagaRunner(container.store, container.ca).recover(container.pool, stale_after=0) == [prov_id]
    return await container.store.run(container.store.app.provisioning, prov_id)
