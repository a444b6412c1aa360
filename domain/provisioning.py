"""Provisioning of an edge gateway as a saga: the layout's things, channels, bootstrap
configs, certificates and connections, made step by step and undone in reverse on failure.

The provisioning is itself an aggregate. Each step's changes are saved in the same
transaction as the record that the step is done, so there is never a step done and not
recorded (or recorded and not done), whatever crashes when. A step or compensation that
finds the provisioning moved on (another process took it over) saves nothing.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta, derived_id
from domain.bootstrap import (
    ACTIVE,
    Config,
    check_external,
    config_changes,
    config_id,
    remove_changes,
    state_changes,
)
from domain.certs import CertBook, Issuer, certbook_id, issue_changes
from domain.channels import Channel
from domain.common import NO_META, Done, Principal, check_metadata, check_text
from domain.connections import connect_changes, disconnect_changes
from domain.errors import Conflict, DomainError, NotFound, Unavailable
from domain.things import NewThing, Thing, new_thing_changes

STEPS = ("things", "channels", "configs", "certs", "connections", "gateway")
RUNNING, COMPENSATING, FAILED, COMPLETED = "running", "compensating", "failed", "completed"
EXTERNAL_ID = "external_id"
GATEWAY_CHANNELS = {"control": "ctrl_channel_id", "data": "data_channel_id", "export": "export_channel_id"}


@dataclass(frozen=True)
class Layout:
    """What one gateway gets (upstream's provision config.toml)."""

    things: list[dict[str, Any]] = field(default_factory=lambda: [
        {"name": "thing", "metadata": {EXTERNAL_ID: "xxxxxx"}}])
    channels: list[dict[str, Any]] = field(default_factory=lambda: [
        {"name": "control-channel", "metadata": {"type": "control"}},
        {"name": "data-channel", "metadata": {"type": "data"}}])
    content: dict[str, Any] = field(default_factory=dict)
    bootstrap: bool = True      # a bootstrap config for each thing that carries an external_id
    x509: bool = False          # a client certificate for each of those things
    whitelist: bool = True      # configs made active: their things connected to the channels
    cert_ttl: float = 2400 * 3600.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AlreadyStarted(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """This owner's provisioning of this external id exists: the stepwise saga takes it."""


def provisioning_id(owner: UUID, external_id: str) -> UUID:
    return derived_id("provisioning", owner, external_id)


class Provisioning(Entity):
    """One gateway's provisioning: which steps are done, and what became of it."""

    @staticmethod
    def create_id(owner: UUID, external_id: str, **_: Any) -> UUID:
        return provisioning_id(owner, external_id)

    @event("Started")
    def __init__(self, owner: UUID, external_id: str, external_key: str, name: str,
                 layout: dict[str, Any]) -> None:
        self.owner, self.external_id = owner, external_id
        self.attempt = 0
        self._begin(external_key, name, layout)

    def _begin(self, external_key: str, name: str, layout: dict[str, Any]) -> None:
        self.external_key, self.name, self.layout = external_key, name, layout
        self.attempt += 1
        self.status = RUNNING
        self.done: dict[str, Any] = {}
        self.compensated: list[str] = []
        self.failure: dict[str, Any] | None = None

    @event("Restarted")
    def restart(self, external_key: str, name: str, layout: dict[str, Any]) -> None:
        """A new attempt after a failed one, with fresh ids for everything it makes."""
        self._begin(external_key, name, layout)

    @event("StepDone")
    def step_done(self, step: str, result: dict[str, Any]) -> None:
        self.done = {**self.done, step: result}

    @event("Completed")
    def complete(self) -> None:
        self.status = COMPLETED

    @event("Failed")
    def fail(self, step: str, reason: str, kind: str) -> None:
        self.status, self.failure = COMPENSATING, {"step": step, "reason": reason, "kind": kind}

    @event("StepCompensated")
    def step_compensated(self, step: str) -> None:
        self.compensated = [*self.compensated, step]

    @event("Compensated")
    def finish_compensation(self) -> None:
        self.status = FAILED

    # -- ids of what this attempt makes -------------------------------------------------
    def made_id(self, kind: str, index: int) -> UUID:
        return derived_id(self.id, self.attempt, kind, index)

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.owner)

    @property
    def pending(self) -> list[str]:
        return [s for s in STEPS if s not in self.done]


def _things_with_config(p: Provisioning) -> list[UUID]:
    return [p.made_id("thing", i) for i, t in enumerate(p.layout["things"])
            if p.layout["bootstrap"] and EXTERNAL_ID in (t.get("metadata") or {})]


class ProvisionHandlers:
    """The saga's commands; workers/provisioning.py drives them."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def start_provisioning(self, who: Principal, external_id: Any, external_key: Any, name: Any,
                           layout: Layout, meta: Meta = NO_META) -> Done:
        """The provisioning of this owner and external id: new, restarted after a failure, or as is."""
        ext_id = check_external(external_id, "external_id")
        ext_key = check_external(external_key, "external_key")
        gw_name = check_text(name, "name")

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = at.get_or_none(Provisioning, provisioning_id(who.user_id, ext_id))
            if p is None:
                p = Provisioning(owner=who.user_id, external_id=ext_id, external_key=ext_key, name=gw_name,
                                 layout=layout.as_dict())
            elif p.status == FAILED:
                p.restart(external_key=ext_key, name=gw_name, layout=layout.as_dict())
            return p, [p]

        return self.core.commit(build, meta)

    def provisioning(self, prov_id: UUID) -> Provisioning:
        return _provisioning(self.core.reads(), prov_id)

    def provision_at_once(self, who: Principal, external_id: Any, external_key: Any, name: Any,
                          layout: Layout, issuer: Issuer | None, meta: Meta = NO_META) -> Done:
        """A provisioning not seen before, whole, in one transaction: its start, every step
        with its record, and its completion, as the saga would record them one by one.
        The result: the provisioning and its answer (``provisioned``).

        Raises ``AlreadyStarted`` for a provisioning that exists, and a step's error as is;
        either way nothing is saved, and the stepwise saga (``start_provisioning``, then
        ``provision_step`` by step) takes over: it resumes, answers a repeat, or records
        the failure and compensates.
        """
        ext_id = check_external(external_id, "external_id")
        ext_key = check_external(external_key, "external_key")
        gw_name = check_text(name, "name")

        def build(at: Attempt) -> tuple[tuple[Provisioning, dict[str, Any]], list[Entity]]:
            # Read, not assumed absent: a repeat must not cost a whole build and a refused write.
            if at.get_or_none(Provisioning, provisioning_id(who.user_id, ext_id)) is not None:
                raise AlreadyStarted("the provisioning exists")
            p = Provisioning(owner=who.user_id, external_id=ext_id, external_key=ext_key, name=gw_name,
                             layout=layout.as_dict())
            made: dict[UUID, Entity] = {p.id: p}
            at.made = made  # the later steps read what the earlier ones made
            for step in STEPS:
                result, changed = _STEP[step](at, p, issuer)
                for e in changed:
                    if made.setdefault(e.id, e) is not e:  # two different objects, one id
                        raise Conflict(f"{step}: two of the layout's entities would be the same")
                p.step_done(step=step, result=result)
            p.complete()
            answer = provisioned(at, p)
            # The saga's own record last, after what it made, as when step by step.
            return (p, answer), [*(e for e in made.values() if e is not p), p]

        return self.core.commit(build, meta)

    def provision_step(self, prov_id: UUID, step: str, issuer: Issuer | None,
                       meta: Meta = NO_META) -> Done:
        """Do one step and record it, in one transaction; the last one completes the provisioning."""

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = _provisioning(at, prov_id)
            if p.status != RUNNING:
                raise Conflict(f"provisioning is {p.status}")
            if step in p.done:
                return p, []
            result, changed = _STEP[step](at, p, issuer)
            p.step_done(step=step, result=result)
            if not p.pending:
                p.complete()
            return p, [*changed, p]

        return self.core.commit(build, meta)

    def fail_provisioning(self, prov_id: UUID, step: str, error: DomainError | None,
                          meta: Meta = NO_META) -> Done:
        # The error's kind, not an HTTP status: the API maps kinds to statuses in one place.
        kind = type(error).__name__ if error is not None else "Interrupted"
        reason = error.message if error is not None else "the provisioning was interrupted"

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = _provisioning(at, prov_id)
            if p.status == RUNNING:
                p.fail(step=step, reason=f"{step}: {reason}", kind=kind)
            return p, [p]

        return self.core.commit(build, meta)

    def compensate_step(self, prov_id: UUID, step: str, meta: Meta = NO_META) -> Done:
        """Undo one done step and record it, in one transaction."""

        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = _provisioning(at, prov_id)
            if p.status != COMPENSATING:
                raise Conflict(f"provisioning is {p.status}")
            if step not in p.done or step in p.compensated:
                return p, []
            changed = _UNDO[step](at, p)
            p.step_compensated(step=step)
            return p, [*changed, p]

        return self.core.commit(build, meta)

    def end_compensation(self, prov_id: UUID, meta: Meta = NO_META) -> Done:
        def build(at: Attempt) -> tuple[Provisioning, list[Entity]]:
            p = _provisioning(at, prov_id)
            if p.status == COMPENSATING:
                p.finish_compensation()
            return p, [p]

        return self.core.commit(build, meta)

    def provisioned(self, p: Provisioning) -> dict[str, Any]:
        """The answer of a completed provisioning, as upstream's provision service gives it."""
        return provisioned(self.core.reads(), p)


def _provisioning(at: Attempt, prov_id: UUID) -> Provisioning:
    p = at.get_or_none(Provisioning, prov_id)
    if p is None:
        raise NotFound("provisioning not found")
    return p


def provisioned(at: Attempt, p: Provisioning) -> dict[str, Any]:
    """The answer of a completed provisioning, as upstream's provision service gives it."""
    things, cert, key = [], {}, {}
    for i, spec in enumerate(p.layout["things"]):
        thing = at.get_or_none(Thing, p.made_id("thing", i))
        if thing is None:
            continue
        things.append({"id": str(thing.id), "name": thing.name, "key": thing.secret,
                       "metadata": _thing_metadata(p, spec)})
        config = at.get_or_none(Config, config_id(thing.id))
        if config is not None and config.client_cert:
            cert[str(thing.id)], key[str(thing.id)] = config.client_cert, config.client_key
    channels = [{"id": str(p.made_id("channel", i)), "name": c.get("name", ""),
                 "metadata": c.get("metadata") or {}} for i, c in enumerate(p.layout["channels"])]
    out: dict[str, Any] = {"things": things, "channels": channels,
                           "whitelisted": {str(t): True for t in p.done.get("connections", {})
                                           .get("whitelisted", [])}}
    if cert:
        out.update(client_cert=cert, client_key=key,
                   ca_cert=p.done.get("certs", {}).get("ca_cert", ""))
    return out


def _thing_metadata(p: Provisioning, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(spec.get("metadata") or {})
    if EXTERNAL_ID in metadata:
        metadata[EXTERNAL_ID] = p.external_id
    return metadata


# -- the steps ----------------------------------------------------------------------------
def _make_things(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    changed: list[Entity] = []
    for i, spec in enumerate(p.layout["things"]):
        new = NewThing(id=p.made_id("thing", i), name=p.name or spec.get("name", ""), secret=str(uuid.uuid4()),
                       tags=[], metadata=check_metadata(_thing_metadata(p, spec)), enabled=True)
        changed += new_thing_changes(at, p.principal, new)[1]
    return {"count": len(p.layout["things"])}, changed


def _make_channels(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    channels: list[Entity] = []
    for i, spec in enumerate(p.layout["channels"]):
        cid = p.made_id("channel", i)
        if not at.absent(cid):
            raise Conflict("channel id already exists")
        channels.append(Channel(id=cid, owner=p.owner, name=spec.get("name", ""), description="",
                                metadata=check_metadata(spec.get("metadata")), enabled=True))
    return {"count": len(channels)}, channels


def _make_configs(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    channels = [str(p.made_id("channel", i)) for i in range(len(p.layout["channels"]))]
    content = json.dumps(p.layout["content"]) if p.layout["content"] else ""
    changed: list[Entity] = []
    for tid in _things_with_config(p):
        changed += config_changes(at, p.principal, tid, p.external_id, p.external_key, p.name, content,
                                  channels, ["", "", ""])[1]
    return {"count": len(changed) // 2}, changed


def _make_certs(at: Attempt, p: Provisioning, issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    if not (p.layout["x509"] and p.layout["bootstrap"]):
        return {}, []
    if issuer is None:
        raise Unavailable("no certificate authority")
    changed: list[Entity] = []
    ca_cert = ""
    for tid in _things_with_config(p):
        try:
            issued, book = issue_changes(at, p.principal, tid, p.layout["cert_ttl"], issuer)
        except DomainError:
            raise  # the thing's own rules, not the CA's failure
        except Exception as exc:  # noqa: BLE001 - the CA's own failure becomes the step's
            raise Unavailable(f"the certificate authority refused: {type(exc).__name__}") from exc
        ca_cert = getattr(issued, "ca_pem", "") or ca_cert
        config = at.get_or_none(Config, config_id(tid))
        assert config is not None, "the configs step made it"
        config.update_certs(issued.cert_pem, issued.key_pem, ca_cert)
        changed += [book, config]
    return {"ca_cert": ca_cert}, changed


def _connect(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    with_config = set(_things_with_config(p))
    channels = [str(p.made_id("channel", i)) for i in range(len(p.layout["channels"]))]
    changed: list[Entity] = []
    whitelisted: list[str] = []
    for i in range(len(p.layout["things"])):
        tid = p.made_id("thing", i)
        if tid in with_config:
            if p.layout["whitelist"]:
                config = at.get_or_none(Config, config_id(tid))
                assert config is not None, "the configs step made it"
                changed += state_changes(at, p.principal, config, ACTIVE)
                whitelisted.append(str(tid))
        elif channels:
            changed += connect_changes(at, p.principal, channels, [str(tid)], None)
    return {"whitelisted": whitelisted}, changed


def _gateway(at: Attempt, p: Provisioning, _issuer: Issuer | None) -> tuple[dict[str, Any], list[Entity]]:
    """The gateway metadata upstream writes onto each configured thing (its key left out)."""
    gw: dict[str, Any] = {}
    for i, spec in enumerate(p.layout["channels"]):
        kind = (spec.get("metadata") or {}).get("type")
        if kind in GATEWAY_CHANNELS:
            gw[GATEWAY_CHANNELS[kind]] = str(p.made_id("channel", i))
    changed: list[Entity] = []
    for tid in _things_with_config(p):
        thing = at.get_or_none(Thing, tid)
        assert thing is not None, "the things step made it"
        thing.update(None, {**thing.metadata, **gw, EXTERNAL_ID: p.external_id, "cfg_id": str(tid),
                            "type": "gateway"})
        changed.append(thing)
    return {}, changed


def _disable_made(at: Attempt, p: Provisioning, cls: type[Thing] | type[Channel], kind: str,
                  layout_key: str) -> list[Entity]:
    """Disable what this attempt made of one kind (things or channels)."""
    changed: list[Entity] = []
    for i in range(len(p.layout[layout_key])):
        made = at.get_or_none(cls, p.made_id(kind, i))
        if made is not None:
            made.disable()
            changed.append(made)
    return changed


def _undo_things(at: Attempt, p: Provisioning) -> list[Entity]:
    return _disable_made(at, p, Thing, "thing", "things")


def _undo_channels(at: Attempt, p: Provisioning) -> list[Entity]:
    return _disable_made(at, p, Channel, "channel", "channels")


def _undo_configs(at: Attempt, p: Provisioning) -> list[Entity]:
    changed: list[Entity] = []
    for tid in _things_with_config(p):
        config = at.get_or_none(Config, config_id(tid))
        if config is not None and not config.removed:
            changed += remove_changes(at, p.principal, config)
    return changed


def _undo_certs(at: Attempt, p: Provisioning) -> list[Entity]:
    from datetime import UTC, datetime

    changed: list[Entity] = []
    for tid in _things_with_config(p):
        book = at.get_or_none(CertBook, certbook_id(tid))
        if book is not None and book.revoke_all(datetime.now(UTC).isoformat()):
            changed.append(book)
    return changed


def _undo_connections(at: Attempt, p: Provisioning) -> list[Entity]:
    with_config = set(_things_with_config(p))
    channels = [str(p.made_id("channel", i)) for i in range(len(p.layout["channels"]))]
    changed: list[Entity] = []
    for i in range(len(p.layout["things"])):
        tid = p.made_id("thing", i)
        config = at.get_or_none(Config, config_id(tid)) if tid in with_config else None
        if config is not None:
            if not config.removed:
                changed += state_changes(at, p.principal, config, 0)
        elif channels and tid not in with_config:
            changed += disconnect_changes(at, p.principal, channels, [str(tid)], True)
    return changed


def _undo_gateway(at: Attempt, p: Provisioning) -> list[Entity]:
    return []  # the things it wrote on are disabled by the things step's compensation


_STEP = {"things": _make_things, "channels": _make_channels, "configs": _make_configs,
         "certs": _make_certs, "connections": _connect, "gateway": _gateway}
_UNDO = {"things": _undo_things, "channels": _undo_channels, "configs": _undo_configs,
         "certs": _undo_certs, "connections": _undo_connections, "gateway": _undo_gateway}
