"""The bus format of an event: one JSON object per event, its position included."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.utils import resolve_topic

# Fields that stay in the store (to rebuild aggregates) but never travel on the bus.
REDACTED = frozenset({"secret_hash"})
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


class Envelope(msgspec.Struct, kw_only=True):
    """One event as subscribers see it on ``events.<aggregate>.<event>``."""

    position: int
    aggregate: str
    aggregate_id: str
    version: int
    type: str
    occurred_at: datetime
    actor: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any] = {}

    def subject(self, root: str) -> str:
        return f"{root}.{self.aggregate}.{self.type}"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def upcast(topic: str, state: dict[str, Any]) -> dict[str, Any]:
    """The state of a stored event in its class's current version, as the library's mapper
    does it when it loads an aggregate (``class_version``, ``upcast_vN_vN+1``)."""
    cls = resolve_topic(topic)
    have, want = state.pop("class_version", 1), getattr(cls, "class_version", 1)
    while have < want:
        getattr(cls, f"upcast_v{have}_v{have + 1}")(state)
        have += 1
    return state


def from_stored(position: int, topic: str, originator_id: Any, version: int,
                state: dict[str, Any]) -> Envelope:
    """Build the envelope of a stored event from its decoded state."""
    cls_path = topic.split(":", 1)[1]  # e.g. "User.Created"
    aggregate, _, event = cls_path.rpartition(".")
    state = upcast(topic, state)
    meta = state.get("_meta") or {}
    data = {k: v for k, v in state.items()
            if k not in REDACTED and k not in ("timestamp", "originator_topic", "_meta")}
    return Envelope(
        position=position, aggregate=snake(aggregate.split(".")[-1]), aggregate_id=str(originator_id),
        version=version, type=snake(event), occurred_at=state["timestamp"],
        actor=meta.get("actor"), correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"), data=data,
    )


def encode(env: Envelope) -> bytes:
    return _encoder.encode(env)


def decode(raw: bytes) -> Envelope:
    return _decoder.decode(raw)
