"""What Thing, Channel and User share, decided once here: enable, disable and status; share
and removal (things and channels); a new name and metadata, new tags (things and users).

The events stay each aggregate's own: a class declares them in its body with the state
change shared here (``_enabled = event("Enabled")(set_enabled)``), so the library defines the
event class on that aggregate (``Thing.Enabled``, topic ``domain.things:Thing.Enabled``).
Stored events keep their topics, the bus its subjects (``events.thing.enabled``) and the views
their handlers, which tell ``Thing.Enabled`` from ``Channel.Enabled``. (An ``@event`` written
here, on a shared base, would define one ``Switchable.Enabled`` for all three.)
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.common import grants

ENABLED, DISABLED = "enabled", "disabled"


def status_of(enabled: bool) -> str:
    """The status an ``enabled`` flag is shown, stored and sent as: the one place it is decided."""
    return ENABLED if enabled else DISABLED


# The state changes of the shared events, applied to the aggregate (also when it is rebuilt).
def set_enabled(self: Any) -> None:
    self.enabled = True


def set_disabled(self: Any) -> None:
    self.enabled = False


def set_removed(self: Any) -> None:
    self.removed = True


def add_grants(self: Any, grants: dict[str, list[str]]) -> None:
    self.shares = {**self.shares, **grants}


def set_profile(self: Any, name: str, metadata: dict[str, Any]) -> None:
    self.name, self.metadata = name, metadata


def set_tags(self: Any, tags: list[str]) -> None:
    self.tags = tags


class Switchable:
    """Enable and disable: repeating one is a no-op, not an error (and records nothing)."""

    enabled: bool

    # The aggregate's own events: ``event("Enabled")(set_enabled)``, ``event("Disabled")(...)``.
    def _enabled(self) -> None: ...

    def _disabled(self) -> None: ...

    def enable(self) -> None:
        if not self.enabled:
            self._enabled()

    def disable(self) -> None:
        if self.enabled:
            self._disabled()

    @property
    def status(self) -> str:
        return status_of(self.enabled)


class Removable:
    """Removed: gone from the write model's reads (``Attempt.get_or_none``) and from every view,
    list, count and lookup; only its history (its events, ``Created`` to ``Removed``) keeps it.
    A failed provisioning's compensation removes what it made; no route removes (upstream's
    API has no DELETE of things or channels, only disable)."""

    removed: bool = False  # a class default: aggregates stored before removal existed have it

    def _removed(self) -> None: ...  # event("Removed")(set_removed)

    def remove(self) -> None:
        if not self.removed:
            self._removed()


class Sharing:
    """Grants of actions to other users; the owner needs none."""

    owner: UUID
    shares: dict[str, list[str]]

    def _shared(self, grants: dict[str, list[str]]) -> None: ...  # event("Shared")(add_grants)

    def share(self, user_ids: list[UUID], actions: list[str]) -> None:
        changed = grants(self.shares, self.owner, user_ids, actions)
        if changed:
            self._shared(grants=changed)


class Profiled:
    """A name, metadata and tags, changed only where they differ (an update that changes
    nothing records nothing)."""

    name: str
    metadata: dict[str, Any]
    tags: list[str]

    # The aggregate's own events: ``event("Updated")(set_profile)``, ``event("TagsUpdated")(set_tags)``.
    def _updated(self, name: str, metadata: dict[str, Any]) -> None: ...

    def _tags_updated(self, tags: list[str]) -> None: ...

    def update(self, name: str | None, metadata: dict[str, Any] | None) -> None:
        name = self.name if name is None else name
        metadata = self.metadata if metadata is None else metadata
        if (name, metadata) != (self.name, self.metadata):
            self._updated(name=name, metadata=metadata)

    def update_tags(self, tags: list[str]) -> None:
        if tags != self.tags:
            self._tags_updated(tags=tags)
