"""Policies: a channel's owner assigns another user to the channel with actions.

A policy is an aggregate whose id is derived from (subject, channel), so a user has at most
one policy on a channel by construction. It is what the write model consults to decide
whether a user who does not own a channel may see it (``c_list``) or connect things to it
(``g_add``); no view is ever read for that.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import event

from domain.attempt import Attempt
from domain.base import Entity, derived_id
from domain.common import Principal
from domain.errors import Invalid

# c_list lets the user see the channel, g_add connect its things to it (and implies c_list,
# since nobody may act on what it cannot see), m_read/m_write are for its messages.
POLICY_ACTIONS = ("c_list", "g_add", "m_read", "m_write")


def policy_id(subject: UUID, object_id: UUID) -> UUID:
    return derived_id("policy", object_id, subject)


def check_policy_actions(actions: Any) -> list[str]:
    """The actions of an assignment, in canonical order, completed with what they imply."""
    if not isinstance(actions, list) or not actions:
        raise Invalid("actions must be a non-empty list")
    bad = [a for a in actions if a not in POLICY_ACTIONS]
    if bad:
        raise Invalid(f"unknown action {bad[0]!r}; expected some of {', '.join(POLICY_ACTIONS)}")
    wanted = {*actions, *(["c_list"] if "g_add" in actions else [])}
    return [a for a in POLICY_ACTIONS if a in wanted]


class Policy(Entity):
    """A user's actions on a channel that it does not own."""

    @staticmethod
    def create_id(subject: UUID, object_id: UUID) -> UUID:
        return policy_id(subject, object_id)

    @event("Created")
    def __init__(self, subject: UUID, object_id: UUID) -> None:
        self.subject, self.object_id = subject, object_id
        self.owner: UUID | None = None
        self.actions: list[str] = []
        self.active = False

    def assign(self, owner: UUID, actions: list[str]) -> None:
        """Add ``actions`` to what the subject may do; assigning what it has records nothing."""
        merged = [a for a in POLICY_ACTIONS if a in actions or (self.active and a in self.actions)]
        if not self.active or merged != self.actions:
            self._assigned(subject=self.subject, object_id=self.object_id, owner=owner, actions=merged)

    @event("Assigned")
    def _assigned(self, subject: UUID, object_id: UUID, owner: UUID, actions: list[str]) -> None:
        self.owner, self.actions, self.active = owner, actions, True

    def revoke(self) -> None:
        if self.active:
            self._revoked(subject=self.subject, object_id=self.object_id)

    @event("Revoked")
    def _revoked(self, subject: UUID, object_id: UUID) -> None:
        self.actions, self.active = [], False


class Shareable(Protocol):
    @property
    def id(self) -> UUID: ...

    @property
    def owner(self) -> UUID: ...

    @property
    def shares(self) -> dict[str, list[str]]: ...


def channel_grants(at: Attempt, who: Principal, channel: Shareable) -> dict[str, list[str]]:
    """The channel's shares, with the caller's policy on it merged in (write model only)."""
    if who.admin or who.user_id == channel.owner:
        return channel.shares
    policy = at.get_or_none(Policy, policy_id(who.user_id, channel.id))
    if policy is None or not policy.active:
        return channel.shares
    uid = str(who.user_id)
    mine = [*channel.shares.get(uid, []), *(a for a in policy.actions if a not in channel.shares.get(uid, []))]
    return {**channel.shares, uid: mine}
