"""What Thing, Channel and User share, decided once here: enable, disable and status; share
(things and channels); a new name and metadata, new tags (things and users).

The events stay each aggregate's own: a class takes ``_enabled = enabled_event()`` in its
body, which makes a fresh ``@event("Enabled")`` there, so the library names the event class
after that aggregate (``Thing.Enabled``, topic ``domain.things:Thing.Enabled``). Stored
events keep their topics, the bus its subjects (``events.thing.enabled``) and the views
their handlers, which tell ``Thing.Enabled`` from ``Channel.Enabled``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.common import grants

ENABLED, DISABLED = "enabled", "disabled"


def status_of(enabled: bool) -> str:
    """The status an ``enabled`` flag is shown, stored and sent as: the one place it is decided."""
    return ENABLED if enabled else DISABLED


def _set_enabled(self: Any) -> None:
    self.enabled = True


def _set_disabled(self: Any) -> None:
    self.enabled = False


def _add_grants(self: Any, grants: dict[str, list[str]]) -> None:
    self.shares = {**self.shares, **grants}


def _set_profile(self: Any, name: str, metadata: dict[str, Any]) -> None:
    self.name, self.metadata = name, metadata


def _set_tags(self: Any, tags: list[str]) -> None:
    self.tags = tags


def enabled_event() -> Any:
    """A fresh ``@event("Enabled")`` for the aggregate class whose body takes it."""
    return event("Enabled")(_set_enabled)


def disabled_event() -> Any:
    """A fresh ``@event("Disabled")`` for the aggregate class whose body takes it."""
    return event("Disabled")(_set_disabled)


def shared_event() -> Any:
    """A fresh ``@event("Shared")`` for the aggregate class whose body takes it."""
    return event("Shared")(_add_grants)


def updated_event() -> Any:
    """A fresh ``@event("Updated")`` (name and metadata) for the aggregate class whose body takes it."""
    return event("Updated")(_set_profile)


def tags_updated_event() -> Any:
    """A fresh ``@event("TagsUpdated")`` for the aggregate class whose body takes it."""
    return event("TagsUpdated")(_set_tags)


class Switchable:
    """Enable and disable: repeating one is a no-op, not an error (and records nothing)."""

    enabled: bool

    def _enabled(self) -> None: ...  # each aggregate's own event: ``enabled_event()``

    def _disabled(self) -> None: ...  # each aggregate's own event: ``disabled_event()``

    def enable(self) -> None:
        if not self.enabled:
            self._enabled()

    def disable(self) -> None:
        if self.enabled:
            self._disabled()

    @property
    def status(self) -> str:
        return status_of(self.enabled)


class Sharing:
    """Grants of actions to other users; the owner needs none."""

    owner: UUID
    shares: dict[str, list[str]]

    def _shared(self, grants: dict[str, list[str]]) -> None: ...  # ``shared_event()``

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

    def _updated(self, name: str, metadata: dict[str, Any]) -> None: ...  # ``updated_event()``

    def _tags_updated(self, tags: list[str]) -> None: ...  # ``tags_updated_event()``

    def update(self, name: str | None, metadata: dict[str, Any] | None) -> None:
        name = self.name if name is None else name
        metadata = self.metadata if metadata is None else metadata
        if (name, metadata) != (self.name, self.metadata):
            self._updated(name=name, metadata=metadata)

    def update_tags(self, tags: list[str]) -> None:
        if tags != self.tags:
            self._tags_updated(tags=tags)
