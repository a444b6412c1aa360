"""What the use cases of every resource share: the caller, a command's outcome, field rules
and the access rule for owned, shareable entities."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from uuid import UUID

from domain.base import Entity, Meta, UniqueKey
from domain.errors import Forbidden, Invalid, NotFound

T = TypeVar("T")
A = TypeVar("A", bound=Entity)

NO_META = Meta()  # a command without audit metadata (tests, scripts)
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 16
MAX_BULK = 1000
# c_list lets a user see an entity; c_update and c_delete (enable, disable) imply c_list,
# so that nobody may change what they cannot see.
ACTIONS = ("c_list", "c_update", "c_delete")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a command."""

    user_id: UUID
    admin: bool = False


@dataclass(frozen=True)
class Done:
    """What a command returns: its result and the global position of its last event."""

    result: Any
    position: int | None


class Core(Protocol):
    """The plumbing of the application that the per-resource use cases build on."""

    def commit(self, build: Callable[[], tuple[T, Sequence[Entity]]], meta: Meta) -> Done: ...

    def get_or_none(self, cls: type[A], aggregate_id: UUID) -> A | None: ...

    def claim(self, kind: str, key: str, holder: UUID, taken: str) -> UniqueKey: ...

    def absent(self, aggregate_id: UUID) -> bool: ...

    made: dict[UUID, Entity] | None

    def made_new(self, aggregate_id: UUID) -> bool: ...


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_METADATA_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Invalid("metadata must be a JSON object")
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise Invalid(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    if len(repr(metadata)) > MAX_METADATA_BYTES:
        raise Invalid("metadata is too large")
    return metadata


def check_status(status: Any) -> bool:
    """``enabled`` (the default) or ``disabled``; True when enabled."""
    if status is None or status == "":
        return True
    if status not in ("enabled", "disabled"):
        raise Invalid("status must be enabled or disabled")
    return status == "enabled"


def check_uuid(value: Any, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a UUID")
    try:
        return UUID(value)
    except ValueError as exc:
        raise Invalid(f"{what} must be a UUID") from exc


def check_bulk(items: Any, what: str) -> list[Any]:
    if not isinstance(items, list) or not items:
        raise Invalid(f"{what} must be a non-empty JSON array")
    if len(items) > MAX_BULK:
        raise Invalid(f"at most {MAX_BULK} {what} at once")
    return items


def check_text(value: Any, what: str, limit: int = 1024) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string")
    if len(value) > limit:
        raise Invalid(f"{what} is longer than {limit} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise Invalid(f"{what} must not contain control characters")
    return value


def check_grant(user_ids: Any, actions: Any) -> tuple[list[UUID], list[str]]:
    """The users and actions of a share request, actions completed with what they imply."""
    if not isinstance(user_ids, list) or not user_ids or len(user_ids) > 1000:
        raise Invalid("user_ids must be a non-empty list of user ids")
    ids = [check_uuid(u, "user id") for u in user_ids]
    if not isinstance(actions, list) or not actions:
        raise Invalid("actions must be a non-empty list")
    bad = [a for a in actions if a not in ACTIONS]
    if bad:
        raise Invalid(f"unknown action {bad[0]!r}; expected some of {', '.join(ACTIONS)}")
    wanted = {"c_list", *actions}
    return list(dict.fromkeys(ids)), [a for a in ACTIONS if a in wanted]


def grants(shares: dict[str, list[str]], owner: UUID, user_ids: list[UUID],
           actions: list[str]) -> dict[str, list[str]]:
    """The users whose actions change, with their whole new list (the owner needs none)."""
    out: dict[str, list[str]] = {}
    for uid in user_ids:
        if uid == owner:
            continue
        current = shares.get(str(uid), [])
        new = [a for a in ACTIONS if a in current or a in actions]
        if new != current:
            out[str(uid)] = new
    return out


def authorize(who: Principal, owner: UUID, shares: dict[str, list[str]], action: str | None,
              what: str) -> None:
    """NotFound when the caller may not see the entity, Forbidden when it may see but not do.

    ``action`` None is a read; ``"owner"`` is what only the owner (or an admin) may do.
    """
    if who.admin or who.user_id == owner:
        return
    granted = shares.get(str(who.user_id), [])
    if "c_list" not in granted:
        raise NotFound(f"{what} not found")
    if action is not None and action not in granted:
        raise Forbidden(f"not allowed to change this {what}")
