"""The wire shapes the OpenAPI document describes: request bodies that a route reads loosely
(a ``dict`` checked by the domain, a Struct of ``Any`` fields) and every route's answers.

Each request shape states the domain's own rules (lengths, formats, enums, the text rule:
no control characters), so that what the document calls valid is taken, and what it calls
invalid is refused. Answers are Structs with ``forbid_unknown_fields``: a key the document
does not know is a drift, caught by the fuzz test's response conformance check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

# -- request rules ---------------------------------------------------------------------------
TEXT_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"  # the text rule: no control characters
PEM_PATTERN = "^[^\\x00-\\x09\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"  # a PEM keeps its line breaks
JSON_VALUE = "#/components/schemas/JsonValue"
# Any JSON, its strings and keys under the text rule (metadata, bootstrap content).
JSON_VALUE_SCHEMA: dict[str, Any] = {
    # No ``type``: each keyword constrains only its own kind of value (no anyOf, whose
    # branches a fuzzer's mutations cannot tell apart).
    "description": "any JSON value; strings and keys without control characters",
    "pattern": TEXT_PATTERN, "propertyNames": {"pattern": TEXT_PATTERN},
    "additionalProperties": {"$ref": JSON_VALUE}, "items": {"$ref": JSON_VALUE},
}
NO_NUL = "^[^\\x00]*$"
# A metadata filter in the query: a JSON object under the text rule (as what it matches);
# small enough for a URL.
METADATA_QUERY: dict[str, Any] = {
    "type": "object", "description": "a JSON object, matched partially", "maxProperties": 4,
    "propertyNames": {"pattern": TEXT_PATTERN, "maxLength": 32},
    "additionalProperties": {"type": ["string", "number", "boolean", "null"], "pattern": TEXT_PATTERN,
                             "maxLength": 64},
}


def text(max_length: int = 1024, **more: Any) -> Any:
    return Meta(max_length=max_length, pattern=TEXT_PATTERN, **more)


Text = Annotated[str, text()]
Tag = Annotated[str, text(256)]
Tags = Annotated[list[Tag], Meta(max_length=64)]
Metadata = Annotated[dict[str, Any], Meta(
    description="a JSON object (at most 16 levels deep, 64 KiB)",
    extra_json_schema={"propertyNames": {"pattern": TEXT_PATTERN},
                       "additionalProperties": {"$ref": JSON_VALUE}})]
Status = Literal["enabled", "disabled", ""]
Email = Annotated[str, Meta(max_length=254, pattern="^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f]+"
                                                    "\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]+$")]
Secret = Annotated[str, Meta(min_length=8, max_length=1024, pattern=TEXT_PATTERN)]
ThingSecret = Annotated[str, Meta(pattern="^[\\x21-\\x7e]{1,1024}$",
                                  description="printable ASCII without spaces: it travels in a header")]
External = Annotated[str, Meta(min_length=1, max_length=1024, pattern="^[^\\x00-\\x1f\\x7f-\\x9f]*"
                                                                      "[^\\s\\x00-\\x1f\\x7f-\\x9f]"
                                                                      "[^\\x00-\\x1f\\x7f-\\x9f]*$")]
Pem = Annotated[str, Meta(max_length=64 * 1024, pattern=PEM_PATTERN)]
ChannelIds = Annotated[list[UUID], Meta(max_length=1000)]
Ids = Annotated[list[UUID], Meta(min_length=1, max_length=1000)]
ShareAction = Literal["c_list", "c_update", "c_delete"]
ConnectionAction = Literal["m_read", "m_write"]
PolicyAction = Literal["c_list", "g_add", "m_read", "m_write"]
# Within ten years (the domain's bound), in the Go duration units clients send.
Ttl = Annotated[str, Meta(pattern="^([1-9][0-9]{0,3}h|[1-9][0-9]{0,5}m|[1-9][0-9]{0,7}s)?$",
                          description="a duration such as 8760h, 90m or 3600s (default 8760h)")]


class ThingCredentials(msgspec.Struct):
    secret: Annotated[str, Meta(pattern="^[\\x21-\\x7e]{0,1024}$", description="generated when left out or empty")] | None = None


class NewThing(msgspec.Struct):
    """POST /things (and each item of /things/bulk): every field may be left out."""

    id: UUID | None = None
    name: Text | None = None
    credentials: ThingCredentials | None = None
    tags: Tags | None = None
    metadata: Metadata | None = None
    status: Status | None = None


class NewChannel(msgspec.Struct):
    id: UUID | None = None
    name: Text | None = None
    description: Annotated[str, text(4096)] | None = None
    metadata: Metadata | None = None
    status: Status | None = None


NewThings = Annotated[list[NewThing], Meta(min_length=1, max_length=1000)]
NewChannels = Annotated[list[NewChannel], Meta(min_length=1, max_length=1000)]


class NewConfig(msgspec.Struct):
    """POST /things/configs: without ``thing_id`` a new thing is created for the config."""

    external_id: External
    external_key: External
    thing_id: UUID | None = None
    name: Text | None = None
    content: Annotated[str, text(256 * 1024)] | None = None
    channels: ChannelIds | None = None
    client_cert: Pem | None = None
    client_key: Pem | None = None
    ca_cert: Pem | None = None


class ConfigUpdate(msgspec.Struct):
    name: Text | None = None
    content: Annotated[str, text(256 * 1024)] | None = None


class CertsUpdate(msgspec.Struct):
    client_cert: Pem | None
    client_key: Pem | None
    ca_cert: Pem | None


class ChannelsUpdate(msgspec.Struct):
    channels: ChannelIds | None


class StateUpdate(msgspec.Struct):
    state: Literal[0, 1] = 0


class CertRequest(msgspec.Struct):
    thing_id: UUID
    ttl: Ttl | None = None


class MappingRequest(msgspec.Struct):
    external_id: External
    external_key: External
    name: Text | None = None


class UserCredentials(msgspec.Struct):
    identity: Email
    secret: Secret


class CreateUser(msgspec.Struct):
    credentials: UserCredentials
    name: Text | UnsetType = UNSET
    metadata: Metadata | None = None
    tags: Tags | None = None
    status: Literal["enabled", "disabled"] = "enabled"


class UpdateUser(msgspec.Struct):
    name: Text | None = None
    metadata: Metadata | None = None


class UpdateTags(msgspec.Struct):
    tags: Tags


class UpdateThing(msgspec.Struct):
    name: Text | None = None
    metadata: Metadata | None = None


class UpdateChannel(msgspec.Struct):
    name: Text | None = None
    description: Annotated[str, text(4096)] | None = None
    metadata: Metadata | None = None


class IdentifyBody(msgspec.Struct):
    """Without ``Authorization: Thing <secret>``, the secret as upstream's SDK sends it."""

    token: Annotated[str, Meta(min_length=1, pattern=TEXT_PATTERN)]


class UpdateThingSecret(msgspec.Struct):
    secret: ThingSecret


class UpdateUserSecret(msgspec.Struct):
    old_secret: Annotated[str, text()]
    new_secret: Secret


def one_of_each(*groups: tuple[str, ...]) -> Any:
    """At least one field of each group is present (a group's names are aliases)."""
    return Meta(extra_json_schema={"allOf": [{"anyOf": [{"required": [n]} for n in g]} for g in groups]})


class Share(msgspec.Struct):
    """Ours ``{user_ids, actions}``, or upstream's ``{group_id, user_id, actions}``."""

    actions: Annotated[list[ShareAction], Meta(min_length=1)]
    user_ids: Ids | UnsetType = UNSET
    user_id: UUID | UnsetType = UNSET
    group_id: Annotated[str, text()] | None = None


class ConnectOne(msgspec.Struct):
    actions: Annotated[list[ConnectionAction], Meta(min_length=1)] | None = None


class ConnectMany(msgspec.Struct):
    """Ours ``{channel_ids, thing_ids}``, upstream's ``{group_ids, client_ids}`` or later
    clients' ``{objects, subjects}``: one name of each side is required."""

    channel_ids: Ids | UnsetType = UNSET
    thing_ids: Ids | UnsetType = UNSET
    group_ids: Ids | UnsetType = UNSET
    client_ids: Ids | UnsetType = UNSET
    objects: Ids | UnsetType = UNSET
    subjects: Ids | UnsetType = UNSET
    actions: Annotated[list[ConnectionAction], Meta(min_length=1)] | None = None


class NewPolicy(msgspec.Struct):
    subject: UUID
    object: UUID
    actions: Annotated[list[PolicyAction], Meta(min_length=1)]


class AccessRequest(msgspec.Struct):
    secret: Annotated[str, Meta(min_length=1, pattern=TEXT_PATTERN)]
    action: ConnectionAction


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


# -- which route takes and answers what ------------------------------------------------------
PEM = "application/x-pem-file"
TEXT_PLAIN = "text/plain"
OCTETS = "application/octet-stream"
JSON_OBJECT = dict[str, Any]

CONNECT_MANY = Annotated[ConnectMany, one_of_each(("channel_ids", "group_ids", "objects"),
                                                   ("thing_ids", "client_ids", "subjects"))]
# Routes whose body is read loosely: the shape the document shows instead (by handler).
REQUESTS: dict[str, Any] = {
    "things.create_thing": NewThing, "things.create_things": NewThings,
    "things.update_thing": UpdateThing, "things.identify": IdentifyBody,
    "channels.put_channel": UpdateChannel, "channels.patch_channel": UpdateChannel,
    "things.update_secret": UpdateThingSecret, "things.update_tags": UpdateTags,
    "things.share_thing": Annotated[Share, one_of_each(("user_ids", "user_id"))],
    "channels.share_channel": Annotated[Share, one_of_each(("user_ids", "user_id"))],
    "channels.create_channel": NewChannel, "channels.create_channels": NewChannels,
    "bootstrap.add_config": NewConfig, "bootstrap.update_config": ConfigUpdate,
    "bootstrap.update_certs": CertsUpdate, "bootstrap.update_connections": ChannelsUpdate,
    "bootstrap.change_state": StateUpdate, "certs.issue": CertRequest,
    "provision.provision": MappingRequest, "users.create_user": CreateUser,
    "users.update_user": UpdateUser, "users.update_tags": UpdateTags,
    "users.update_secret": UpdateUserSecret, "connections.put_connection": ConnectOne,
    "connections.post_connection": ConnectOne, "connections.connect_many": CONNECT_MANY,
    "connections.disconnect_many": CONNECT_MANY, "policies.add_policy": NewPolicy,
    "messages.access": AccessRequest,
}

# Bodies that may be left out, beside those the route reads with ``optional=True``.
OPTIONAL_BODIES = {"things.identify"}
# Bodies of any media type: the message adapter publishes them as they come.
RAW_BODIES = {"messages.publish", "messages.publish_subtopic"}

_THING = {200: Thing}
_CHANNEL = {200: Channel}
_USER = {200: User}
# Successful answers by handler: a status and its body (a type, a media type, or None).
ANSWERS: dict[str, dict[int, Any]] = {
    "things.create_thing": {201: Thing}, "things.create_things": {200: ThingsMade},
    "things.list_things": {200: ThingsPage}, "things.get_thing": _THING,
    "things.update_thing": _THING, "things.update_tags": _THING, "things.update_secret": _THING,
    "things.enable_thing": _THING, "things.disable_thing": _THING, "things.share_thing": _THING,
    "things.identify": {200: Identified},
    "channels.create_channel": {201: Channel}, "channels.create_channels": {200: ChannelsMade},
    "channels.list_channels": {200: ChannelsPage}, "channels.get_channel": _CHANNEL,
    "channels.put_channel": _CHANNEL, "channels.patch_channel": _CHANNEL,
    "channels.enable_channel": _CHANNEL, "channels.disable_channel": _CHANNEL,
    "channels.share_channel": _CHANNEL,
    "connections.put_connection": {201: Policy}, "connections.post_connection": {201: Policy},
    "connections.delete_connection": {204: None}, "connections.connect_many": {201: None},
    "connections.disconnect_many": {204: None},
    "connections.things_of_channel": {200: ThingsPage},
    "connections.channels_of_thing": {200: ChannelsPage},
    "policies.add_policy": {201: Policy}, "policies.list_policies": {200: PoliciesPage},
    "policies.delete_policy": {204: None},
    "users.create_user": {201: User}, "users.issue_token": {201: Tokens},
    "users.refresh_token": {201: Tokens}, "users.profile": _USER, "users.list_users": {200: UsersPage},
    "users.get_user": _USER, "users.update_secret": _USER, "users.update_user": _USER,
    "users.update_tags": _USER, "users.enable_user": _USER, "users.disable_user": _USER,
    "events.all_events": {200: EventsPage}, "events.user_events": {200: EventsPage},
    "events.thing_events": {200: EventsPage}, "events.channel_events": {200: EventsPage},
    "messages.publish": {202: None}, "messages.publish_subtopic": {202: None},
    "messages.access": {200: Access},
    "bootstrap.add_config": {201: Config}, "bootstrap.list_configs": {200: ConfigsPage},
    "bootstrap.view_config": {200: Config}, "bootstrap.update_config": {200: Config},
    "bootstrap.update_certs": {200: ConfigCerts}, "bootstrap.update_connections": {200: Config},
    "bootstrap.change_state": {200: Config}, "bootstrap.remove_config": {204: None},
    "bootstrap.bootstrap": {200: Bootstrap},
    "bootstrap.bootstrap_secure": {200: OCTETS},
    "certs.ca_cert": {200: PEM}, "certs.crl": {200: PEM}, "certs.issue": {201: IssuedCert},
    "certs.view": {200: Cert}, "certs.serials": {200: SerialsPage}, "certs.revoke": {200: Revoked},
    "provision.mapping": {200: JSON_OBJECT},
    "provision.provision": {201: Provisioned, 200: DryRun},
    "health.health": {200: Health, 503: Health},
    "observability.metrics_page": {200: TEXT_PLAIN},
    "openapi.openapi_json": {200: JSON_OBJECT},
}

# Refusals beyond those the document infers (a body: 400, 413, 415; a token: 401; a path
# parameter or a command: 403, 404, 409), by handler.
MORE_ERRORS: dict[str, set[int]] = {
    "provision.provision": {409, 504},
    "users.issue_token": {401, 429},
    "things.identify": {429},
    "messages.access": {401, 403, 429},
    "messages.publish": {429},
    "messages.publish_subtopic": {429},
    "bootstrap.bootstrap": {429},
    "bootstrap.bootstrap_secure": {429},
    "certs.issue": {503},
}

# Who may call without credentials: public routes, and those where credentials are optional
# (a CRL is public; /identify takes the secret in its body too; /mapping falls back on the
# configured provisioning credentials).
PUBLIC = {"certs.crl"}
OPTIONAL_AUTH = {"provision.mapping": "bearerAuth", "provision.provision": "bearerAuth",
                 "things.identify": "thingKey"}
# Query parameters beyond paging and the filters: their schemas by name.
QUERY: dict[str, dict[str, Any]] = {
    "state": {"type": "string", "enum": ["0", "1"]},
    "identity": {"type": "string", "pattern": NO_NUL},
    "dry_run": {"type": "string", "description": "true, 1 or yes: a dry run; anything else: none"},
}
# Path parameters whose route pattern admits more than the route takes.
PATH: dict[str, dict[str, Any]] = {
    # tokens of a NATS subject: no wildcard, no white space, none empty
    "subtopic": {"type": "string", "pattern": "^[^\\s*>./]+([./][^\\s*>./]+)*$"},
}
