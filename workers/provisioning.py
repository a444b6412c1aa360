"""The provisioning service (an application service the API calls, and the saga worker's
recovery uses): drives a provisioning through its steps, compensates in reverse when one
fails, and takes over provisionings a dead process left running.

Every step and every compensation is one command whose changes and saga record commit
together (domain/provisioning.py), so this loop holds no state of its own that matters:
any process can pick up any provisioning where the store says it stands.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from domain.base import Meta
from domain.commands import FailProvisioning, ProvisionGateway, ProvisionStep
from domain.common import NO_META, Principal
from domain.errors import Conflict, DomainError
from domain.provisioning import (
    COMPENSATING,
    RUNNING,
    STEPS,
    AlreadyStarted,
    Provisioning,
)
from infra import metrics
from infra.ca import CertificateAuthority, IssuedWithCa, issue_with_ca
from infra.store import Store

log = logging.getLogger("smq.saga")


OnCommit = Callable[[int | None], Awaitable[None]]


class SagaRunner:
    """Runs provisionings to their end, completed or compensated."""

    def __init__(self, store: Store, ca: CertificateAuthority | None, whole: bool = True) -> None:
        self.store, self.ca, self.whole = store, ca, whole

    @property
    def at_once(self) -> bool:
        """Whether a new provisioning is first tried whole, in one transaction
        (``SMQ_PROVISION_AT_ONCE``)."""
        return self.whole

    async def run_at_once(self, who: Principal, cmd: ProvisionGateway,
                          meta: Meta = NO_META) -> tuple[Provisioning, dict[str, Any], int] | None:
        """A new provisioning whole, in one transaction: the provisioning, its answer and the
        position; None when it is not new or a step fails (nothing saved: the stepwise saga
        takes it, and records and compensates a failure)."""
        if not self.at_once:
            return None
        try:
            done = await self.store.command(self.store.app.provision_at_once, who, cmd, self.issuer, meta=meta)
        except (AlreadyStarted, DomainError):
            return None
        metrics.saga_steps_ok(STEPS)
        p, answer = done.result
        return p, answer, done.position or 0

    def _with(self, on_commit: OnCommit) -> SagaRunner:
        self._on_commit = on_commit
        return self

    def issuer(self, common_name: str, ttl: float, thing_id: str) -> IssuedWithCa:
        return issue_with_ca(self.ca, common_name, ttl, thing_id)

    async def step(self, prov_id: UUID, step: str, meta: Meta) -> Any:
        """One step's command, committed with its record."""
        return await self._command(self.store.app.provision_step, ProvisionStep(prov_id, step), self.issuer,
                                   meta=meta)

    def stepped(self, step: str) -> None:
        """A step is done (a hook: tests/faults.py stops the process here)."""

    async def _command(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        done = await self.store.command(fn, *args, **kwargs)
        if self._on_commit is not None:
            await self._on_commit(done.position)
        return done

    _on_commit: OnCommit | None = None

    async def run(self, prov_id: UUID, meta: Meta = NO_META, on_commit: OnCommit | None = None) -> Provisioning:
        """Drive one provisioning until it is completed or compensated; its final state."""
        if on_commit is not None:
            return await copy.copy(self)._with(on_commit).run(prov_id, meta)
        app = self.store.app
        p: Provisioning = await self.store.run(app.provisioning, prov_id)
        while p.status == RUNNING and p.pending:
            step = p.pending[0]
            try:
                done = await self.step(prov_id, step, meta)
                p = done.result
                metrics.saga_step(step, "ok")
            except Conflict as exc:
                p = await self.store.run(app.provisioning, prov_id)
                if p.status != RUNNING:
                    break  # another process failed it meanwhile and compensates
                await self._fail(prov_id, step, exc, meta)
                break
            except DomainError as exc:
                await self._fail(prov_id, step, exc, meta)
                break
            self.stepped(step)
        return await self.compensate(prov_id, meta)

    async def _fail(self, prov_id: UUID, step: str, exc: DomainError | None, meta: Meta) -> None:
        log.info("provisioning %s failed at %s: %s", prov_id, step, exc.message if exc else "interrupted")
        metrics.saga_step(step, "failed")
        # The error's kind (its class), not an HTTP status: the API maps kinds in one place.
        fail = (FailProvisioning(prov_id, step) if exc is None
                else FailProvisioning(prov_id, step, type(exc).__name__, exc.message))
        await self._command(self.store.app.execute, None, fail, meta=meta)

    async def compensate(self, prov_id: UUID, meta: Meta = NO_META) -> Provisioning:
        """Undo, in reverse order, every done step of a failed provisioning; its final state."""
        app = self.store.app
        p: Provisioning = await self.store.run(app.provisioning, prov_id)
        if p.status != COMPENSATING:
            return p
        for step in reversed([s for s in STEPS if s in p.done and s not in p.compensated]):
            await self._command(app.compensate_step, prov_id, step, meta=meta)
            metrics.saga_step(step, "compensated")
        done = await self._command(app.end_compensation, prov_id, meta=meta)
        metrics.saga_compensation()
        return done.result

    async def recover(self, pool: AsyncConnectionPool, stale_after: float) -> list[UUID]:
        """Fail and compensate the provisionings that no process has moved for ``stale_after``
        seconds (their process died), and finish compensations left half way."""
        async with pool.connection() as conn:
            rows = await (await conn.execute(
                "select id, status from provisionings_view where status = any(%s) and updated_at < now() - %s"
                " order by updated_at limit 100",
                ([RUNNING, COMPENSATING], dt.timedelta(seconds=stale_after)))).fetchall()
        taken: list[UUID] = []
        for prov_id, _status in rows:
            meta = Meta(actor=None, correlation_id=f"saga-recovery:{prov_id}", causation_id="saga-recovery")
            try:
                p = await self.store.run(self.store.app.provisioning, prov_id)
                if p.status == RUNNING:
                    await self._fail(prov_id, p.pending[0] if p.pending else STEPS[-1], None, meta)
                if p.status in (RUNNING, COMPENSATING):
                    await self.compensate(prov_id, meta)
                    taken.append(prov_id)
            except Conflict:
                continue  # another process is on it
        return taken
