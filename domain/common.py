"""What the use cases of every resource share: the caller, a command's outcome, field rules
and the access rule for owned, shareable entities."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.base import Meta
from domain.errors import Forbidden, Invalid, NotFound

NO_META = Meta()  # a command without audit metadata (tests, scripts)
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 16
MAX_BULK = 1000
# c_list lets a user see an entity; c_update and c_delete (enable, disable) imply c_list,
# so that nobody may change what they cannot see.
ACTIONS = ("c_list", "c_update", "c_delete")

# The text rule: every string that enters the store is Unicode that UTF-8 and PostgreSQL can
# hold (no lone surrogate, no NUL) and has no control character (Unicode category Cc), except
# that a document (a PEM certificate or key, a bootstrap config's content) keeps its tabs and
# line breaks. The API applies it to every decoded body (``check_strings``); the use cases
# apply it to the fields they take (``check_text``, ``check_metadata``), so a direct call
# stores nothing else either.
_NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_DOCUMENT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# The fields of a body whose strings are documents (bootstrap configs, their certificates).
DOCUMENT_FIELDS = frozenset({"content", "client_cert", "client_key", "ca_cert"})


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
    check_strings(metadata, "metadata")
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


def text_fault(value: str, document: bool = False) -> str | None:
    """Why ``value`` breaks the text rule, or None when it keeps it."""
    found = (_NOT_DOCUMENT if document else _NOT_TEXT).search(value)
    if found is None:
        return None
    if "\ud800" <= found.group() <= "\udfff":
        return "must be valid UTF-8 text"
    return "must not contain control characters"


def check_text(value: Any, what: str, limit: int = 1024, document: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string")
    if len(value) > limit:
        raise Invalid(f"{what} is longer than {limit} characters")
    fault = text_fault(value, document)
    if fault is not None:
        raise Invalid(f"{what} {fault}")
    return value


def _child(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = key if len(key) <= 64 else key[:61] + "..."
    return f"{path}.{key}" if path else key


def check_strings(value: Any, path: str = "", documents: frozenset[str] = DOCUMENT_FIELDS) -> None:
    """Every string in ``value`` (dict keys too, at any depth, msgspec Structs by their wire
    names) keeps the text rule; ``Invalid`` names one that does not (``metadata.a[2]``).
    A top-level member named in ``documents`` is a document. ``value`` must be of bounded
    depth (the API bounds a body's nesting before it is decoded)."""
    stack = deque([(path, value, False)])  # breadth first: the shallowest fault is named
    while stack:
        where, item, document = stack.popleft()
        if isinstance(item, str):
            fault = text_fault(item, document)
            if fault is not None:
                raise Invalid(f"{where or 'the body'} {fault}")
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str):
                    fault = text_fault(key)
                    if fault is not None:
                        raise Invalid(f"a key of {where or 'the body'} {fault}")
                    stack.append((_child(where, key), sub, where == "" and key in documents))
        elif isinstance(item, (list, tuple)):
            stack.extend((_child(where, i), sub, False) for i, sub in enumerate(item))
        elif hasattr(item, "__struct_fields__"):
            stack.extend((_child(where, name), getattr(item, attr), where == "" and name in documents)
                         for attr, name in zip(item.__struct_fields__, item.__struct_encode_fields__,
                                               strict=True))


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
