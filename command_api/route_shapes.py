"""Which route takes and answers what: the tables, by handler, the OpenAPI document reads."""

from __future__ import annotations

from typing import Annotated, Any

from command_api.answer_shapes import (
    Access,
    Bootstrap,
    Cert,
    Channel,
    ChannelsMade,
    ChannelsPage,
    Config,
    ConfigCerts,
    ConfigsPage,
    DryRun,
    EventsPage,
    Health,
    Identified,
    IssuedCert,
    PoliciesPage,
    Policy,
    Provisioned,
    Revoked,
    SerialsPage,
    Thing,
    ThingsMade,
    ThingsPage,
    Tokens,
    User,
    UsersPage,
)
from command_api.shapes import (
    NO_NUL,
    AccessRequest,
    CertRequest,
    CertsUpdate,
    ChannelsUpdate,
    ConfigUpdate,
    ConnectMany,
    ConnectOne,
    CreateUser,
    IdentifyBody,
    MappingRequest,
    NewChannel,
    NewChannels,
    NewConfig,
    NewPolicy,
    NewThing,
    NewThings,
    Share,
    StateUpdate,
    UpdateChannel,
    UpdateTags,
    UpdateThing,
    UpdateThingSecret,
    UpdateUser,
    UpdateUserSecret,
    one_of_each,
)

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
