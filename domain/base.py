"""What every aggregate shares: deterministic ids, audit metadata, unique-value claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from hashlib import sha1
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

NAMESPACE = uuid5(NAMESPACE_URL, "urn:smq-es")
_NAMESPACE_BYTES = NAMESPACE.bytes
# uuid5's variant (RFC 4122) and version (5) bits, applied to the first 16 bytes of the SHA-1.
_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_MARK = (0x8000 << 48) | (5 << 76)


def derived_id(*parts: object) -> UUID:
    """A stable id from its parts, so that a retry or a second writer finds the same aggregate:
    ``uuid5(NAMESPACE, "/".join(parts))``, computed here in one step (the library function
    rebuilds the namespace's bytes and the UUID from bytes each call; tests/unit/test_fresh.py
    holds them equal)."""
    name = "/".join([str(p) for p in parts]).encode()
    digest = sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    return UUID(int=int.from_bytes(digest[:16]) & _KEEP | _MARK)


@dataclass(frozen=True)
class Meta:
    """Who caused a change and the request or step it came from (the audit trail)."""

    actor: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"actor": self.actor, "correlation_id": self.correlation_id,
                "causation_id": self.causation_id}


SYSTEM = Meta(actor=None, correlation_id=None, causation_id="system")


class Entity(Aggregate):
    """Base aggregate: its pending events get the command's audit metadata before saving."""

    def stamp(self, meta: Meta) -> None:
        for ev in self._pending_events:
            if "_meta" not in vars(ev):
                object.__setattr__(ev, "_meta", meta.as_dict())

    @property
    def created_at(self) -> datetime:
        return self.created_on

    @property
    def updated_at(self) -> datetime:
        return self.modified_on


class UniqueKey(Entity):
    """A claim on a unique value (an identity, a secret's hash, an external id).

    Its id is derived from the kind and the value, so two writers claiming the same
    value clash on the same aggregate version and one of them saves nothing.
    """

    @staticmethod
    def create_id(kind: str, key: str, holder: UUID) -> UUID:
        return derived_id("unique", kind, key)

    @event("Claimed")
    def __init__(self, kind: str, key: str, holder: UUID) -> None:
        self.kind, self.key, self.holder = kind, key, holder
        self.held = True

    def claim(self, holder: UUID) -> None:
        self._reclaimed(holder=holder)

    @event("Reclaimed")
    def _reclaimed(self, holder: UUID) -> None:
        self.holder, self.held = holder, True

    def release(self) -> None:
        if self.held:
            self._released()

    @event("Released")
    def _released(self) -> None:
        self.held = False


def key_id(kind: str, key: str) -> UUID:
    return derived_id("unique", kind, key)


def clean_metadata(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
