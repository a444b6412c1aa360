"""User accounts: e-mail identities, hashed secrets, enable and disable."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Entity
from domain.common import Principal, text_fault
from domain.errors import Invalid
from domain.traits import Profiled, Switchable, set_enabled, set_profile, set_tags

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_SECRET = 8
MAX_NAME = 1024
ADMIN = "admin"
ROLES = ("user", ADMIN)


def principal_of(user_id: UUID, role: str) -> Principal:
    """The caller a user (or a token's claims) is: an administrator by its role, nothing else."""
    return Principal(user_id=user_id, admin=role == ADMIN)


def check_identity(identity: Any) -> str:
    if not isinstance(identity, str) or len(identity) > 254 or not EMAIL.match(identity):
        raise Invalid("identity must be an e-mail address")
    fault = text_fault(identity)
    if fault is not None:
        raise Invalid(f"identity {fault}")
    return identity


def check_secret(secret: Any) -> str:
    if not isinstance(secret, str) or len(secret) < MIN_SECRET:
        raise Invalid(f"secret must be at least {MIN_SECRET} characters")
    if len(secret) > 1024:
        raise Invalid("secret is too long")
    fault = text_fault(secret)
    if fault is not None:
        raise Invalid(f"secret {fault}")
    return secret


def check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise Invalid("name must be a string")
    if len(name) > MAX_NAME:
        raise Invalid(f"name is longer than {MAX_NAME} characters")
    fault = text_fault(name)
    if fault is not None:
        raise Invalid(f"name {fault}")
    return name


def check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 256 for t in tags):
        raise Invalid("tags must be a list of strings")
    if len(tags) > 64:
        raise Invalid("too many tags")
    for i, tag in enumerate(tags):
        fault = text_fault(tag)
        if fault is not None:
            raise Invalid(f"tags[{i}] {fault}")
    return list(dict.fromkeys(tags))


class User(Profiled, Switchable, Entity):
    """A person or service account that owns things and channels."""

    @event("Created")
    def __init__(self, identity: str, name: str, secret_hash: str, metadata: dict[str, Any],
                 tags: list[str], role: str, enabled: bool) -> None:
        self.identity, self.name, self.secret_hash = identity, name, secret_hash
        self.metadata, self.tags, self.role, self.enabled = metadata, tags, role, enabled
        # Tokens carry the epoch they were issued in; a new secret or a disable starts the next
        # one, which ends every token issued before (enabling again does not revive them).
        self.tokens_epoch = 0

    @event("SecretChanged")
    def change_secret(self, secret_hash: str) -> None:
        self.secret_hash = secret_hash
        self.tokens_epoch += 1

    # Its own events (User.Updated, ...); update, update_tags, enable and disable decide when
    # (domain.traits).
    _updated = event("Updated")(set_profile)
    _tags_updated = event("TagsUpdated")(set_tags)
    _enabled = event("Enabled")(set_enabled)

    @event("Disabled")  # its own: a disable also ends the user's tokens
    def _disabled(self) -> None:
        self.enabled = False
        self.tokens_epoch += 1
