"""Commands: what a caller asks of the domain, one frozen msgspec Struct each (things, channels,
users and provisioning so far).

The HTTP edge decodes a request and builds its command; the application runs it by its type
(``Smq.execute``), and the named calls (``app.update_thing(who, thing_id, name=...)``) build
the same command from its fields. A field holds what the wire carried: the handler checks it
by the domain's rules, so that a direct call and a request are refused alike.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from domain.provisioning import Layout


class CreateThings(msgspec.Struct, frozen=True):
    """Create every thing of ``items`` or none; ``bulk`` False is a single create, whose error
    names no item."""

    items: Any
    bulk: bool = True


class UpdateThing(msgspec.Struct, frozen=True):
    """A new name and metadata; a field left None keeps its value."""

    thing_id: UUID
    name: Any = None
    metadata: Any = None


class UpdateThingTags(msgspec.Struct, frozen=True):
    thing_id: UUID
    tags: Any


class ChangeThingSecret(msgspec.Struct, frozen=True):
    thing_id: UUID
    secret: Any


class SetThingEnabled(msgspec.Struct, frozen=True):
    thing_id: UUID
    enabled: bool


class ShareThing(msgspec.Struct, frozen=True):
    """Give users actions on a thing (added to what they have)."""

    thing_id: UUID
    user_ids: Any
    actions: Any


class CreateChannels(msgspec.Struct, frozen=True):
    """Create every channel of ``items`` or none; ``bulk`` False is a single create, whose error
    names no item."""

    items: Any
    bulk: bool = True


class UpdateChannel(msgspec.Struct, frozen=True):
    """A new name, description and metadata; a field left None keeps its value."""

    channel_id: UUID
    name: Any = None
    description: Any = None
    metadata: Any = None


class SetChannelEnabled(msgspec.Struct, frozen=True):
    channel_id: UUID
    enabled: bool


class ShareChannel(msgspec.Struct, frozen=True):
    """Give users actions on a channel (added to what they have)."""

    channel_id: UUID
    user_ids: Any
    actions: Any


class CreateUser(msgspec.Struct, frozen=True):
    """Sign up (open to anyone: the caller is None); ``role`` is "user" unless the platform
    makes its administrator."""

    identity: Any
    secret: Any
    name: Any = ""
    metadata: Any = None
    tags: Any = None
    status: Any = "enabled"
    role: str = "user"


class UpdateUser(msgspec.Struct, frozen=True):
    """A new name and metadata; a field left None keeps its value."""

    user_id: UUID
    name: Any = None
    metadata: Any = None


class UpdateUserTags(msgspec.Struct, frozen=True):
    user_id: UUID
    tags: Any


class ChangeUserSecret(msgspec.Struct, frozen=True):
    """The caller's own secret: the old one proves it is the caller."""

    old: Any
    new: Any


class SetUserEnabled(msgspec.Struct, frozen=True):
    user_id: UUID
    enabled: bool


# -- provisioning (POST /mapping, and the saga's steps) --------------------------------------
class ProvisionGateway(msgspec.Struct, frozen=True):
    """Provision one edge gateway: the layout's things, channels, bootstrap configs,
    certificates and connections for ``external_id``. ``layout`` is the service's configured
    layout (``SMQ_PROVISION_CONFIG_FILE`` or the guide's), never the caller's."""

    external_id: Any
    external_key: Any
    name: Any = None
    layout: Layout = msgspec.field(default_factory=Layout)


class ProvisionStep(msgspec.Struct, frozen=True):
    """Do one step of a running provisioning, recorded with its changes."""

    provisioning_id: UUID
    step: str


class FailProvisioning(msgspec.Struct, frozen=True):
    """A step failed (``kind``: the domain error's class name; ``Interrupted``: its process
    died): the provisioning is to be compensated."""

    provisioning_id: UUID
    step: str
    kind: str = "Interrupted"
    reason: str = "the provisioning was interrupted"


class CompensateStep(msgspec.Struct, frozen=True):
    """Undo one done step of a failing provisioning, recorded with its changes."""

    provisioning_id: UUID
    step: str


class EndCompensation(msgspec.Struct, frozen=True):
    """Every done step is undone: the provisioning has failed."""

    provisioning_id: UUID
