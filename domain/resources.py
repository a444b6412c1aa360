"""What the handlers of things and channels share, decided once: finding the one the caller may
act on, creating many at once (all or none, an error naming its item), enabling, disabling and
sharing, any change of one. Each resource gives its own class, words and checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta
from domain.common import Done, Principal, authorize, check_bulk, check_grant
from domain.errors import Conflict, DomainError, NotFound

E = TypeVar("E", bound=Entity)
S = TypeVar("S")

# The one the caller acts on, found and authorized for an action ("owner", "c_update", ...).
Find = Callable[[Attempt, str], Any]


def entity_for(at: Attempt, who: Principal, cls: type[E], entity_id: UUID, action: str | None,
               what: str, grants: Callable[[E], Any]) -> E:
    """The ``what`` of this id if the caller may do ``action`` on it (None: see it); 404 if it is
    not there, as if it were not there when the caller may not see it."""
    entity = at.get_or_none(cls, entity_id)
    if entity is None:
        raise NotFound(f"{what} not found")
    authorize(who, entity.owner, grants(entity), action, what)  # type: ignore[attr-defined]
    return entity


def _indexed(i: int, exc: DomainError, bulk: bool) -> DomainError:
    return type(exc)(f"item {i}: {exc.message}") if bulk else exc


def checked_items(items: Any, plural: str, check: Callable[[Any], S],
                  unique: Sequence[tuple[Callable[[S], object], str]], bulk: bool) -> list[S]:
    """Every item checked, none repeating a value that ``unique`` names (its key, and the
    conflict's message); an error of a bulk request names the 0-based index of its item."""
    specs: list[S] = []
    seen: list[set[object]] = [set() for _ in unique]
    for i, item in enumerate(check_bulk(items, plural)):
        try:
            spec = check(item)
            for (key, message), keys in zip(unique, seen, strict=True):
                if key(spec) in keys:
                    raise Conflict(message)
        except DomainError as exc:
            raise _indexed(i, exc, bulk) from None
        for (key, _), keys in zip(unique, seen, strict=True):
            keys.add(key(spec))
        specs.append(spec)
    return specs


def create_all(core: Core, specs: Sequence[S], bulk: bool, meta: Meta,
               make: Callable[[Attempt, S], tuple[E, Iterable[Entity]]]) -> Done:
    """Make one of each checked item in one save; ``make`` gives the new one and all it changed."""

    def build(at: Attempt) -> tuple[list[E], list[Entity]]:
        made: list[E] = []
        changed: list[Entity] = []
        for i, s in enumerate(specs):
            try:
                entity, changes = make(at, s)
            except DomainError as exc:
                raise _indexed(i, exc, bulk) from None
            made.append(entity)
            changed += changes
        return made, changed

    return core.commit(build, meta)


def change(core: Core, find: Find, action: str, apply: Callable[[Any], object], meta: Meta) -> Done:
    """Find the one the caller may do ``action`` on, ``apply`` the change to it, save it."""

    def build(at: Attempt) -> tuple[Any, list[Entity]]:
        entity = find(at, action)
        apply(entity)
        return entity, [entity]

    return core.commit(build, meta)


def set_enabled(core: Core, find: Find, enabled: bool, meta: Meta) -> Done:
    """Enable or disable (who may: ``c_delete``)."""
    return change(core, find, "c_delete", lambda e: e.enable() if enabled else e.disable(), meta)


def share(core: Core, find: Find, user_ids: Any, actions: Any, meta: Meta) -> Done:
    """Give users actions (added to what they have; who may: the owner)."""
    ids, acts = check_grant(user_ids, actions)
    return change(core, find, "owner", lambda e: e.share(ids, acts), meta)
