"""The answers the OpenAPI document shows, strict (``forbid_unknown_fields``) so that the fuzz test catches a drift."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

Time = Annotated[datetime, Meta(tz=True)]  # RFC 3339 with its zone: "format": "date-time"


# -- answers ---------------------------------------------------------------------------------
class Answer(msgspec.Struct, forbid_unknown_fields=True):
    """An answer's shape: no key beyond those named."""


class Error(Answer):
    error: str


class SecretOf(Answer):
    secret: str


class Thing(Answer):
    id: UUID
    name: str
    owner: UUID
    credentials: SecretOf
    created_at: Time
    updated_at: Time
    status: Literal["enabled", "disabled"]
    tags: list[str] = []
    metadata: dict[str, Any] = {}


class Channel(Answer):
    id: UUID
    owner_id: UUID
    name: str
    created_at: Time
    updated_at: Time
    status: Literal["enabled", "disabled"]
    description: str = ""
    metadata: dict[str, Any] = {}


class IdentityOf(Answer):
    identity: str


class User(Answer):
    id: UUID
    name: str
    credentials: IdentityOf
    role: Literal["user", "admin"]
    created_at: Time
    updated_at: Time
    status: Literal["enabled", "disabled"]
    tags: list[str] = []
    metadata: dict[str, Any] = {}


class Page(Answer):
    limit: Annotated[int, Meta(ge=1, le=100)]
    offset: Annotated[int, Meta(ge=0)]
    total: Annotated[int, Meta(ge=0)]


class ThingsPage(Page):
    things: list[Thing]


class ChannelsPage(Page):
    channels: list[Channel]


class UsersPage(Page):
    users: list[User]


class ThingsMade(Answer):
    total: int
    things: list[Thing]


class ChannelsMade(Answer):
    total: int
    channels: list[Channel]


class Tokens(Answer):
    access_token: str
    refresh_token: str
    access_type: Literal["Bearer"]


class Identified(Answer):
    id: UUID


class Access(Answer):
    id: UUID
    thing_id: UUID
    authorized: bool


class Policy(Answer):
    """A connection (the thing is the subject, the channel the object) or a policy."""

    owner_id: UUID
    subject: UUID
    object: UUID
    actions: list[str]
    created_at: Time
    updated_at: Time


class PoliciesPage(Page):
    policies: list[Policy]


class Event(Answer):
    position: int
    aggregate: str
    aggregate_id: UUID
    version: int
    type: str
    occurred_at: Time
    actor: str | None
    correlation_id: str | None
    causation_id: str | None
    data: dict[str, Any]


class EventsPage(Answer):
    after: Annotated[int, Meta(ge=0)]
    limit: Annotated[int, Meta(ge=1, le=1000)]
    next: Annotated[int, Meta(ge=0)]
    events: list[Event]


class ConfigChannel(Answer):
    id: UUID
    name: str = ""
    metadata: dict[str, Any] = {}


class Config(Answer):
    mainflux_id: UUID
    mainflux_key: str
    external_id: str
    external_key: str
    state: Literal[0, 1]
    mainflux_channels: list[ConfigChannel] = []
    content: str = ""
    name: str = ""
    client_cert: str = ""
    ca_cert: str = ""


class ConfigsPage(Page):
    configs: list[Config]


class ConfigCerts(Answer):
    mainflux_id: UUID
    client_cert: str = ""
    client_key: str = ""
    ca_cert: str = ""


class Bootstrap(Answer):
    """What a gateway fetches: its thing, its channels, its content and certificates."""

    mainflux_id: UUID
    mainflux_key: str
    mainflux_channels: list[ConfigChannel]
    content: str = ""
    client_cert: str = ""
    client_key: str = ""
    ca_cert: str = ""


class IssuedCert(Answer):
    thing_id: UUID
    client_cert: str
    client_key: str
    cert_serial: str
    expiration: Time
    issuing_ca: str


class Cert(Answer):
    thing_id: UUID
    cert_serial: str
    expiration: Time
    revoked: bool
    client_cert: str = ""
    revocation_time: Time | None = None


class SerialsPage(Page):
    serials: list[str]
    certs: list[Cert]


class Revoked(Answer):
    revocation_time: Time
    revoked: list[str]


class Health(Answer):
    status: Literal["pass", "fail"]
    version: str
    description: str
    checks: dict[str, str]


class Provisioned(msgspec.Struct):
    """A gateway's provisioned layout, as upstream's provision service answers."""

    things: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    whitelisted: dict[str, bool] = {}


class DryRun(msgspec.Struct):
    dry_run: bool
