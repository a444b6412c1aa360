"""The short memory of active users that spares a store read per authenticated request."""

from __future__ import annotations

import uuid

from command_api.revocation import ActiveUsers


def test_seen_users_are_trusted_for_the_ttl_and_forgotten_on_demand() -> None:
    uid = uuid.uuid4()
    active = ActiveUsers(ttl=60)
    assert not active.fresh(uid)
    active.seen(uid)
    assert active.fresh(uid)
    active.forget(uid)
    assert not active.fresh(uid)
    expired = ActiveUsers(ttl=0)
    expired.seen(uid)
    assert not expired.fresh(uid)


def test_the_memory_is_bounded() -> None:
    active = ActiveUsers(ttl=60, most=3)
    ids = [uuid.uuid4() for _ in range(4)]
    for uid in ids:
        active.seen(uid)
    assert active.fresh(ids[3]) and not active.fresh(ids[0])


def test_a_fresh_memory_holds_the_token_epoch() -> None:
    uid = uuid.uuid4()
    active = ActiveUsers(ttl=60)
    active.seen(uid, 2)
    assert active.fresh(uid, 2) and active.fresh(uid)
    assert not active.fresh(uid, 1)  # an older token is checked against the store again
