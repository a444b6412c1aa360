"""User accounts: e-mail identities, hashed secrets, enable and disable."""

from __future__ import annotations

import hmac
import re
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import event

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta
from domain.commands import ChangeUserSecret, CreateUser, SetUserEnabled, UpdateUser, UpdateUserTags
from domain.common import NO_META, Done, Principal, check_metadata, text_fault
from domain.errors import Forbidden, Invalid, NotFound, Unauthenticated
from domain.traits import Profiled, Switchable, set_enabled, set_profile, set_tags

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_SECRET = 8
MAX_NAME = 1024
ADMIN = "admin"
ROLES = ("user", ADMIN)


def principal_of(user_id: UUID, role: str) -> Principal:
    """The caller a user (or a token's claims) is: an administrator by its role, nothing else."""
    return Principal(user_id=user_id, admin=role == ADMIN)

# A hash that no secret matches, checked when the identity is unknown so that a
# wrong identity costs the same time as a wrong secret.
_DUMMY_SECRET = "smq-es-no-such-user"


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


class Hasher(Protocol):
    """Port for the slow salted password hash (argon2 in infra)."""

    def hash(self, secret: str) -> str: ...

    def verify(self, secret_hash: str, secret: str) -> bool: ...


class PlainHasher:
    """For unit tests only: not a password hash."""

    def hash(self, secret: str) -> str:
        return "plain$" + secret

    def verify(self, secret_hash: str, secret: str) -> bool:
        return hmac.compare_digest(secret_hash.encode(), ("plain$" + secret).encode())


def _user_for(at: Attempt, who: Principal, user_id: UUID) -> User:
    if who.user_id != user_id and not who.admin:
        raise NotFound("user not found")
    user = at.get_or_none(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


class UserHandlers:
    """The use cases of users, and the reads that must see the write model (sign-in)."""

    def __init__(self, core: Core, hasher: Hasher) -> None:
        self.core, self.hasher = core, hasher
        self._dummy_hash: str | None = None

    def create_user(self, who: Principal | None, cmd: CreateUser, meta: Meta = NO_META) -> Done:
        identity = check_identity(cmd.identity)
        check_secret(cmd.secret)
        name = check_name(cmd.name if cmd.name is not None else "")
        metadata = check_metadata(cmd.metadata)
        tags = check_tags(cmd.tags if cmd.tags is not None else [])
        status, role = cmd.status, cmd.role
        if status not in ("enabled", "disabled"):
            raise Invalid("status must be enabled or disabled")
        if role not in ROLES:
            raise Invalid("invalid role")
        secret_hash = self.hasher.hash(cmd.secret)

        def build(at: Attempt) -> tuple[User, list[Entity]]:
            user = User(identity=identity, name=name, secret_hash=secret_hash, metadata=metadata,
                        tags=tags, role=role, enabled=status == "enabled")
            index = at.claim("identity", identity.lower(), user.id, "identity already exists")
            return user, [index, user]

        return self.core.commit(build, meta)

    def user_by_identity(self, identity: str) -> User | None:
        at = self.core.reads()
        holder = at.holder_of("identity", identity.lower())
        return at.get_or_none(User, holder) if holder else None

    def authenticate_user(self, identity: Any, secret: Any) -> User:
        """The user whose identity and secret these are; wrong ones cost the same time."""
        if not isinstance(identity, str) or not isinstance(secret, str):
            raise Unauthenticated("wrong identity or secret")
        user = self.user_by_identity(identity)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash(_DUMMY_SECRET)
            self.hasher.verify(self._dummy_hash, secret)
            raise Unauthenticated("wrong identity or secret")
        if not self.hasher.verify(user.secret_hash, secret):
            raise Unauthenticated("wrong identity or secret")
        if not user.enabled:
            raise Unauthenticated("user is disabled")
        return user

    def active_user(self, user_id: UUID, epoch: int | None = None) -> User:
        """The enabled user; with ``epoch``, only if a token of that epoch is still valid."""
        user = self.core.reads().get_or_none(User, user_id)
        if user is None or not user.enabled:
            raise Unauthenticated("user is unknown or disabled")
        if epoch is not None and epoch != user.tokens_epoch:
            raise Unauthenticated("token was issued before the secret changed or the user was disabled")
        return user

    def update_user(self, who: Principal, cmd: UpdateUser, meta: Meta = NO_META) -> Done:
        user_id = cmd.user_id
        name = None if cmd.name is None else check_name(cmd.name)
        metadata = None if cmd.metadata is None else check_metadata(cmd.metadata)

        def build(at: Attempt) -> tuple[User, list[Entity]]:
            user = _user_for(at, who, user_id)
            user.update(name, metadata)
            return user, [user]

        return self.core.commit(build, meta)

    def update_user_tags(self, who: Principal, cmd: UpdateUserTags, meta: Meta = NO_META) -> Done:
        user_id, tags = cmd.user_id, check_tags(cmd.tags)

        def build(at: Attempt) -> tuple[User, list[Entity]]:
            user = _user_for(at, who, user_id)
            user.update_tags(tags)
            return user, [user]

        return self.core.commit(build, meta)

    def change_user_secret(self, who: Principal, cmd: ChangeUserSecret, meta: Meta = NO_META) -> Done:
        old, new = cmd.old, cmd.new
        check_secret(new)
        user = self.core.reads().get_or_none(User, who.user_id)
        if user is None or not isinstance(old, str) or not self.hasher.verify(user.secret_hash, old):
            raise Unauthenticated("wrong secret")
        new_hash = self.hasher.hash(new)

        def build(at: Attempt) -> tuple[User, list[Entity]]:
            current = _user_for(at, who, who.user_id)
            current.change_secret(secret_hash=new_hash)
            return current, [current]

        return self.core.commit(build, meta)

    def set_user_enabled(self, who: Principal, cmd: SetUserEnabled, meta: Meta = NO_META) -> Done:
        user_id, enabled = cmd.user_id, cmd.enabled

        def build(at: Attempt) -> tuple[User, list[Entity]]:
            user = _user_for(at, who, user_id)
            if user.role == "admin" and not enabled and who.user_id == user_id:
                raise Forbidden("an administrator cannot disable itself")
            user.enable() if enabled else user.disable()
            return user, [user]

        return self.core.commit(build, meta)
