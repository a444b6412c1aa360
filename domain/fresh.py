"""A new aggregate made directly: what the library's ``cls(**kwargs)`` makes, for less CPU.

Creating an aggregate through eventsourcing (``MetaAggregate.__call__``, ``BaseAggregate._create``,
``CanInitAggregate.mutate``) inspects the ``__init__`` signature, filters and copies the arguments
a few times and builds the created event through its dataclass ``__init__``, for every
aggregate: a third of a bulk create's CPU. ``fresh`` does the same steps with what they find
worked out once per class (from the library's own records of the class): the created event, its
fields in order, the ``__init__`` body and its defaults. It gives the same aggregate (``id``,
``version`` 1, ``created_on`` = ``modified_on`` = the event's timestamp, the attributes its
``__init__`` sets) holding the same pending event (same class, same fields in the same order,
so the same stored event). A class the shortcut does not cover (an explicit ``TOPIC``, an
``apply`` or ``__post_init__`` of its own, a created event whose fields are not the
``__init__``'s) is made by the library. tests/unit/test_fresh.py holds them equal.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import (
    BaseAggregate,
    CanMutateAggregate,
    DomainEvent,
    _annotations_mention_id,
    _create_id_param_names,
    _created_event_classes,
    _init_mentions_id,
)
from eventsourcing.utils import get_topic

A = TypeVar("A", bound=BaseAggregate[Any])
_BASE = ("originator_id", "originator_version", "timestamp", "originator_topic")


@dataclass(frozen=True)
class Recipe:
    """How the library makes version 1 of one class, worked out once."""

    event: type[Any]  # the created event class
    topic: str  # the aggregate's topic (the event's ``originator_topic``)
    fields: tuple[str, ...]  # the event's own fields, after the four of every created event
    params: frozenset[str]  # the ``__init__``'s arguments (``id`` aside)
    required: frozenset[str]  # those without a default
    defaults: dict[str, Any]  # the others' defaults
    init: Callable[..., None]  # the ``__init__`` body (the function the library calls)
    init_fields: tuple[str, ...]  # the event's fields the ``__init__`` takes
    init_id: bool  # whether the ``__init__`` takes ``id``
    takes_id: bool  # whether the class is given an ``id`` (else ``create_id`` makes it)
    id_params: tuple[str, ...]  # the arguments ``create_id`` is given when no id is


_recipes: dict[type[Any], Recipe | None] = {}


def recipe(cls: type[Any]) -> Recipe | None:
    """The recipe of ``cls``, or None if the library must make it."""
    if cls in _recipes:
        return _recipes[cls]
    found = _recipes[cls] = _work_out(cls)
    return found


def _work_out(cls: type[Any]) -> Recipe | None:
    created = _created_event_classes.get(cls, [])
    if len(created) != 1 or getattr(cls, "TOPIC", None):
        return None
    event: Any = created[0]
    if getattr(event, "TOPIC", None) or event.apply is not CanMutateAggregate.apply \
            or event.__post_init__ is not DomainEvent.__post_init__:
        return None
    names = tuple(f.name for f in dataclasses.fields(event))
    init = cls.__init__  # on the class: the decorated body itself, as the library's mutate finds it
    signature = inspect.signature(init).parameters
    params = {n: p for n, p in signature.items() if n not in ("self", "id")}
    if any(p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params.values()) \
            or names[:4] != _BASE or set(names[4:]) != set(params):
        return None
    empty = inspect.Parameter.empty
    return Recipe(event=event, topic=get_topic(cls), fields=names[4:], params=frozenset(params),
                  required=frozenset(n for n, p in params.items() if p.default is empty),
                  defaults={n: p.default for n, p in params.items() if p.default is not empty},
                  init=init, init_fields=tuple(n for n in names if n in signature),
                  init_id=cls in _init_mentions_id,
                  takes_id=cls in _init_mentions_id or cls in _annotations_mention_id,
                  id_params=tuple(_create_id_param_names[cls]))


def fresh(cls: type[A], id: UUID | None = None, **kwargs: Any) -> A:  # noqa: A002
    """A new ``cls``, version 1, its created event pending: what ``cls(id=id, **kwargs)`` makes
    (without ``id``, ``cls.create_id`` gives it, as in the library)."""
    r = recipe(cls)
    if r is None:
        make: Any = cls
        return make(**kwargs) if id is None else make(id=id, **kwargs)
    if not r.required <= kwargs.keys() <= r.params:
        raise TypeError(f"{cls.__name__}: expected {sorted(r.params)}, got {sorted(kwargs)}")
    if id is not None and not r.takes_id:
        raise TypeError(f"{cls.__name__} takes no id: its create_id makes it")
    if id is None:
        id = cls.create_id(**{n: kwargs[n] for n in r.id_params if n in kwargs})  # noqa: A001
    if not isinstance(id, UUID):
        raise TypeError(f"{cls.__name__} was given a non-UUID id: {id!r}")
    timestamp = r.event.create_timestamp()
    state: dict[str, Any] = {"originator_id": id, "originator_version": cls.INITIAL_VERSION,
                             "timestamp": timestamp, "originator_topic": r.topic}
    defaults = r.defaults
    for name in r.fields:
        state[name] = kwargs[name] if name in kwargs else defaults[name]
    event = object.__new__(r.event)
    object.__setattr__(event, "__dict__", state)
    agg = cls.__new__(cls)
    agg.__base_init__(id, cls.INITIAL_VERSION, timestamp)
    init_kwargs = {name: state[name] for name in r.init_fields}
    if r.init_id:
        init_kwargs["id"] = id
    r.init(agg, **init_kwargs)
    agg.pending_events.append(event)
    return agg
