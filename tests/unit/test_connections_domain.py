"""Connections and policies on the in-memory store: unique pairs, all-or-nothing bulks, no-op
repeats, and who may connect what."""

from __future__ import annotations

import uuid

import pytest

from domain.app import Principal, Smq
from domain.connections import Connection, connection_id
from domain.errors import Forbidden, Invalid, NotFound
from domain.policies import Policy, policy_id


@pytest.fixture
def app() -> Smq:
    return Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def events_of(app: Smq) -> list[str]:
    return [n.topic.split(":")[1] for n in app.recorder.select_notifications(1, 10_000)]


def user(app: Smq) -> Principal:
    done = app.create_user(f"u{uuid.uuid4().hex[:8]}@example.com", "12345678")
    return Principal(done.result.id)


def things(app: Smq, who: Principal, n: int) -> list[uuid.UUID]:
    return [t.id for t in app.create_things(who, [{"name": f"t{i}"} for i in range(n)]).result]


def channels(app: Smq, who: Principal, n: int) -> list[uuid.UUID]:
    return [c.id for c in app.create_channels(who, [{"name": f"c{i}"} for i in range(n)]).result]


def connected(app: Smq, cid: uuid.UUID, tid: uuid.UUID) -> bool:
    conn = app.get_or_none(Connection, connection_id(cid, tid))
    return conn is not None and conn.connected


def test_connecting_twice_records_once_and_defaults_the_actions(app: Smq) -> None:
    owner = user(app)
    (tid,), (cid,) = things(app, owner, 1), channels(app, owner, 1)
    before = len(events_of(app))
    first = app.connect(owner, [str(cid)], [str(tid)])
    conn = first.result[0]
    assert conn.actions == ["m_write", "m_read"] and conn.owner == owner.user_id
    assert conn.id == connection_id(cid, tid)
    assert events_of(app)[before:] == ["Connection.Created", "Connection.Connected"]
    again = app.connect(owner, [cid], [tid], ["m_read", "m_write"])
    assert again.position is None and len(events_of(app)) == before + 2
    assert again.result[0].created_at == conn.created_at
    # Other actions replace the old ones.
    app.connect(owner, [cid], [tid], ["m_read"])
    assert app.get_or_none(Connection, conn.id).actions == ["m_read"]


def test_disconnect_then_404_then_reconnect(app: Smq) -> None:
    owner = user(app)
    (tid,), (cid,) = things(app, owner, 1), channels(app, owner, 1)
    app.connect(owner, [cid], [tid])
    app.disconnect(owner, [cid], [tid])
    assert not connected(app, cid, tid)
    with pytest.raises(NotFound, match="not connected"):
        app.disconnect(owner, [cid], [tid])
    app.connect(owner, [cid], [tid])
    assert connected(app, cid, tid)
    assert events_of(app)[-3:] == ["Connection.Connected", "Connection.Disconnected", "Connection.Connected"]


def test_bulk_is_the_whole_cross_product_or_nothing(app: Smq) -> None:
    owner = user(app)
    tids, cids = things(app, owner, 3), channels(app, owner, 2)
    before = len(events_of(app))
    for bad_c, bad_t, error in [([*cids, uuid.uuid4()], tids, NotFound), (cids, [*tids, uuid.uuid4()], NotFound),
                                (cids, ["nope"], Invalid), ([], tids, Invalid), (cids, tids[:1] * 0, Invalid)]:
        with pytest.raises(error):
            app.connect(owner, bad_c, bad_t)
    with pytest.raises(Invalid, match="unknown action"):
        app.connect(owner, cids, tids, ["c_list"])
    assert len(events_of(app)) == before
    done = app.connect(owner, cids, tids)
    assert len(done.result) == 6 and all(connected(app, c, t) for c in cids for t in tids)
    # A disconnect naming one pair that is not connected disconnects nothing.
    other = things(app, owner, 1)
    with pytest.raises(NotFound):
        app.disconnect(owner, cids, [*tids, *other])
    assert all(connected(app, c, t) for c in cids for t in tids)
    app.disconnect(owner, cids, tids)
    assert not any(connected(app, c, t) for c in cids for t in tids)


def test_building_blocks_change_without_saving(app: Smq) -> None:
    owner = user(app)
    (tid,), cids = things(app, owner, 1), channels(app, owner, 2)
    before = len(events_of(app))
    changed = app.connect_changes(owner, cids, [tid], None)
    assert len(changed) == 2 and all(isinstance(c, Connection) and c.connected for c in changed)
    assert len(events_of(app)) == before and not connected(app, cids[0], tid)
    app.save(*changed)
    assert connected(app, cids[0], tid) and app.connect_changes(owner, cids, [tid], None) == []
    assert app.connect_changes(owner, [], [tid], None) == []
    # Missing pairs are skipped when asked, refused otherwise.
    (other,) = things(app, owner, 1)
    assert len(app.disconnect_changes(owner, cids, [tid, other], True)) == 2
    with pytest.raises(NotFound):
        app.disconnect_changes(owner, cids, [tid, other], False)


def test_who_may_connect(app: Smq) -> None:
    owner, guest, stranger = user(app), user(app), user(app)
    (cid,) = channels(app, owner, 1)
    (mine,), (guests,) = things(app, owner, 1), things(app, guest, 1)
    # A channel the caller cannot see is 404, a thing too.
    with pytest.raises(NotFound, match="channel not found"):
        app.connect(guest, [cid], [guests])
    with pytest.raises(NotFound, match="thing not found"):
        app.connect(owner, [cid], [guests])
    # Seeing the channel is not enough: 403.
    app.assign_policy(owner, guest.user_id, cid, ["c_list"])
    with pytest.raises(Forbidden):
        app.connect(guest, [cid], [guests])
    app.assign_policy(owner, guest.user_id, cid, ["g_add"])
    policy = app.get_or_none(Policy, policy_id(guest.user_id, cid))
    assert policy.actions == ["c_list", "g_add"]
    app.connect(guest, [cid], [guests])
    assert connected(app, cid, guests)
    # g_add is for things the assignee may see: not the owner's.
    with pytest.raises(NotFound, match="thing not found"):
        app.connect(guest, [cid], [mine])
    # Only the owner changes policies; the assignee sees the channel, so that is 403.
    with pytest.raises(Forbidden):
        app.assign_policy(guest, stranger.user_id, cid, ["c_list"])
    with pytest.raises(NotFound):
        app.assign_policy(stranger, guest.user_id, cid, ["c_list"])
    with pytest.raises(Forbidden):
        app.update_channel(guest, cid, name="mine now")
    assert app.channel(guest, cid).id == cid
    # Revoking ends it.
    app.revoke_policy(owner, guest.user_id, cid)
    with pytest.raises(NotFound):
        app.connect(guest, [cid], [guests])
    with pytest.raises(NotFound, match="policy not found"):
        app.revoke_policy(owner, guest.user_id, cid)


def test_policy_rules(app: Smq) -> None:
    owner, guest = user(app), user(app)
    (cid,) = channels(app, owner, 1)
    with pytest.raises(Invalid):
        app.assign_policy(owner, guest.user_id, cid, ["fly"])
    with pytest.raises(Invalid):
        app.assign_policy(owner, owner.user_id, cid, ["c_list"])
    with pytest.raises(NotFound, match="user not found"):
        app.assign_policy(owner, uuid.uuid4(), cid, ["c_list"])
    first = app.assign_policy(owner, guest.user_id, cid, ["m_read"])
    assert first.result.actions == ["m_read"]
    assert app.assign_policy(owner, guest.user_id, cid, ["m_read"]).position is None
    assert app.assign_policy(owner, guest.user_id, cid, ["c_list"]).result.actions == ["c_list", "m_read"]
