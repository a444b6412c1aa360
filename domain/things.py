"""Things: devices and applications that hold a secret to publish and subscribe with."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain import resources
from domain.attempt import Attempt, Core
from domain.base import Entity, Meta, UniqueKey, key_id
from domain.commands import (
    ChangeThingSecret,
    CreateThings,
    SetThingEnabled,
    ShareThing,
    UpdateThing,
    UpdateThingTags,
)
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
from domain.traits import (
    Profiled,
    Removable,
    Sharing,
    Switchable,
    add_grants,
    set_disabled,
    set_enabled,
    set_profile,
    set_removed,
    set_tags,
)
from domain.users import check_tags

SECRET_KIND = "thing_secret"
_SECRET = re.compile(r"^[\x21-\x7e]{1,1024}$")  # printable, no spaces: it travels in a header


def secret_key(secret: str) -> str:
    """What a secret is claimed and looked up by: its sha256, never the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_thing_secret(secret: Any) -> str:
    if not isinstance(secret, str) or not _SECRET.match(secret):
        raise Invalid("secret must be 1 to 1024 printable characters without spaces")
    return secret


class Thing(Profiled, Switchable, Sharing, Removable, Entity):
    """A device or application; its secret is unique among things."""

    class Created(Entity.Created):
        """Version 2 adds ``description``; a stored version 1 event is read with ``""``."""

        class_version = 2
        owner: UUID
        name: str
        secret: str
        tags: list[str]
        metadata: dict[str, Any]
        enabled: bool
        description: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["description"] = ""

    @event("Created")
    def __init__(self, id: UUID, owner: UUID, name: str, secret: str, tags: list[str],  # noqa: A002
                 metadata: dict[str, Any], enabled: bool, description: str = "") -> None:
        self.owner, self.name, self.secret = owner, name, secret
        self.tags, self.metadata, self.enabled = tags, metadata, enabled
        self.description = description
        self.shares: dict[str, list[str]] = {}

    @event("SecretChanged")
    def change_secret(self, secret: str) -> None:
        self.secret = secret

    # Its own events (Thing.Updated, ...); update, update_tags, enable, disable, share and
    # remove decide when (domain.traits).
    _updated = event("Updated")(set_profile)
    _tags_updated = event("TagsUpdated")(set_tags)
    _enabled = event("Enabled")(set_enabled)
    _disabled = event("Disabled")(set_disabled)
    _shared = event("Shared")(add_grants)
    _removed = event("Removed")(set_removed)


@dataclass(frozen=True)
class NewThing:
    """One checked item of a create request."""

    id: UUID
    name: str
    secret: str
    tags: list[str]
    metadata: dict[str, Any]
    enabled: bool


def check_new_thing(item: Any) -> NewThing:
    if not isinstance(item, dict):
        raise Invalid("a thing must be a JSON object")
    creds = item.get("credentials") or {}
    if not isinstance(creds, dict):
        raise Invalid("credentials must be a JSON object")
    secret = creds.get("secret")
    secret = str(uuid.uuid4()) if secret in (None, "") else check_thing_secret(secret)
    raw_id = item.get("id")
    thing_id = uuid.uuid4() if raw_id in (None, "") else check_uuid(raw_id, "id")
    tags = item.get("tags")
    return NewThing(id=thing_id, name=check_text(item.get("name"), "name"), secret=secret,
                    tags=check_tags(tags) if tags is not None else [],
                    metadata=check_metadata(item.get("metadata")),
                    enabled=check_status(item.get("status")))


def _thing_for(at: Attempt, who: Principal, thing_id: UUID, action: str | None) -> Thing:
    return resources.entity_for(at, who, Thing, thing_id, action, "thing", lambda thing: thing.shares)


def new_thing_changes(at: Attempt, who: Principal, s: NewThing) -> tuple[Thing, list[Entity]]:
    """A new thing and the claim on its secret, unsaved, for any command that creates one."""
    # The aggregate's own id is the claim on the thing id: the store refuses a
    # second version 1 of it in the same transaction as everything else.
    if not at.absent(s.id):
        raise Conflict("thing id already exists")
    claim = at.claim(SECRET_KIND, secret_key(s.secret), s.id, "secret already exists")
    thing = fresh(Thing, id=s.id, owner=who.user_id, name=s.name, secret=s.secret, tags=s.tags,
                  metadata=s.metadata, enabled=s.enabled)
    return thing, [claim, thing]


def remove_thing_changes(at: Attempt, thing: Thing) -> list[Entity]:
    """Remove a thing and release its secret (no longer a credential, free for another
    thing), unsaved, for use inside another command's build."""
    if thing.removed:
        return []
    claim = at.get_or_none(UniqueKey, key_id(SECRET_KIND, secret_key(thing.secret)))
    if claim is not None and claim.holder == thing.id:
        claim.release()
    thing.remove()
    return [a for a in (claim, thing) if a is not None]


class ThingHandlers:
    """The use cases of things."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def create_things(self, who: Principal, cmd: CreateThings, meta: Meta = NO_META) -> Done:
        """Create every thing or none; an error of a bulk request names the 0-based index of
        its item."""
        specs = resources.checked_items(cmd.items, "things", check_new_thing,
                                        [(lambda s: s.id, "thing id already exists"),
                                         (lambda s: s.secret, "secret already exists")], cmd.bulk)
        return resources.create_all(self.core, specs, cmd.bulk, meta,
                                    lambda at, s: new_thing_changes(at, who, s))

    def thing(self, who: Principal, thing_id: UUID) -> Thing:
        """A thing the caller may see, from the write model."""
        return _thing_for(self.core.reads(), who, thing_id, None)

    def update_thing(self, who: Principal, cmd: UpdateThing, meta: Meta = NO_META) -> Done:
        name = None if cmd.name is None else check_text(cmd.name, "name")
        metadata = None if cmd.metadata is None else check_metadata(cmd.metadata)
        return resources.change(self.core, partial(self._find, who, cmd.thing_id), "c_update",
                                lambda thing: thing.update(name, metadata), meta)

    def update_thing_tags(self, who: Principal, cmd: UpdateThingTags, meta: Meta = NO_META) -> Done:
        tags = check_tags(cmd.tags)
        return resources.change(self.core, partial(self._find, who, cmd.thing_id), "c_update",
                                lambda thing: thing.update_tags(tags), meta)

    def change_thing_secret(self, who: Principal, cmd: ChangeThingSecret, meta: Meta = NO_META) -> Done:
        """A new secret: the old one is released and the new one claimed in the same save."""
        thing_id, secret = cmd.thing_id, check_thing_secret(cmd.secret)

        def build(at: Attempt) -> tuple[Thing, list[Entity]]:
            thing = _thing_for(at, who, thing_id, "c_update")
            if hmac.compare_digest(thing.secret.encode(), secret.encode()):
                return thing, [thing]
            new = at.claim(SECRET_KIND, secret_key(secret), thing.id, "secret already exists")
            old = at.get_or_none(UniqueKey, key_id(SECRET_KIND, secret_key(thing.secret)))
            if old is not None:
                old.release()
            thing.change_secret(secret)
            return thing, [a for a in (old, new, thing) if a is not None]

        return self.core.commit(build, meta)

    def set_thing_enabled(self, who: Principal, cmd: SetThingEnabled, meta: Meta = NO_META) -> Done:
        return resources.set_enabled(self.core, partial(self._find, who, cmd.thing_id), cmd.enabled, meta)

    def share_thing(self, who: Principal, cmd: ShareThing, meta: Meta = NO_META) -> Done:
        return resources.share(self.core, partial(self._find, who, cmd.thing_id), cmd.user_ids,
                               cmd.actions, meta)

    @staticmethod
    def _find(who: Principal, thing_id: UUID, at: Attempt, action: str) -> Thing:
        return _thing_for(at, who, thing_id, action)
