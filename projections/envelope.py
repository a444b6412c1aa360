"""The bus format of an event: one JSON object per event, its position included."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.utils import resolve_topic

from projections.sealing import Sealer

# Fields that stay in the store (to rebuild aggregates) but never travel on the bus.
REDACTED = frozenset({"secret_hash"})
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def event_name(cls_path: str) -> tuple[str, str]:
    """The bus names (aggregate, event type) of an event class's path, e.g. ``("thing",
    "tags_updated")`` for ``Thing.TagsUpdated``: the subject ``events.thing.tags_updated``
    (a public contract: docs/events.md). The one place event names are made."""
    aggregate, _, event = cls_path.rpartition(".")
    return snake(aggregate.split(".")[-1]), snake(event)


def name_of(cls: type) -> tuple[str, str]:
    """The bus names of an event class (``Thing.TagsUpdated`` -> ``("thing", "tags_updated")``),
    so views key their handlers by the classes themselves: a renamed event fails at import."""
    return event_name(cls.__qualname__)


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


@functools.lru_cache(maxsize=1024)
def _kind(topic: str) -> tuple[str, str, type, int]:
    """The bus names, the class and its current version (``class_version``) of a stored event's
    topic (the same few topics each time)."""
    name, event = event_name(topic.split(":", 1)[1])  # e.g. "User.Created"
    cls = resolve_topic(topic)
    return name, event, cls, getattr(cls, "class_version", 1)


def upcast(topic: str, state: dict[str, Any]) -> dict[str, Any]:
    """The state of a stored event in its class's current version, as the library's mapper
    does it when it loads an aggregate (``class_version``, ``upcast_vN_vN+1``)."""
    _name, _event, cls, want = _kind(topic)
    have = state.pop("class_version", 1)
    while have < want:
        getattr(cls, f"upcast_v{have}_v{have + 1}")(state)
        have += 1
    return state


def from_stored(position: int, topic: str, originator_id: Any, version: int,
                state: dict[str, Any], sealer: Sealer | None = None) -> Envelope:
    """Build the envelope of a stored event from its decoded state, its credentials sealed
    with ``sealer`` (projections/sealing.py) as they travel on the bus. ``state`` is taken:
    what is left of it, in its order, is the envelope's data."""
    name, event, _cls, _want = _kind(topic)
    state = upcast(topic, state)
    occurred_at = state.pop("timestamp")
    meta = state.pop("_meta", None) or {}
    state.pop("originator_topic", None)
    for k in REDACTED:
        state.pop(k, None)
    aggregate_id = str(originator_id)
    data = state if sealer is None else sealer.seal_data(state, name, aggregate_id, version)
    return Envelope(
        position=position, aggregate=name, aggregate_id=aggregate_id,
        version=version, type=event, occurred_at=occurred_at,
        actor=meta.get("actor"), correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"), data=data,
    )


# Text that UTF-8 (a lone surrogate) or PostgreSQL (NUL) cannot hold. The API has never let
# it in since the text rule (domain.common), but an older version's store may hold some.
_UNHOLDABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _safe_value(value: Any) -> Any:
    if isinstance(value, str):
        return _UNHOLDABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_safe_value(k): _safe_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe_value(v) for v in value]
    return value


def safe(env: Envelope) -> Envelope:
    """``env`` with NUL and lone surrogates in its text replaced by U+FFFD (``env`` itself
    when it holds none): what the bus and the SQL views carry of an event whose text they
    cannot hold. The stored event stays as it is."""
    texts = (env.actor, env.correlation_id, env.causation_id)
    data = _safe_value(env.data)
    if data == env.data and not any(t is not None and _UNHOLDABLE.search(t) for t in texts):
        return env  # (U+FFFD never equals NUL or a surrogate: equal means nothing replaced)
    actor, correlation_id, causation_id = (None if t is None else _safe_value(t) for t in texts)
    return msgspec.structs.replace(env, data=data, actor=actor, correlation_id=correlation_id,
                                   causation_id=causation_id)


def encode(env: Envelope) -> bytes:
    try:
        return _encoder.encode(env)
    except UnicodeEncodeError:  # a lone surrogate, stored by an older version: not UTF-8
        return _encoder.encode(safe(env))


Kinds = frozenset[tuple[str, str]]  # events by their bus names (aggregate, event type)


def decode(raw: bytes, sealer: Sealer | None = None, opened: Kinds | None = None) -> Envelope:
    """An envelope from the bus; with ``sealer``, its sealed fields opened (``Unsealable``
    when one does not open: another key, or altered), only if it is one of the events
    ``opened`` names (None: every event)."""
    env = _decoder.decode(raw)
    if sealer is not None and (opened is None or (env.aggregate, env.type) in opened):
        env.data = sealer.open_data(env.data, env.aggregate, env.aggregate_id, env.version)
    return env


def sealed_read_by(views: Iterable[Any]) -> Kinds | None:
    """The events whose sealed fields ``views`` read, as their ``reads_sealed`` say (None,
    or a view without it: every event's). The projector opens only these: a unique claim's
    key, which no view reads, stays sealed."""
    kinds: set[tuple[str, str]] = set()
    for view in views:
        reads = getattr(view, "reads_sealed", None)
        if reads is None:
            return None
        kinds |= reads
    return frozenset(kinds)
