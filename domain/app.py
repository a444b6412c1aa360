"""The eventsourcing Application: every use case of the platform, each one atomic save.

The use cases are plain handlers grouped by resource (``ThingHandlers`` in ``things.py``,
``UserHandlers`` in ``users.py``, ...), built on one ``Core`` (``attempt.py``: the reads of
the write model and ``commit``). The application builds them and offers each of their
methods under its own name (``app.create_things``, or ``Smq.create_things`` unbound).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application

from domain.attempt import Attempt, Core, Save
from domain.base import Entity, Meta
from domain.bootstrap import BootstrapHandlers
from domain.certs import CertHandlers
from domain.channels import ChannelHandlers
from domain.commands import (
    AddConfig,
    AssignPolicy,
    ChangeConfigState,
    ChangeThingSecret,
    ChangeUserSecret,
    CompensateStep,
    Connect,
    CreateChannels,
    CreateThings,
    CreateUser,
    Disconnect,
    EndCompensation,
    FailProvisioning,
    IssueCert,
    ProvisionGateway,
    RemoveConfig,
    RevokeCerts,
    RevokePolicy,
    SetChannelEnabled,
    SetThingEnabled,
    SetUserEnabled,
    ShareChannel,
    ShareThing,
    UpdateChannel,
    UpdateConfig,
    UpdateConfigCerts,
    UpdateConfigChannels,
    UpdateThing,
    UpdateThingTags,
    UpdateUser,
    UpdateUserTags,
)
from domain.common import NO_META, Done, Principal, check_metadata
from domain.connections import ConnectionHandlers
from domain.policy_handlers import PolicyHandlers
from domain.provisioning_handlers import ProvisionHandlers
from domain.things import ThingHandlers
from domain.users import Hasher, PlainHasher, UserHandlers

__all__ = ["Attempt", "Done", "Hasher", "PlainHasher", "Principal", "Smq", "check_metadata"]
T = TypeVar("T")
A = TypeVar("A", bound=Entity)
H = TypeVar("H")
P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=msgspec.Struct)


class UseCase(Generic[H, P, R]):
    """A handler's method offered by the application: ``app.name(...)`` runs it on the
    application's handlers of that resource; ``Smq.name`` is the same, unbound."""

    def __init__(self, method: Callable[Concatenate[H, P], R]) -> None:
        self.method = method
        module = sys.modules[method.__module__]
        self.handlers: type[H] = getattr(module, method.__qualname__.split(".")[0])
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, app: None, owner: type[Any]) -> Callable[Concatenate[Any, P], R]: ...

    @overload
    def __get__(self, app: Smq, owner: type[Any] | None = None) -> Callable[P, R]: ...

    def __get__(self, app: Smq | None, owner: type[Any] | None = None) -> Callable[..., R]:
        if app is None:
            return self._unbound
        return MethodType(self.method, app.handlers[self.handlers])

    def _unbound(self, app: Smq, *args: Any, **kwargs: Any) -> R:
        return self.__get__(app)(*args, **kwargs)


class Command(Generic[H, C]):
    """A handler's method that takes a command: ``app.name(who, *fields, meta=...)`` builds the
    command from its fields and runs it (``Smq.name`` is the same, unbound); ``Smq.execute``
    runs a command by its type. A command open to anyone (``caller=False``: sign-up) is called
    without ``who`` and runs with None."""

    by_type: dict[type, Command[Any, Any]] = {}

    def __init__(self, method: Callable[[H, Principal, C, Meta], Done], command: type[C],
                 caller: bool = True) -> None:
        self.method, self.command, self.caller = method, command, caller
        module = sys.modules[method.__module__]
        self.handlers: type[H] = getattr(module, method.__qualname__.split(".")[0])
        self.__doc__ = method.__doc__
        Command.by_type[command] = self

    def run(self, app: Smq, who: Principal | None, command: C, meta: Meta = NO_META) -> Done:
        return self.method(app.handlers[self.handlers], who, command, meta)  # type: ignore[arg-type]

    @overload
    def __get__(self, app: None, owner: type[Any]) -> Callable[..., Done]: ...

    @overload
    def __get__(self, app: Smq, owner: type[Any] | None = None) -> Callable[..., Done]: ...

    def __get__(self, app: Smq | None, owner: type[Any] | None = None) -> Callable[..., Done]:
        if app is None:
            return self._unbound
        return MethodType(self._unbound, app)

    def _unbound(self, app: Smq, *fields: Any, meta: Meta = NO_META, **named: Any) -> Done:
        who, fields = (fields[0], fields[1:]) if self.caller else (None, fields)
        return self.run(app, who, self.command(*fields, **named), meta)


class Smq(Application):
    """Every write of the platform, and the few reads that must see the write model."""

    name = "smq"

    def __init__(self, env: dict[str, str] | None = None, hasher: Hasher | None = None,
                 saver: Callable[[Save], Save] | None = None) -> None:
        """``saver`` wraps how a command's events reach the store (``record``: one transaction
        each); infra gives a group committer, which shares transactions between concurrent
        commands."""
        super().__init__(env)
        self.saver: Save = saver(self.record) if saver is not None else self.record
        self.core = Core(self._load, lambda *events: self.saver(*events))
        self.users = UserHandlers(self.core, hasher or PlainHasher())
        self.handlers: dict[type, object] = {UserHandlers: self.users, **{
            cls: cls(self.core) for cls in (ThingHandlers, ChannelHandlers, ConnectionHandlers,
                                            PolicyHandlers, BootstrapHandlers, CertHandlers,
                                            ProvisionHandlers)}}

    @property
    def hasher(self) -> Hasher:
        return self.users.hasher

    @hasher.setter
    def hasher(self, hasher: Hasher) -> None:
        self.users.hasher = hasher

    def close(self) -> None:
        """Close the saver (a group committer's thread), then the store's connections."""
        closing = getattr(self.saver, "close", None)
        if closing is not None:
            closing()
        super().close()

    def record(self, *events: Any) -> list[Any]:
        """Store domain events in one transaction; their recordings. What ``save`` does for
        events, without its per-object protocol checks (``isinstance`` against a runtime
        Protocol: a sixth of a bulk create's time) and its snapshot and notify hooks, which
        this application does not use."""
        return self.events.put(list(events))

    def _load(self, aggregate_id: UUID) -> Entity | None:
        try:
            agg: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return agg if isinstance(agg, Entity) else None

    # -- plumbing ---------------------------------------------------------------
    def commit(self, build: Callable[[], tuple[T, Sequence[Entity]]], meta: Meta) -> Done:
        """Save what ``build()`` changed, as a use case's commit does (for a script or a test
        that makes its aggregates itself)."""
        return self.core.commit(lambda _attempt: build(), meta)

    def execute(self, who: Principal | None, command: msgspec.Struct, meta: Meta = NO_META) -> Done:
        """Run a command (a Struct of ``domain.commands``) by its type; ``who`` is None for a
        command open to anyone (``CreateUser``)."""
        return Command.by_type[type(command)].run(self, who, command, meta)

    def get_or_none(self, cls: type[A], aggregate_id: UUID) -> A | None:
        return self.core.reads().get_or_none(cls, aggregate_id)

    def holder_of(self, kind: str, key: str) -> UUID | None:
        return self.core.reads().holder_of(kind, key)

    # -- the use cases, by resource ---------------------------------------------------
    create_user = Command(UserHandlers.create_user, CreateUser, caller=False)
    user_by_identity = UseCase(UserHandlers.user_by_identity)
    authenticate_user = UseCase(UserHandlers.authenticate_user)
    active_user = UseCase(UserHandlers.active_user)
    update_user = Command(UserHandlers.update_user, UpdateUser)
    update_user_tags = Command(UserHandlers.update_user_tags, UpdateUserTags)
    change_user_secret = Command(UserHandlers.change_user_secret, ChangeUserSecret)
    set_user_enabled = Command(UserHandlers.set_user_enabled, SetUserEnabled)

    create_things = Command(ThingHandlers.create_things, CreateThings)
    thing = UseCase(ThingHandlers.thing)
    update_thing = Command(ThingHandlers.update_thing, UpdateThing)
    update_thing_tags = Command(ThingHandlers.update_thing_tags, UpdateThingTags)
    change_thing_secret = Command(ThingHandlers.change_thing_secret, ChangeThingSecret)
    set_thing_enabled = Command(ThingHandlers.set_thing_enabled, SetThingEnabled)
    share_thing = Command(ThingHandlers.share_thing, ShareThing)

    create_channels = Command(ChannelHandlers.create_channels, CreateChannels)
    channel = UseCase(ChannelHandlers.channel)
    update_channel = Command(ChannelHandlers.update_channel, UpdateChannel)
    set_channel_enabled = Command(ChannelHandlers.set_channel_enabled, SetChannelEnabled)
    share_channel = Command(ChannelHandlers.share_channel, ShareChannel)

    connect = Command(ConnectionHandlers.connect, Connect)
    disconnect = Command(ConnectionHandlers.disconnect, Disconnect)
    connect_changes = UseCase(ConnectionHandlers.connect_changes)
    disconnect_changes = UseCase(ConnectionHandlers.disconnect_changes)
    assign_policy = Command(PolicyHandlers.assign_policy, AssignPolicy)
    revoke_policy = Command(PolicyHandlers.revoke_policy, RevokePolicy)

    add_config = Command(BootstrapHandlers.add_config, AddConfig)
    config = UseCase(BootstrapHandlers.config)
    update_config = Command(BootstrapHandlers.update_config, UpdateConfig)
    update_config_certs = Command(BootstrapHandlers.update_config_certs, UpdateConfigCerts)
    update_config_channels = Command(BootstrapHandlers.update_config_channels, UpdateConfigChannels)
    change_config_state = Command(BootstrapHandlers.change_config_state, ChangeConfigState)
    remove_config = Command(BootstrapHandlers.remove_config, RemoveConfig)
    thing_secret_of = UseCase(BootstrapHandlers.thing_secret_of)

    issue_cert = Command(CertHandlers.issue_cert, IssueCert)
    revoke_certs = Command(CertHandlers.revoke_certs, RevokeCerts)

    start_provisioning = Command(ProvisionHandlers.start_provisioning, ProvisionGateway)
    provisioning = UseCase(ProvisionHandlers.provisioning)
    provision_at_once = UseCase(ProvisionHandlers.provision_at_once)
    provision_step = UseCase(ProvisionHandlers.provision_step)
    fail_provisioning = Command(ProvisionHandlers.fail_provisioning, FailProvisioning, caller=False)
    compensate_step = Command(ProvisionHandlers.compensate_step, CompensateStep, caller=False)
    end_compensation = Command(ProvisionHandlers.end_compensation, EndCompensation, caller=False)
    provisioned = UseCase(ProvisionHandlers.provisioned)
