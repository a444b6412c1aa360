"""The provisioning saga's commands: start (or restart) a provisioning, do or undo one step,
record its failure, or provision a new gateway whole in one transaction. The aggregate is in
domain/provisioning.py, the steps in domain/provisioning_steps.py; workers/provisioning.py
drives the saga.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta
from domain.bootstrap import check_external
from domain.certs import Issuer
from domain.commands import (
    CompensateStep,
    EndCompensation,
    FailProvisioning,
    ProvisionGateway,
    ProvisionStep,
)
from domain.common import NO_META, Done, Principal, check_text
from domain.errors import Conflict
from domain.fresh import fresh
from domain.provisioning import (
    COMPENSATING,
    FAILED,
    RUNNING,
    STEPS,
    AlreadyStarted,
    Provisioning,
    provisioning_id,
)
from domain.provisioning_steps import STEP, UNDO, find_provisioning, provisioned


def _checked(cmd: ProvisionGateway) -> tuple[str, str, str]:
    """The gateway's external id, key and name, held to the rules."""
    return (check_external(cmd.external_id, "external_id"), check_external(cmd.external_key, "external_key"),
            check_text(cmd.name, "name"))


class ProvisionHandlers:
    """The saga's commands; workers/provisioning.py drives them."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def start_provisioning(self, who: Principal, cmd: ProvisionGateway, meta: Meta = NO_META) -> Done:
        """The provisioning of this owner and external id: new, restarted after a failure, or as is."""
        ext_id, ext_key, gw_name = _checked(cmd)
        layout = cmd.layout.as_dict()

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = at.get_or_none(Provisioning, provisioning_id(who.user_id, ext_id))
            if p is None:
                p = fresh(Provisioning, owner=who.user_id, external_id=ext_id, external_key=ext_key, name=gw_name,
                                 layout=layout)
            elif p.status == FAILED:
                p.restart(external_key=ext_key, name=gw_name, layout=layout)
            return p, [p]

        return self.core.commit(build, meta)

    def provisioning(self, prov_id: UUID) -> Provisioning:
        return find_provisioning(self.core.reads(), prov_id)

    def provision_at_once(self, who: Principal, cmd: ProvisionGateway, issuer: Issuer | None,
                          meta: Meta = NO_META) -> Done:
        """A provisioning not seen before, whole, in one transaction: its start, every step
        with its record, and its completion, as the saga would record them one by one.
        The result: the provisioning and its answer (``provisioned``).

        Raises ``AlreadyStarted`` for a provisioning that exists, and a step's error as is;
        either way nothing is saved, and the stepwise saga (``start_provisioning``, then
        ``provision_step`` by step) takes over: it resumes, answers a repeat, or records
        the failure and compensates.
        """
        ext_id, ext_key, gw_name = _checked(cmd)
        layout = cmd.layout.as_dict()

        def build(at: Attempt) -> tuple[tuple[Provisioning, dict[str, Any]], list[Entity]]:
            # Read, not assumed absent: a repeat must not cost a whole build and a refused write.
            if at.get_or_none(Provisioning, provisioning_id(who.user_id, ext_id)) is not None:
                raise AlreadyStarted("the provisioning exists")
            p = fresh(Provisioning, owner=who.user_id, external_id=ext_id, external_key=ext_key, name=gw_name,
                             layout=layout)
            made: dict[UUID, Entity] = {p.id: p}
            at.made = made  # the later steps read what the earlier ones made
            for step in STEPS:
                result, changed = STEP[step](at, p, issuer)
                for e in changed:
                    if made.setdefault(e.id, e) is not e:  # two different objects, one id
                        raise Conflict(f"{step}: two of the layout's entities would be the same")
                p.step_done(step=step, result=result)
            p.complete()
            answer = provisioned(at, p)
            # The saga's own record last, after what it made, as when step by step.
            return (p, answer), [*(e for e in made.values() if e is not p), p]

        return self.core.commit(build, meta)

    def provision_step(self, cmd: ProvisionStep, issuer: Issuer | None, meta: Meta = NO_META) -> Done:
        """Do one step and record it, in one transaction; the last one completes the provisioning."""
        step = cmd.step

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = find_provisioning(at, cmd.provisioning_id)
            if p.status != RUNNING:
                raise Conflict(f"provisioning is {p.status}")
            if step in p.done:
                return p, []
            result, changed = STEP[step](at, p, issuer)
            p.step_done(step=step, result=result)
            if not p.pending:
                p.complete()
            return p, [*changed, p]

        return self.core.commit(build, meta)

    def fail_provisioning(self, _who: Principal | None, cmd: FailProvisioning, meta: Meta = NO_META) -> Done:
        """Record the failure (its kind, not an HTTP status: the API maps kinds to statuses in
        one place); a provisioning no longer running is left as it is."""

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = find_provisioning(at, cmd.provisioning_id)
            if p.status == RUNNING:
                p.fail(step=cmd.step, reason=f"{cmd.step}: {cmd.reason}", kind=cmd.kind)
            return p, [p]

        return self.core.commit(build, meta)

    def compensate_step(self, _who: Principal | None, cmd: CompensateStep, meta: Meta = NO_META) -> Done:
        """Undo one done step and record it, in one transaction."""
        step = cmd.step

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = find_provisioning(at, cmd.provisioning_id)
            if p.status != COMPENSATING:
                raise Conflict(f"provisioning is {p.status}")
            if step not in p.done or step in p.compensated:
                return p, []
            changed = UNDO[step](at, p)
            p.step_compensated(step=step)
            return p, [*changed, p]

        return self.core.commit(build, meta)

    def end_compensation(self, _who: Principal | None, cmd: EndCompensation, meta: Meta = NO_META) -> Done:
        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = find_provisioning(at, cmd.provisioning_id)
            if p.status == COMPENSATING:
                p.finish_compensation()
            return p, [p]

        return self.core.commit(build, meta)

    def provisioned(self, p: Provisioning) -> dict[str, Any]:
        """The answer of a completed provisioning, as upstream's provision service gives it."""
        return provisioned(self.core.reads(), p)
