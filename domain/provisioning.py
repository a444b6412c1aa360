"""Provisioning of an edge gateway as a saga: the layout's things, channels, bootstrap
configs, certificates and connections, made step by step and undone in reverse on failure.

The provisioning is itself an aggregate. Each step's changes are saved in the same
transaction as the record that the step is done, so there is never a step done and not
recorded (or recorded and not done), whatever crashes when. A step or compensation that
finds the provisioning moved on (another process took it over) saves nothing.

Here the aggregate, whose event classes' topics are stored (they stay in this module);
the steps and their undo are in domain/provisioning_steps.py, the commands in
domain/provisioning_handlers.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Entity, derived_id
from domain.common import Principal

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
        """``dataclasses.asdict``'s result (a deep copy), by a walk that knows the TOML/JSON
        kinds a layout holds: a fifth of its CPU (it ran on every provisioning)."""
        return {f.name: _copied(getattr(self, f.name)) for f in fields(self)}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copied(o: Any) -> Any:
    """A deep copy of ``o`` as ``asdict`` makes it: dicts, lists and tuples rebuilt, scalars
    as they are, anything else through ``copy.deepcopy``."""
    t = type(o)
    if t in _SCALARS:
        return o
    if t is dict:
        return {_copied(k): _copied(v) for k, v in o.items()}
    if t is list:
        return [_copied(v) for v in o]
    if t is tuple:
        return tuple(_copied(v) for v in o)
    return copy.deepcopy(o)


class AlreadyStarted(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """This owner's provisioning of this external id exists: the stepwise saga takes it."""


def provisioning_id(owner: UUID, external_id: str) -> UUID:
    return derived_id("provisioning", owner, external_id)


@lru_cache(maxsize=1024)
def _made_id(prov_id: UUID, attempt: int, kind: str, index: int) -> UUID:
    """The ids of what an attempt makes, asked for again and again by its steps and its
    answer (a SHA-1 each): remembered for the provisionings of the moment."""
    return derived_id(prov_id, attempt, kind, index)


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
        return _made_id(self.id, self.attempt, kind, index)

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.owner)

    @property
    def pending(self) -> list[str]:
        return [s for s in STEPS if s not in self.done]
