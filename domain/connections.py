"""Connections of things to channels.

A connection is an aggregate per (channel, thing) pair whose id is derived from the pair,
so a pair is unique by construction and two writers connecting it clash on one version.
Bulk commands change every pair or none: their aggregates are saved in one transaction.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta, derived_id
from domain.channels import Channel
from domain.commands import Connect, Disconnect
from domain.common import MAX_BULK, NO_META, Done, Principal, authorize, check_uuid
from domain.errors import Forbidden, Invalid, NotFound
from domain.fresh import fresh
from domain.policies import channel_grants
from domain.things import Thing

CONNECTION_ACTIONS = ("m_read", "m_write")
DEFAULT_ACTIONS = ("m_write", "m_read")
MAX_PAIRS = 10_000


def connection_id(channel_id: UUID, thing_id: UUID) -> UUID:
    return derived_id("connection", channel_id, thing_id)


class Connection(Entity):
    """A thing's actions on a channel; connecting again with the same actions records nothing."""

    @staticmethod
    def create_id(channel_id: UUID, thing_id: UUID) -> UUID:
        return connection_id(channel_id, thing_id)

    @event("Created")
    def __init__(self, channel_id: UUID, thing_id: UUID) -> None:
        self.channel_id, self.thing_id = channel_id, thing_id
        self.owner: UUID | None = None
        self.actions: list[str] = []
        self.connected = False

    def connect(self, owner: UUID, actions: list[str]) -> None:
        if not self.connected or set(actions) != set(self.actions):
            self._connected(channel_id=self.channel_id, thing_id=self.thing_id, owner=owner,
                            actions=actions)

    # The pair travels in every event, so a view needs no state to apply one.
    @event("Connected")
    def _connected(self, channel_id: UUID, thing_id: UUID, owner: UUID, actions: list[str]) -> None:
        self.owner, self.actions, self.connected = owner, actions, True

    def disconnect(self) -> None:
        if self.connected:
            self._disconnected(channel_id=self.channel_id, thing_id=self.thing_id)

    @event("Disconnected")
    def _disconnected(self, channel_id: UUID, thing_id: UUID) -> None:
        self.actions, self.connected = [], False


def check_ids(ids: Any, what: str) -> list[UUID]:
    if not isinstance(ids, list) or not ids:
        raise Invalid(f"{what} must be a non-empty list of ids")
    if len(ids) > MAX_BULK:
        raise Invalid(f"at most {MAX_BULK} {what} at once")
    return list(dict.fromkeys(check_uuid(i, what.rstrip("s")) for i in ids))


def check_connection_actions(actions: Any) -> list[str]:
    if actions is None:
        return list(DEFAULT_ACTIONS)
    if not isinstance(actions, list) or not actions:
        raise Invalid("actions must be a non-empty list")
    bad = [a for a in actions if a not in CONNECTION_ACTIONS]
    if bad:
        raise Invalid(f"unknown action {bad[0]!r}; expected some of {', '.join(CONNECTION_ACTIONS)}")
    return list(dict.fromkeys(actions))


def _pairs(channel_ids: Any, thing_ids: Any) -> tuple[list[UUID], list[UUID]]:
    cids, tids = check_ids(channel_ids, "channel_ids"), check_ids(thing_ids, "thing_ids")
    if len(cids) * len(tids) > MAX_PAIRS:
        raise Invalid(f"at most {MAX_PAIRS} connections at once")
    return cids, tids


def _channel_to_connect(at: Attempt, who: Principal, channel_id: UUID) -> Channel:
    """A channel the caller may connect things to: its own, or one it was assigned with g_add."""
    channel = at.get_or_none(Channel, channel_id)
    if channel is None:
        raise NotFound("channel not found")
    if who.admin or who.user_id == channel.owner:
        return channel
    granted = channel_grants(at, who, channel).get(str(who.user_id), [])
    if "c_list" not in granted:
        raise NotFound("channel not found")
    if "g_add" not in granted:
        raise Forbidden("not allowed to connect things to this channel")
    return channel


def _thing_to_connect(at: Attempt, who: Principal, thing_id: UUID) -> Thing:
    """A thing the caller may see: its own, or one shared with it."""
    thing = at.get_or_none(Thing, thing_id)
    if thing is None:
        raise NotFound("thing not found")
    authorize(who, thing.owner, thing.shares, None, "thing")
    return thing


def _checked(at: Attempt, who: Principal, channel_ids: Any, thing_ids: Any) -> tuple[list[UUID], list[UUID]]:
    cids, tids = _pairs(channel_ids, thing_ids)
    for cid in cids:
        _channel_to_connect(at, who, cid)
    for tid in tids:
        _thing_to_connect(at, who, tid)
    return cids, tids


def _connect(at: Attempt, who: Principal, channel_ids: Any, thing_ids: Any,
             actions: list[str]) -> tuple[list[Connection], list[Entity]]:
    cids, tids = _checked(at, who, channel_ids, thing_ids)
    every: list[Connection] = []
    for cid in cids:
        for tid in tids:
            # A thing or channel made by this same command has no connection yet.
            new = at.made_new(UUID(str(tid))) or at.made_new(UUID(str(cid)))
            conn = (None if new else at.get_or_none(Connection, connection_id(cid, tid))) \
                or fresh(Connection, channel_id=cid, thing_id=tid)
            conn.connect(who.user_id, actions)
            every.append(conn)
    return every, [c for c in every if c._pending_events]


def _disconnect(at: Attempt, who: Principal, channel_ids: Any, thing_ids: Any,
                missing_ok: bool) -> tuple[list[Connection], list[Entity]]:
    cids, tids = _checked(at, who, channel_ids, thing_ids)
    changed: list[Connection] = []
    for cid in cids:
        for tid in tids:
            conn = at.get_or_none(Connection, connection_id(cid, tid))
            if conn is None or not conn.connected:
                if missing_ok:
                    continue
                raise NotFound("thing is not connected to this channel")
            conn.disconnect()
            changed.append(conn)
    return changed, list(changed)


def connect_changes(at: Attempt, who: Principal, channel_ids: Any, thing_ids: Any,
                    actions: Any = None) -> list[Entity]:
    """Connect every pair, for use inside another command's build: checks the rules,
    changes the aggregates and returns those changed, without saving them."""
    if channel_ids == [] or thing_ids == []:
        return []
    return _connect(at, who, channel_ids, thing_ids, check_connection_actions(actions))[1]


def disconnect_changes(at: Attempt, who: Principal, channel_ids: Any, thing_ids: Any,
                       missing_ok: bool) -> list[Entity]:
    """Disconnect every pair, for use inside another command's build; with ``missing_ok``
    a pair that is not connected is skipped, otherwise it is NotFound."""
    if channel_ids == [] or thing_ids == []:
        return []
    return _disconnect(at, who, channel_ids, thing_ids, missing_ok)[1]


class ConnectionHandlers:
    """The use cases of connections."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def connect_changes(self, who: Principal, channel_ids: Any, thing_ids: Any,
                        actions: Any = None) -> list[Entity]:
        """``connect_changes`` on what the store holds now (the aggregates changed, unsaved)."""
        return connect_changes(self.core.reads(), who, channel_ids, thing_ids, actions)

    def disconnect_changes(self, who: Principal, channel_ids: Any, thing_ids: Any,
                           missing_ok: bool) -> list[Entity]:
        """``disconnect_changes`` on what the store holds now (the aggregates changed, unsaved)."""
        return disconnect_changes(self.core.reads(), who, channel_ids, thing_ids, missing_ok)

    def connect(self, who: Principal, cmd: Connect, meta: Meta = NO_META) -> Done:
        """Connect every pair of the cross product or none; the result is every pair's connection."""
        acts = check_connection_actions(cmd.actions)
        _pairs(cmd.channel_ids, cmd.thing_ids)
        return self.core.commit(lambda at: _connect(at, who, cmd.channel_ids, cmd.thing_ids, acts), meta)

    def disconnect(self, who: Principal, cmd: Disconnect, meta: Meta = NO_META) -> Done:
        """Disconnect every pair or none; a pair that is not connected is NotFound."""
        _pairs(cmd.channel_ids, cmd.thing_ids)
        return self.core.commit(lambda at: _disconnect(at, who, cmd.channel_ids, cmd.thing_ids, False), meta)
