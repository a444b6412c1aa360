"""The backbone through the real PostgreSQL and NATS: every event reaches the bus once,
in store order, across relay restarts; a view applies each event once."""

from __future__ import annotations

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from domain.base import Meta
from infra.bus import MSG_ID, POSITION
from infra.settings import Settings
from projections.users import users_view
from service.container import Container
from tests.conftest import eventually
from workers.relay import Relay


async def _create_users(c: Container, n: int, tag: str) -> list[int]:
    positions = []
    for i in range(n):
        done = await c.store.command(c.store.app.create_user, f"{tag}{i}@example.com", "12345678",
                                     name=f"{tag}{i}", meta=Meta(actor=None, correlation_id=f"corr-{tag}{i}"))
        assert done.position is not None
        positions.append(done.position)
    return positions


async def _bus(c: Container, s: Settings) -> list[tuple[str, int, int, str]]:
    """Every message on the events stream: (subject, Nats-Msg-Id, position header, correlation)."""
    info = await c.js.stream_info(s.stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await c.js.get_msg(s.stream, seq)
        from projections.envelope import decode

        env = decode(msg.data)
        assert env.position == int(msg.headers[POSITION])
        out.append((msg.subject, int(msg.headers[MSG_ID]), env.position, env.correlation_id or ""))
    return out


async def test_relay_restarts_neither_lose_nor_double(container: Container, settings: Settings) -> None:
    c, s = container, settings
    # The admin seeded at start is already in the store: positions 1 and 2.
    first = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    assert await first.publish_once() > 0
    await _create_users(c, 3, "a")
    while await first.publish_once():
        pass
    # A relay whose checkpoint was lost starts over from 0: JetStream drops every repeat.
    again = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    again.position = 0
    await again.publish_once()
    # A new relay after a restart resumes from the last position on the stream itself.
    await _create_users(c, 2, "b")
    third = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    assert await third.published_position() == first.position
    third.position = await third.published_position()
    while await third.publish_once():
        pass

    top = await c.store.max_position()
    bus = await _bus(c, s)
    assert [m[1] for m in bus] == list(range(1, top + 1))  # every position once, in order
    assert all(m[1] == m[2] for m in bus)
    subjects = {m[0] for m in bus}
    assert f"{s.events_subject}.user.created" in subjects
    assert f"{s.events_subject}.unique_key.claimed" in subjects
    assert "corr-b1" in [m[3] for m in bus]


async def test_relay_refuses_to_publish_out_of_order(container: Container, settings: Settings) -> None:
    """A stale relay that skipped ahead is rejected by the stream rather than leaving a gap."""
    c, s = container, settings
    await _create_users(c, 2, "o")
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    await relay.publish_once()
    published = relay.position
    await _create_users(c, 1, "p")
    stale = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    stale.position = published + 1  # as if it believed one more event had gone out
    with pytest.raises(Exception, match="wrong last msg ID|last msg"):
        await stale.publish_once()
    bus = await _bus(c, s)
    assert [m[1] for m in bus] == list(range(1, published + 1))


async def test_view_applies_each_event_once(container: Container, settings: Settings) -> None:
    c, s = container, settings
    await _create_users(c, 3, "v")
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    while await relay.publish_once():
        pass
    envelopes = await c.store.read(0, 1000)
    batch = [(i + 1, env) for i, env in enumerate(envelopes)]
    view = users_view(c.pool)
    await view.reset(["users_view"])
    top = await view.apply(batch)
    assert top == envelopes[-1].position

    async def snapshot() -> list[tuple]:
        async with c.pool.connection() as conn:
            return await (await conn.execute(
                "select id, identity, name, status, updated_at from users_view order by created_pos")).fetchall()

    before = await snapshot()
    assert len(before) == 4  # the admin and three users
    # The same events delivered again (a redelivery after a crash before the ack): nothing changes.
    assert await view.apply(batch) == top
    assert await view.apply(batch[2:]) == top
    assert await snapshot() == before
    assert (await view.position())[0] == top


async def test_projector_consumer_resumes_after_its_stored_position(
        container: Container, settings: Settings) -> None:
    """The whole chain: command -> store -> relay -> JetStream -> durable consumer -> view."""
    from workers.projector import ViewRunner

    c, s = container, settings
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    view = users_view(c.pool)
    runner = ViewRunner(view, c.js, s.stream, s.events_subject)
    import asyncio

    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    try:
        positions = await _create_users(c, 2, "r")

        async def reached(target: int) -> bool:
            return (await view.position())[0] >= target

        await eventually(lambda: reached(positions[-1]), what="view reaches the last write")
        runner.stop()
        await asyncio.wait_for(tasks[1], 10)
        # Written while the projector is down; a new runner picks up exactly from there.
        more = await _create_users(c, 2, "s")
        runner = ViewRunner(view, c.js, s.stream, s.events_subject)
        tasks[1] = asyncio.create_task(runner.run())
        await eventually(lambda: reached(more[-1]), what="restarted view catches up")
        async with c.pool.connection() as conn:
            names = [r[0] for r in await (await conn.execute(
                "select name from users_view where name <> 'admin' order by created_pos")).fetchall()]
        assert names == ["r0", "r1", "s0", "s1"]
    finally:
        relay.stop()
        runner.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_subscriber_can_replay_the_stream_from_any_position(
        container: Container, settings: Settings) -> None:
    c, s = container, settings
    await _create_users(c, 3, "q")
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    while await relay.publish_once():
        pass
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=3)
    sub = await c.js.pull_subscribe(f"{s.events_subject}.>", stream=s.stream, config=config)
    msgs = await sub.fetch(100, timeout=5)
    assert [int(m.headers[MSG_ID]) for m in msgs] == list(range(3, relay.position + 1))
    await sub.unsubscribe()


async def test_one_relay_holds_the_lease_and_a_standby_takes_over(container: Container, settings: Settings) -> None:
    """Two relays on one store: one publishes; when it stops, the other takes over; no event twice."""
    import asyncio

    from infra.lease import Lease

    c, s = container, settings

    def relay() -> Relay:
        lease = Lease(c.database_url, f"smq-relay:{s.stream}")
        return Relay(c.store, c.js, s.stream, s.events_subject, c.pool, lease=lease, standby_poll=0.05)

    first, second = relay(), relay()
    t1 = asyncio.create_task(first.run())
    await eventually(lambda: _true(first.lease is not None and first.lease.held), what="first relay leads")
    t2 = asyncio.create_task(second.run())
    try:
        positions = await _create_users(c, 2, "l")
        await eventually(lambda: _reached(c, s, positions[-1]), what="first relay publishes")
        assert second.lease is not None and not second.lease.held  # it stands by
        first.stop()
        await asyncio.wait_for(t1, 10)
        more = await _create_users(c, 2, "m")
        await eventually(lambda: _reached(c, s, more[-1]), what="the standby takes over")
        assert second.lease.held
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(t1, t2, return_exceptions=True)
    bus = await _bus(c, s)
    assert [m[1] for m in bus] == list(range(1, await c.store.max_position() + 1))


async def _true(value: bool) -> bool:
    return value


async def _reached(c: Container, s: Settings, position: int) -> bool:
    info = await c.js.stream_info(s.stream)
    return info.state.last_seq >= position


async def test_relay_stops_on_a_position_another_store_published(container: Container, settings: Settings) -> None:
    """Two stores racing on an empty stream: another store's relay publishes position 1 between
    this relay's look at the stream and its first publish. JetStream answers this relay's
    position 1 as a duplicate (same Nats-Msg-Id); the relay must not take that for its own
    event and go on appending its events after the other store's."""
    from infra.bus import STORE

    c, s = container, settings
    await _create_users(c, 2, "race")
    ack = await c.js.publish(f"{s.events_subject}.user.created", b"{}",
                             headers={MSG_ID: "1", POSITION: "1", STORE: "another-store"})
    assert not ack.duplicate
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool)
    with pytest.raises(Exception, match="another store"):
        await relay.publish_once()
    info = await c.js.stream_info(s.stream)
    assert info.state.messages == 1  # nothing of this store after the other store's event
    assert relay.position == 0
