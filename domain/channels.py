"""Channels: the groups that connected things talk over."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain import resources
from domain.attempt import Attempt, Core
from domain.base import Entity, Meta
from domain.commands import CreateChannels, SetChannelEnabled, ShareChannel, UpdateChannel
from domain.common import (
    NO_META,
    Done,
    Principal,
    check_metadata,
    check_status,
    check_text,
    check_uuid,
)
from domain.errors import Conflict, Invalid
from domain.fresh import fresh
from domain.policies import channel_grants
from domain.traits import (
    Removable,
    Sharing,
    Switchable,
    add_grants,
    set_disabled,
    set_enabled,
    set_removed,
)


class Channel(Switchable, Sharing, Removable, Entity):
    """A communication group of things; names need not be unique."""

    @event("Created")
    def __init__(self, id: UUID, owner: UUID, name: str, description: str,  # noqa: A002
                 metadata: dict[str, Any], enabled: bool) -> None:
        self.owner, self.name, self.description = owner, name, description
        self.metadata, self.enabled = metadata, enabled
        self.shares: dict[str, list[str]] = {}

    def update(self, name: str | None, description: str | None, metadata: dict[str, Any] | None) -> None:
        name = self.name if name is None else name
        description = self.description if description is None else description
        metadata = self.metadata if metadata is None else metadata
        if (name, description, metadata) != (self.name, self.description, self.metadata):
            self._updated(name=name, description=description, metadata=metadata)

    @event("Updated")
    def _updated(self, name: str, description: str, metadata: dict[str, Any]) -> None:
        self.name, self.description, self.metadata = name, description, metadata

    # Its own events (Channel.Enabled, ...); enable, disable, share and remove decide when
    # (domain.traits).
    _enabled = event("Enabled")(set_enabled)
    _disabled = event("Disabled")(set_disabled)
    _shared = event("Shared")(add_grants)
    _removed = event("Removed")(set_removed)


@dataclass(frozen=True)
class NewChannel:
    """One checked item of a create request."""

    id: UUID
    name: str
    description: str
    metadata: dict[str, Any]
    enabled: bool


def check_new_channel(item: Any) -> NewChannel:
    if not isinstance(item, dict):
        raise Invalid("a channel must be a JSON object")
    raw_id = item.get("id")
    return NewChannel(id=uuid.uuid4() if raw_id in (None, "") else check_uuid(raw_id, "id"),
                      name=check_text(item.get("name"), "name"),
                      description=check_text(item.get("description"), "description", 4096),
                      metadata=check_metadata(item.get("metadata")),
                      enabled=check_status(item.get("status")))


def _channel_for(at: Attempt, who: Principal, channel_id: UUID, action: str | None) -> Channel:
    return resources.entity_for(at, who, Channel, channel_id, action, "channel",
                                lambda channel: channel_grants(at, who, channel))


def _new_channel(at: Attempt, who: Principal, s: NewChannel) -> tuple[Channel, list[Entity]]:
    # The aggregate's own id is the claim: the store refuses a second version 1.
    if not at.absent(s.id):
        raise Conflict("channel id already exists")
    channel = fresh(Channel, id=s.id, owner=who.user_id, name=s.name, description=s.description,
                    metadata=s.metadata, enabled=s.enabled)
    return channel, [channel]


class ChannelHandlers:
    """The use cases of channels."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def create_channels(self, who: Principal, cmd: CreateChannels, meta: Meta = NO_META) -> Done:
        """Create every channel or none; an error of a bulk request names the 0-based index of
        its item."""
        specs = resources.checked_items(cmd.items, "channels", check_new_channel,
                                        [(lambda s: s.id, "channel id already exists")], cmd.bulk)
        return resources.create_all(self.core, specs, cmd.bulk, meta,
                                    lambda at, s: _new_channel(at, who, s))

    def channel(self, who: Principal, channel_id: UUID) -> Channel:
        """A channel the caller may see, from the write model."""
        return _channel_for(self.core.reads(), who, channel_id, None)

    def update_channel(self, who: Principal, cmd: UpdateChannel, meta: Meta = NO_META) -> Done:
        name = None if cmd.name is None else check_text(cmd.name, "name")
        description = None if cmd.description is None else check_text(cmd.description, "description", 4096)
        metadata = None if cmd.metadata is None else check_metadata(cmd.metadata)
        return resources.change(self.core, partial(self._find, who, cmd.channel_id), "c_update",
                                lambda channel: channel.update(name, description, metadata), meta)

    def set_channel_enabled(self, who: Principal, cmd: SetChannelEnabled, meta: Meta = NO_META) -> Done:
        return resources.set_enabled(self.core, partial(self._find, who, cmd.channel_id), cmd.enabled, meta)

    def share_channel(self, who: Principal, cmd: ShareChannel, meta: Meta = NO_META) -> Done:
        return resources.share(self.core, partial(self._find, who, cmd.channel_id), cmd.user_ids,
                               cmd.actions, meta)

    @staticmethod
    def _find(who: Principal, channel_id: UUID, at: Attempt, action: str) -> Channel:
        return _channel_for(at, who, channel_id, action)
