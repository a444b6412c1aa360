"""The request shapes the OpenAPI document shows for bodies a route reads loosely, with the domain's own rules."""

from __future__ import annotations

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
