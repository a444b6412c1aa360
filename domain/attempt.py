"""One try of a command, and the application's core that runs the tries.

A command decides in a ``build(attempt)`` function: it reads the aggregates it needs through
the ``Attempt``, changes them, and returns its result and the aggregates it changed. ``Core``
runs ``build`` with a fresh attempt each try and saves what changed in one transaction; a
clash with another writer starts the next try, which reads everything again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.base import Entity, Meta, UniqueKey, key_id
from domain.common import Done
from domain.errors import Conflict
from domain.fresh import fresh
from domain.traits import Removable

T = TypeVar("T")
A = TypeVar("A", bound=Entity)
RETRIES = 8
Load = Callable[[UUID], Entity | None]  # an aggregate by id from the store, None if it has none
Save = Callable[..., list[Any]]  # store events in one transaction; their recordings


@dataclass
class Attempt:
    """The state of one try of a command: whether it is a retry after a clash, and what it has
    made so far; the reads of the decision go through it.

    ``retry`` False is the optimistic first try: new aggregates and claims are made without
    reading first; the store refuses a clash, and the retry reads and decides. ``made`` holds
    the aggregates made or changed earlier in a command of several steps (one transaction),
    not yet saved; reads see them first."""

    load: Load
    retry: bool = True
    made: dict[UUID, Entity] | None = None

    @property
    def optimistic(self) -> bool:
        """True on a command's first try: assume no clash; the store checks anyway."""
        return not self.retry

    def get_or_none(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate of this id and class, or None; a removed one (``traits.Removable``) is
        None too: nothing finds it, only its history keeps it."""
        agg = self._any(aggregate_id)
        if isinstance(agg, Removable) and agg.removed:
            return None
        return agg if isinstance(agg, cls) else None

    def _any(self, aggregate_id: UUID) -> Entity | None:
        made = self.made
        if made is not None and aggregate_id in made:  # made earlier in this same command
            return made[aggregate_id]
        return self.load(aggregate_id)

    def absent(self, aggregate_id: UUID) -> bool:
        """Whether no aggregate has this id, removed or not (assumed on a first try; the store
        checks)."""
        if self.made is not None and aggregate_id in self.made:
            return False
        return self.optimistic or self._any(aggregate_id) is None

    def made_new(self, aggregate_id: UUID) -> bool:
        """Whether this command created the aggregate (so nothing refers to it yet)."""
        agg = (self.made or {}).get(aggregate_id)
        pending = agg._pending_events if agg is not None else []  # noqa: SLF001
        return bool(pending) and pending[0].originator_version == 1

    def claim(self, kind: str, key: str, holder: UUID, taken: str) -> UniqueKey:
        """Claim a unique value for ``holder`` or raise ``Conflict(taken)``."""
        mine = self.made.get(key_id(kind, key)) if self.made is not None else None
        if mine is not None:  # claimed earlier in this command
            if not isinstance(mine, UniqueKey) or (mine.held and mine.holder != holder):
                raise Conflict(taken)
            return mine
        if self.optimistic:
            return fresh(UniqueKey, kind=kind, key=key, holder=holder)
        existing = self.get_or_none(UniqueKey, key_id(kind, key))
        if existing is None:
            return fresh(UniqueKey, kind=kind, key=key, holder=holder)
        if existing.held and existing.holder != holder:
            raise Conflict(taken)
        if not existing.held:
            existing.claim(holder)
        return existing

    def holder_of(self, kind: str, key: str) -> UUID | None:
        uk = self.get_or_none(UniqueKey, key_id(kind, key))
        return uk.holder if uk is not None and uk.held else None


Build = Callable[[Attempt], tuple[T, Sequence[Entity]]]


class Core:
    """What the use cases of every resource build on: reads of the write model and ``commit``."""

    def __init__(self, load: Load, save: Save) -> None:
        self.load, self.save = load, save

    def reads(self) -> Attempt:
        """An attempt that reads everything, for a query or a step outside ``commit``."""
        return Attempt(self.load)

    def commit(self, build: Build[T], meta: Meta) -> Done:
        """Run ``build`` and save what it changed in one transaction, retrying on a clash.

        A clash means another writer changed one of the aggregates (or claimed the
        same unique value) first; the retry reloads them, so a taken value now
        raises ``Conflict`` from the domain rather than being retried forever.
        """
        for attempt in range(RETRIES):
            result, aggregates = build(Attempt(self.load, retry=attempt > 0))
            changed = [a for a in aggregates if a._pending_events]  # noqa: SLF001
            for agg in changed:
                agg.stamp(meta)
            if not changed:
                return Done(result, None)
            events = [e for agg in changed for e in agg.collect_events()]
            try:
                recordings = self.save(*events)
            except IntegrityError:
                continue
            return Done(result, max(r.notification.id for r in recordings))
        raise Conflict("the entity was changed concurrently; try again")
