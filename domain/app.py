"""The eventsourcing Application: one method per use case, each one atomic save."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.base import Entity, Meta, UniqueKey, key_id
from domain.bootstrap import BootstrapCases
from domain.certs import CertCases
from domain.channels import ChannelCases
from domain.common import NO_META, Done, Principal, check_metadata
from domain.connections import ConnectionCases, PolicyCases
from domain.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from domain.provisioning import ProvisionCases
from domain.things import ThingCases
from domain.users import ROLES, User, check_identity, check_name, check_secret, check_tags

T = TypeVar("T")
__all__ = ["Done", "Hasher", "PlainHasher", "Principal", "Smq", "check_metadata"]
A = TypeVar("A", bound=Entity)
RETRIES = 8
Save = Callable[..., list[Any]]

# A hash that no secret matches, checked when the identity is unknown so that a
# wrong identity costs the same time as a wrong secret.
_DUMMY_SECRET = "smq-es-no-such-user"


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


class Smq(ThingCases, ChannelCases, ConnectionCases, PolicyCases, BootstrapCases, CertCases,
          ProvisionCases, Application):
    """Every write of the platform, and the few reads that must see the write model."""

    name = "smq"

    def __init__(self, env: dict[str, str] | None = None, hasher: Hasher | None = None,
                 saver: Callable[[Save], Save] | None = None) -> None:
        """``saver`` wraps how a command's events reach the store (``record``: one transaction
        each); infra gives a group committer, which shares transactions between concurrent
        commands."""
        super().__init__(env)
        self.hasher: Hasher = hasher or PlainHasher()
        self._dummy_hash: str | None = None
        self._attempt = threading.local()
        self.saver: Save = saver(self.record) if saver is not None else self.record

    def record(self, *events: Any) -> list[Any]:
        """Store domain events in one transaction; their recordings. What ``save`` does for
        events, without its per-object protocol checks (``isinstance`` against a runtime
        Protocol: a sixth of a bulk create's time) and its snapshot and notify hooks, which
        this application does not use."""
        return self.events.put(list(events))

    # -- plumbing ---------------------------------------------------------------
    def commit(self, build: Callable[[], tuple[T, Sequence[Entity]]], meta: Meta) -> Done:
        """Run ``build`` and save what it changed in one transaction, retrying on a clash.

        A clash means another writer changed one of the aggregates (or claimed the
        same unique value) first; the retry reloads them, so a taken value now
        raises ``Conflict`` from the domain rather than being retried forever.
        """
        for attempt in range(RETRIES):
            # The first attempt is optimistic: new aggregates and claims are made without
            # reading first; the store refuses a clash, and the retry reads and decides.
            self._attempt.retry = attempt > 0
            result, aggregates = build()
            changed = [a for a in aggregates if a._pending_events]
            for agg in changed:
                agg.stamp(meta)
            if not changed:
                return Done(result, None)
            events = [e for agg in changed for e in agg.collect_events()]
            try:
                recordings = self.saver(*events)
            except IntegrityError:
                continue
            return Done(result, max(r.notification.id for r in recordings))
        raise Conflict("the entity was changed concurrently; try again")

    def get_or_none(self, cls: type[A], aggregate_id: UUID) -> A | None:
        made = self.made
        if made is not None and aggregate_id in made:  # made earlier in this same command
            agg = made[aggregate_id]
            return agg if isinstance(agg, cls) else None
        try:
            agg = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return agg if isinstance(agg, cls) else None

    @property
    def optimistic(self) -> bool:
        """True on a command's first attempt: assume no clash; the store checks anyway."""
        return not getattr(self._attempt, "retry", False)

    def absent(self, aggregate_id: UUID) -> bool:
        """Whether no aggregate has this id (assumed on a first attempt; the store checks)."""
        made = self.made
        if made is not None and aggregate_id in made:
            return False
        return self.optimistic or self.get_or_none(Entity, aggregate_id) is None

    @property
    def made(self) -> dict[UUID, Entity] | None:
        """Aggregates made or changed earlier in the command being built, not yet saved
        (a command of several steps in one transaction); reads see them first."""
        return getattr(self._attempt, "made", None)

    def made_new(self, aggregate_id: UUID) -> bool:
        """Whether the command being built created this aggregate (so nothing refers to it yet)."""
        agg = (self.made or {}).get(aggregate_id)
        pending = agg._pending_events if agg is not None else []  # noqa: SLF001
        return bool(pending) and pending[0].originator_version == 1

    @made.setter
    def made(self, value: dict[UUID, Entity] | None) -> None:
        self._attempt.made = value

    def claim(self, kind: str, key: str, holder: UUID, taken: str) -> UniqueKey:
        """Claim a unique value for ``holder`` or raise ``Conflict(taken)``."""
        made = self.made
        if made is not None and key_id(kind, key) in made:  # claimed earlier in this command
            mine = made[key_id(kind, key)]
            if not isinstance(mine, UniqueKey) or (mine.held and mine.holder != holder):
                raise Conflict(taken)
            return mine
        if self.optimistic:
            return UniqueKey(kind=kind, key=key, holder=holder)
        existing = self.get_or_none(UniqueKey, key_id(kind, key))
        if existing is None:
            return UniqueKey(kind=kind, key=key, holder=holder)
        if existing.held and existing.holder != holder:
            raise Conflict(taken)
        if not existing.held:
            existing.claim(holder)
        return existing

    def holder_of(self, kind: str, key: str) -> UUID | None:
        uk = self.get_or_none(UniqueKey, key_id(kind, key))
        return uk.holder if uk is not None and uk.held else None

    # -- users ------------------------------------------------------------------
    def create_user(self, identity: Any, secret: Any, name: Any = "", metadata: Any = None,
                    tags: Any = None, status: Any = "enabled", role: str = "user",
                    meta: Meta = NO_META) -> Done:
        identity = check_identity(identity)
        check_secret(secret)
        name = check_name(name if name is not None else "")
        metadata = check_metadata(metadata)
        tags = check_tags(tags if tags is not None else [])
        if status not in ("enabled", "disabled"):
            raise Invalid("status must be enabled or disabled")
        if role not in ROLES:
            raise Invalid("invalid role")
        secret_hash = self.hasher.hash(secret)

        def build() -> tuple[User, list[Entity]]:
            user = User(identity=identity, name=name, secret_hash=secret_hash, metadata=metadata,
                        tags=tags, role=role, enabled=status == "enabled")
            index = self.claim("identity", identity.lower(), user.id, "identity already exists")
            return user, [index, user]

        return self.commit(build, meta)

    def user_by_identity(self, identity: str) -> User | None:
        holder = self.holder_of("identity", identity.lower())
        return self.get_or_none(User, holder) if holder else None

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
        user = self.get_or_none(User, user_id)
        if user is None or not user.enabled:
            raise Unauthenticated("user is unknown or disabled")
        if epoch is not None and epoch != user.tokens_epoch:
            raise Unauthenticated("token was issued before the secret changed or the user was disabled")
        return user

    def _user_for(self, who: Principal, user_id: UUID) -> User:
        if who.user_id != user_id and not who.admin:
            raise NotFound("user not found")
        user = self.get_or_none(User, user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    def update_user(self, who: Principal, user_id: UUID, name: Any = None, metadata: Any = None,
                    meta: Meta = NO_META) -> Done:
        name = None if name is None else check_name(name)
        metadata = None if metadata is None else check_metadata(metadata)

        def build() -> tuple[User, list[Entity]]:
            user = self._user_for(who, user_id)
            user.update(name, metadata)
            return user, [user]

        return self.commit(build, meta)

    def update_user_tags(self, who: Principal, user_id: UUID, tags: Any, meta: Meta = NO_META) -> Done:
        tags = check_tags(tags)

        def build() -> tuple[User, list[Entity]]:
            user = self._user_for(who, user_id)
            user.update_tags(tags)
            return user, [user]

        return self.commit(build, meta)

    def change_user_secret(self, who: Principal, old: Any, new: Any, meta: Meta = NO_META) -> Done:
        check_secret(new)
        user = self.get_or_none(User, who.user_id)
        if user is None or not isinstance(old, str) or not self.hasher.verify(user.secret_hash, old):
            raise Unauthenticated("wrong secret")
        new_hash = self.hasher.hash(new)

        def build() -> tuple[User, list[Entity]]:
            current = self._user_for(who, who.user_id)
            current.change_secret(secret_hash=new_hash)
            return current, [current]

        return self.commit(build, meta)

    def set_user_enabled(self, who: Principal, user_id: UUID, enabled: bool, meta: Meta = NO_META) -> Done:
        def build() -> tuple[User, list[Entity]]:
            user = self._user_for(who, user_id)
            if user.role == "admin" and not enabled and who.user_id == user_id:
                raise Forbidden("an administrator cannot disable itself")
            user.enable() if enabled else user.disable()
            return user, [user]

        return self.commit(build, meta)

