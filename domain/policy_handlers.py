"""The use cases of policies: a channel's owner assigns users to it, and revokes them.

Apart from ``policies.py`` (the ``Policy`` aggregate and ``channel_grants``), which the
channels' own rules import: these handlers need the ``Channel`` in turn.
"""

from __future__ import annotations

from uuid import UUID

from domain.attempt import Attempt, Core
from domain.base import Entity, Meta
from domain.channels import Channel
from domain.commands import AssignPolicy, RevokePolicy
from domain.common import NO_META, Done, Principal, authorize, check_uuid
from domain.errors import Invalid, NotFound
from domain.policies import Policy, channel_grants, check_policy_actions, policy_id
from domain.users import User


def _owned_channel(at: Attempt, who: Principal, channel_id: UUID) -> Channel:
    """A channel whose policies the caller may change: only its owner (or an admin) may."""
    channel = at.get_or_none(Channel, channel_id)
    if channel is None:
        raise NotFound("channel not found")
    authorize(who, channel.owner, channel_grants(at, who, channel), "owner", "channel")
    return channel


class PolicyHandlers:
    """The use cases of policies."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def assign_policy(self, who: Principal, cmd: AssignPolicy, meta: Meta = NO_META) -> Done:
        """Give ``subject`` the ``actions`` on the channel ``object_id``, added to what it had."""
        uid = check_uuid(cmd.subject, "subject")
        cid = check_uuid(cmd.object_id, "object")
        acts = check_policy_actions(cmd.actions)

        def build(at: Attempt) -> tuple[Policy, list[Entity]]:
            channel = _owned_channel(at, who, cid)
            if uid == channel.owner:
                raise Invalid("the owner of a channel needs no policy on it")
            if at.get_or_none(User, uid) is None:
                raise NotFound("user not found")
            policy = at.get_or_none(Policy, policy_id(uid, cid)) or Policy(subject=uid, object_id=cid)
            policy.assign(who.user_id, acts)
            return policy, [policy]

        return self.core.commit(build, meta)

    def revoke_policy(self, who: Principal, cmd: RevokePolicy, meta: Meta = NO_META) -> Done:
        uid = check_uuid(cmd.subject, "subject")
        cid = check_uuid(cmd.object_id, "object")

        def build(at: Attempt) -> tuple[Policy, list[Entity]]:
            _owned_channel(at, who, cid)
            policy = at.get_or_none(Policy, policy_id(uid, cid))
            if policy is None or not policy.active:
                raise NotFound("policy not found")
            policy.revoke()
            return policy, [policy]

        return self.core.commit(build, meta)
