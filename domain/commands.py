"""Commands: what a caller asks of the domain, one frozen msgspec Struct each (things, channels,
users, connections, policies, bootstrap configurations, certificates and provisioning).

The HTTP edge decodes a request and builds its command; the application runs it by its type
(``Smq.execute``), and the named calls (``app.update_thing(who, thing_id, name=...)``) build
the same command from its fields. A field holds what the wire carried: the handler checks it
by the domain's rules, so that a direct call and a request are refused alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from domain.provisioning import Layout

if TYPE_CHECKING:
    from domain.certs import Issuer


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


class Connect(msgspec.Struct, frozen=True):
    """Connect every pair of the cross product or none; ``actions`` None is both."""

    channel_ids: Any
    thing_ids: Any
    actions: Any = None


class Disconnect(msgspec.Struct, frozen=True):
    """Disconnect every pair or none."""

    channel_ids: Any
    thing_ids: Any


class AssignPolicy(msgspec.Struct, frozen=True):
    """Give the user ``subject`` the ``actions`` on the channel ``object_id`` (added to what
    it has)."""

    subject: Any
    object_id: Any
    actions: Any


class RevokePolicy(msgspec.Struct, frozen=True):
    subject: Any
    object_id: Any


class AddConfig(msgspec.Struct, frozen=True):
    """A bootstrap configuration; without ``thing_id`` its thing is created with it."""

    external_id: Any = None
    external_key: Any = None
    thing_id: Any = None
    name: Any = None
    content: Any = None
    channels: Any = None
    client_cert: Any = None
    client_key: Any = None
    ca_cert: Any = None


class UpdateConfig(msgspec.Struct, frozen=True):
    thing_id: UUID
    name: Any = None
    content: Any = None


class UpdateConfigCerts(msgspec.Struct, frozen=True):
    thing_id: UUID
    client_cert: Any
    client_key: Any
    ca_cert: Any


class UpdateConfigChannels(msgspec.Struct, frozen=True):
    thing_id: UUID
    channels: Any


class ChangeConfigState(msgspec.Struct, frozen=True):
    """1 connects the config's thing to its channels, 0 disconnects it."""

    thing_id: UUID
    state: Any


class RemoveConfig(msgspec.Struct, frozen=True):
    thing_id: UUID


class IssueCert(msgspec.Struct, frozen=True):
    """A certificate for a thing, valid ``ttl_seconds``; ``issuer`` signs it (the service's CA,
    which the domain does not hold)."""

    thing_id: Any
    ttl_seconds: float
    issuer: Issuer


class RevokeCerts(msgspec.Struct, frozen=True):
    """Revoke every live certificate of a thing, as of ``now``."""

    thing_id: Any
    now: datetime


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
