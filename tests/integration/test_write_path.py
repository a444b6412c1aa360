"""The faster write path (62b5310) through the real PostgreSQL, NATS and Redis: freshness
records grouped into one Redis script call, SQL views of a group applied in one transaction
with batched handlers, and the relay woken by the store's NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.base import Meta
from domain.common import Principal
from infra.bus import ensure_stream
from infra.freshness import KEEP, Freshness
from infra.settings import Settings
from projections.envelope import Envelope, decode, encode
from projections.sqlview import Batched, SqlView, apply_together
from service.container import Container, open_app
from tests.conftest import eventually
from workers.relay import Relay


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    r = Redis.from_url(settings.redis_url or "")
    try:
        yield r
    finally:
        await r.aclose()


def _counting(freshness: Freshness) -> list[int]:
    """Count the script calls (and their keys) of ``freshness``; every call still goes to Redis."""
    calls: list[int] = []
    script = freshness._max

    def call(*, keys: list[str], args: list[Any]) -> Any:
        calls.append(len(keys))
        return script(keys=keys, args=args)

    freshness._max = call  # type: ignore[method-assign,assignment]
    return calls


# -- freshness: concurrent records share one Redis script call ----------------------------------
async def test_concurrent_records_keep_each_users_max_in_few_script_calls(
        redis: Redis, settings: Settings) -> None:
    freshness = Freshness(redis, None, settings.redis_prefix, 1.0)  # type: ignore[arg-type]
    calls = _counting(freshness)
    users = [str(uuid.uuid4()) for _ in range(6)]
    rng = random.Random(7)
    records: list[tuple[list[str], int]] = []
    for uid in users:
        records += [([uid], rng.randint(1, 10_000)) for _ in range(15)]
    # Commands touching two users at once (a share, a connect to another's channel).
    records += [([users[0], users[1]], 20_000), ([users[2], None, users[3]], 15_000)]
    rng.shuffle(records)
    # A write of a higher position, then a lower one, queued in the same round.
    records += [([users[4]], 30_000), ([users[4]], 29_999)]

    await asyncio.gather(*(freshness.record(uids, pos) for uids, pos in records))

    expected = {u: max(p for uids, p in records if u in uids) for u in users}
    assert {u: await freshness.target(u) for u in users} == expected
    assert await freshness.target(users[4]) == 30_000
    # One script call carried many records: far fewer calls than records.
    assert 1 <= len(calls) < len(records)
    assert len(calls) <= 3, calls
    assert sum(calls) < len(records)
    ttl = await redis.ttl(freshness.key(users[0]))
    assert 0 < ttl <= KEEP

    # Lower positions recorded later, alone or together, never lower a user's key.
    calls.clear()
    await asyncio.gather(*(freshness.record([u], expected[u] - 1) for u in users),
                         freshness.record(users, 1))
    for u in users:
        await freshness.record([u], expected[u] // 2)
    assert {u: await freshness.target(u) for u in users} == expected
    # Nor does a lower position recorded by another process (another Freshness on the same keys).
    other = Freshness(redis, None, settings.redis_prefix, 1.0)  # type: ignore[arg-type]
    await other.record([users[0]], 5)
    assert await freshness.target(users[0]) == expected[users[0]]
    # A higher one does raise it, and a later record of the first instance still works.
    await other.record([users[0]], expected[users[0]] + 10)
    await freshness.record([users[1]], expected[users[1]] + 10)
    assert await freshness.target(users[0]) == expected[users[0]] + 10
    assert await freshness.target(users[1]) == expected[users[1]] + 10
    # Nothing to record: no call at all.
    calls.clear()
    await freshness.record([None, ""], 50)
    await freshness.record(users, 0)
    assert calls == []


async def test_a_failed_script_call_fails_its_records_and_the_next_round_works(
        redis: Redis, settings: Settings) -> None:
    """A Redis error reaches every record of that round; the group commit is not wedged."""
    freshness = Freshness(redis, None, settings.redis_prefix, 1.0)  # type: ignore[arg-type]
    bad, good = str(uuid.uuid4()), str(uuid.uuid4())
    await redis.hset(freshness.key(bad), "x", "1")  # a key of the wrong type: the script fails
    results = await asyncio.gather(freshness.record([bad], 10), freshness.record([bad], 11),
                                   return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    await redis.delete(freshness.key(bad))
    await asyncio.wait_for(asyncio.gather(freshness.record([good], 7), freshness.record([bad], 9)), 5)
    assert await freshness.target(good) == 7 and await freshness.target(bad) == 9


async def test_concurrent_targets_share_mgets_and_never_miss_an_earlier_record(
        redis: Redis, settings: Settings) -> None:
    """Queries' reads of their callers' records are sent together; a read that began after a
    record was answered sees it, even while an older MGET is still on its way."""
    freshness = Freshness(redis, None, settings.redis_prefix, 1.0)  # type: ignore[arg-type]
    users = [str(uuid.uuid4()) for _ in range(5)]
    for i, u in enumerate(users):
        await freshness.record([u], 100 + i)
    real = redis.mget
    calls: list[int] = []
    hold = asyncio.Event()
    hold.set()

    async def mget(keys: list[str]) -> Any:
        calls.append(len(keys))
        values = await real(keys)
        await hold.wait()  # an answer that is still on its way
        return values

    freshness.redis.mget = mget  # type: ignore[method-assign]
    asked = [*users, *users, None, users[0]]
    got = await asyncio.gather(*(freshness.target(u, explicit=101) for u in asked))
    assert got == [max(100 + users.index(u), 101) if u else 101 for u in asked]
    assert sum(calls) == len(users) and len(calls) <= 2, calls  # each key once, few calls

    # An MGET in flight has read the old value; the record lands; a later query sees it.
    hold.clear()
    sent = len(calls)
    early = asyncio.create_task(freshness.target(users[1]))

    async def one_more_sent() -> bool:
        return len(calls) == sent + 1

    await eventually(one_more_sent, 5, "the next MGET")
    await freshness.record([users[1]], 5_000)
    late = asyncio.create_task(freshness.target(users[1]))
    hold.set()
    assert await early == 101
    assert await late == 5_000

    # A failed MGET fails the queries of its round only; the next round works.
    async def broken(keys: list[str]) -> Any:
        freshness.redis.mget = mget  # type: ignore[method-assign]
        raise ConnectionError("redis went away")

    freshness.redis.mget = broken  # type: ignore[method-assign]
    failed = await asyncio.gather(freshness.target(users[2]), freshness.target(users[3]),
                                  return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in failed), failed
    assert await asyncio.wait_for(freshness.target(users[2]), 5) == 102
    # A value that is not a position fails its round too (it does not leave the others hanging).
    await redis.set(freshness.key(users[3]), "not-a-number")
    failed = await asyncio.wait_for(asyncio.gather(freshness.target(users[3]), freshness.target(users[4]),
                                                   return_exceptions=True), 5)
    assert all(isinstance(r, ValueError) for r in failed), failed
    assert await asyncio.wait_for(freshness.target(users[4]), 5) == 104


# -- SQL views of a group in one transaction, batched handlers ----------------------------------
SQL_TABLES = ("things_view", "thing_shares", "things_counts", "events_view", "users_view",
              "channels_view", "channel_shares", "channels_counts", "connections",
              "channel_policies", "configs_view", "certs_view", "provisionings_view")


async def _rows(c: Container, table: str, order: str) -> list[tuple[Any, ...]]:
    async with c.pool.connection() as conn:
        return await (await conn.execute(f"select * from {table} order by {order}")).fetchall()  # noqa: S608


async def _as_on_the_bus(c: Container) -> list[Envelope]:
    """The store's events as the projector gets them (encoded and decoded as on the bus)."""
    return [decode(encode(e), c.store.sealer) for e in await c.store.read(0, 10_000)]


async def _positions(c: Container, names: list[str]) -> dict[str, tuple[int, int]]:
    async with c.pool.connection() as conn:
        rows = await (await conn.execute(
            "select view, position, stream_seq from view_positions where view = any(%s)", (names,))).fetchall()
    return {v: (int(p), int(s)) for v, p, s in rows}


async def test_views_of_a_group_apply_a_batch_together(container: Container) -> None:
    c = container
    app = c.store.app
    user = (await c.store.command(app.create_user, "owner@example.com", "12345678",
                                  meta=Meta(actor=None))).result
    who, meta = Principal(user.id), Meta(actor=str(user.id))
    # Two things created together (one run of Created events, the claims of their secrets
    # between them), an update of the first, then a third thing created and at once updated
    # (another kind after a Created run: the run must be written before the update), a fourth
    # created disabled, and the second disabled.
    made = (await c.store.command(app.create_things, who, [{"name": "t1"}, {"name": "t2"}], meta=meta)).result
    t1, t2 = made[0].id, made[1].id
    await c.store.command(app.update_thing, who, t1, name="t1-renamed", metadata={"v": 1}, meta=meta)
    t3 = (await c.store.command(app.create_things, who, [{"name": "t3"}], meta=meta)).result[0].id
    await c.store.command(app.update_thing, who, t3, name="t3-renamed", metadata={"v": 3}, meta=meta)
    t4 = (await c.store.command(app.create_things, who, [{"name": "t4", "status": "disabled"}],
                                meta=meta)).result[0].id
    await c.store.command(app.set_thing_enabled, who, t2, False, meta=meta)

    envelopes = await _as_on_the_bus(c)
    batch: list[tuple[int, Envelope]] = [(i + 1, e) for i, e in enumerate(envelopes)]
    head = envelopes[-1].position
    kinds = [e.type for e in envelopes if e.aggregate == "thing"]
    assert kinds == ["created", "created", "updated", "created", "updated", "created", "disabled"]
    first_update = next(i for i, (_, e) in enumerate(batch) if (e.aggregate, e.type) == ("thing", "updated"))

    # A probe view beside the real ones: what its handlers are given, in order.
    seen: list[tuple[str, list[str]]] = []

    async def runs(_cur: Any, events: list[Envelope]) -> None:
        seen.append(("created", [e.aggregate_id for e in events]))

    async def one(_cur: Any, e: Envelope) -> None:
        seen.append(("updated", [e.aggregate_id]))

    probe = SqlView("probe", c.pool, {("thing", "created"): Batched(runs), ("thing", "updated"): one})
    views = [*c.sql_views(), probe]
    names = [v.name for v in views]
    things = next(v for v in views if v.name == "things")
    assert await _positions(c, names) == {}  # no projector runs here: nothing applied yet

    # The things view alone first gets the events up to the update (not included): it is then
    # ahead of the others, and the group's batch must not apply those events to it again.
    ahead = await apply_together([things], batch[:first_update])
    assert ahead == [batch[first_update - 1][1].position]
    assert await _positions(c, names) == {"things": (ahead[0], first_update)}

    reached = await apply_together(views, batch)
    assert reached == [head] * len(views)
    # Runs of consecutive Created events (the claims between them, which the view ignores,
    # do not break a run; the disabling at the end neither), each cut by an update.
    assert seen == [("created", [str(t1), str(t2)]), ("updated", [str(t1)]), ("created", [str(t3)]),
                    ("updated", [str(t3)]), ("created", [str(t4)])]
    # Every view of the group moved, in the same transaction, to the head and the batch's
    # last stream sequence.
    assert await _positions(c, names) == {n: (head, len(batch)) for n in names}

    async with c.pool.connection() as conn:
        things_rows = await (await conn.execute(
            "select id, name, metadata, status, owner from things_view order by created_pos")).fetchall()
        counts = dict(((s, n) for o, s, n in await (await conn.execute(
            "select owner, status, n from things_counts")).fetchall() if str(o) == str(user.id)))
        events_rows = [int(r[0]) for r in await (await conn.execute(
            "select position from events_view order by position")).fetchall()]
    assert [(str(i), n, m, s) for i, n, m, s, _ in things_rows] == [
        (str(t1), "t1-renamed", {"v": 1}, "enabled"),
        (str(t2), "t2", {}, "disabled"),
        (str(t3), "t3-renamed", {"v": 3}, "enabled"),   # the update applied after its create
        (str(t4), "t4", {}, "disabled"),
    ]
    assert {str(o) for *_, o in things_rows} == {str(user.id)}
    assert counts == {"enabled": 2, "disabled": 2}  # exact: t1 was not counted twice
    assert events_rows == [e.position for e in envelopes]  # one row per event

    # The same batch again (a redelivery): the same positions, and nothing changes.
    tables = {t: await _rows(c, t, "1") for t in SQL_TABLES}
    positions = await _positions(c, names)
    assert await apply_together(views, batch) == reached
    assert await apply_together(views, batch[3:]) == reached
    assert len(seen) == 5  # nothing handed to a handler again
    assert {t: await _rows(c, t, "1") for t in SQL_TABLES} == tables
    assert await _positions(c, names) == positions


async def test_a_failing_view_moves_no_view_of_its_group(container: Container) -> None:
    """One transaction for the group: a handler's failure leaves every view (rows and
    position) as it was."""
    c = container
    app = c.store.app
    user = (await c.store.command(app.create_user, "owner2@example.com", "12345678",
                                  meta=Meta(actor=None))).result
    who = Principal(user.id)
    await c.store.command(app.create_things, who, [{"name": "a"}, {"name": "b"}])
    envelopes = await _as_on_the_bus(c)
    batch = [(i + 1, e) for i, e in enumerate(envelopes)]

    async def boom(_cur: Any, _env: Envelope) -> None:
        raise RuntimeError("this view cannot take it")

    views = c.sql_views()
    failing = SqlView("failing", c.pool, {("thing", "created"): boom})
    names = [v.name for v in views] + ["failing"]
    with pytest.raises(RuntimeError, match="cannot take it"):
        await apply_together([*views, failing], batch)
    assert await _positions(c, names) == {}
    assert await _rows(c, "things_view", "id") == []
    assert await _rows(c, "events_view", "position") == []
    # Without it, the group applies.
    assert await apply_together(views, batch) == [envelopes[-1].position] * len(views)
    assert len(await _rows(c, "things_view", "id")) == 2


# -- the relay is woken by the store's NOTIFY ---------------------------------------------------
async def _listening(c: Container, channel: str) -> bool:
    async with c.pool.connection() as conn:
        row = await (await conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() and query = %s",
            (f'LISTEN "{channel}"',))).fetchone()
    return bool(row and row[0])


async def _on_stream(c: Container, s: Settings) -> int:
    return int((await c.js.stream_info(s.stream)).state.last_seq)


def _idle(relay: Relay) -> bool:
    """Whether the relay waits to be woken (its loop awaits the wake event, not a read)."""
    return bool(relay._wake._waiters)  # type: ignore[attr-defined]  # asyncio.Event's waiters


async def _holds(value: Callable[[], bool]) -> bool:
    return value()


@pytest.mark.timeout(60)
async def test_relay_is_woken_by_a_commit_of_another_process(container: Container, settings: Settings) -> None:
    c, s = container, settings
    channel = c.store.app.recorder.channel_name
    # idle=60: the relay's own polling would not find the event within the bound below, and
    # its store's on_commit is not called (the commit goes through another application).
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool, idle=60,
                  listen=(c.database_url, channel))
    task = asyncio.create_task(relay.run(), name="relay-under-test")
    other = await asyncio.to_thread(open_app, c.database_url)
    try:
        head = await c.store.max_position()
        assert head > 0  # the administrator seeded at start
        await eventually(lambda: _holds(lambda: relay.position == head), 10, "relay publishes the seed")
        if relay.listen is not None:
            await eventually(lambda: _listening(c, channel), 10, "relay LISTENs")
        # The relay is idle, waiting to be woken (not in the middle of a read).
        await eventually(lambda: _holds(lambda: _idle(relay)), 10, "relay idles")
        assert await _on_stream(c, s) == head

        done = await asyncio.to_thread(other.create_user, "elsewhere@example.com", "12345678",
                                       meta=Meta(actor=None, correlation_id="from-another-process"))
        assert done.position is not None and done.position > head
        started = time.monotonic()

        async def published() -> bool:
            return await _on_stream(c, s) >= done.position

        await eventually(published, 10, "the other process's commit on the stream")
        assert time.monotonic() - started < 10
        msg = await c.js.get_msg(s.stream, done.position)
        assert msg.headers is not None and int(msg.headers["Smq-Position"]) == done.position
        assert not task.done()
    finally:
        # A stop lands at once, even while the relay reads (idle=60 would show it).
        relay.stop()
        await asyncio.wait_for(task, 5)
        await asyncio.to_thread(other.close)
    assert task.exception() is None
    # Stopped cleanly: its LISTEN connection is closed too.
    await eventually(lambda: _not(_listening(c, channel)), 10, "LISTEN connection closed")


@pytest.mark.timeout(60)
async def test_a_commit_while_the_listen_connection_is_down_is_published(
        container: Container, settings: Settings) -> None:
    """While LISTEN is up the relay polls only every ``idle_listening`` seconds (60 here);
    when the connection drops, the waiting relay goes back to polling every ``idle`` at once
    (here it cannot LISTEN again: its database URL is refused), and LISTENs anew later."""
    c, s = container, settings
    channel = c.store.app.recorder.channel_name
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool, idle=0.05, idle_listening=60,
                  listen=(c.database_url, channel))
    task = asyncio.create_task(relay.run(), name="relay-listen-drop")
    other = await asyncio.to_thread(open_app, c.database_url)
    try:
        await eventually(lambda: _holds(lambda: relay.listening), 10, "relay LISTENs")
        await eventually(lambda: _holds(lambda: _idle(relay)), 10, "relay idles on the long poll")
        relay.listen = ("postgresql://postgres@127.0.0.1:1/none", channel)  # reconnects are refused
        async with c.pool.connection() as conn:
            await conn.execute("select pg_terminate_backend(pid) from pg_stat_activity"
                               " where datname = current_database() and query = %s", (f'LISTEN "{channel}"',))
        await eventually(lambda: _holds(lambda: not relay.listening), 10, "relay sees the drop")
        done = await asyncio.to_thread(other.create_user, "gap@example.com", "12345678",
                                       meta=Meta(actor=None, correlation_id="during-the-gap"))
        assert done.position is not None

        async def published() -> bool:
            return await _on_stream(c, s) >= done.position

        # Only the short poll can find it: no NOTIFY reaches a relay that is not listening.
        await eventually(published, 10, "the commit made while LISTEN was down, on the stream")
        assert not relay.listening
        relay.listen = (c.database_url, channel)
        await eventually(lambda: _holds(lambda: relay.listening), 10, "relay LISTENs again")
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)
        await asyncio.to_thread(other.close)
    assert task.exception() is None


@pytest.mark.timeout(60)
async def test_the_relay_outlives_a_bus_without_its_stream(container: Container, caplog: Any) -> None:
    """A restarting NATS answers a publish with NoStreamResponseError (and a stream lookup with
    NotFoundError) until JetStream is back; the relay keeps retrying instead of dying, and
    publishes everything once the stream takes its subjects (seen: a relay task dead after a
    NATS restart, nothing published any more)."""
    c = container
    suffix = uuid.uuid4().hex[:8]
    stream, root = f"LATE_{suffix}", f"late_{suffix}"
    await ensure_stream(c.js, stream, f"elsewhere_{suffix}")  # no stream takes the relay's subjects
    relay = Relay(c.store, c.js, stream, root, c.pool, idle=0.05)
    caplog.set_level(logging.WARNING, logger="smq.relay")
    task = asyncio.create_task(relay.run(), name="relay-without-stream")
    try:
        head = await c.store.max_position()
        assert head > 0

        async def failed_twice() -> bool:
            return relay.failures >= 2

        await eventually(failed_twice, 20, "the relay failing to publish, twice")
        assert not task.done()
        # Said once with its cause (reminders follow with back-off while it lasts). Under load
        # the first failure may be a timeout or the stream lookup rather than the refusal.
        firsts = [r for r in caplog.records if r.levelno == logging.WARNING and " failed (" in r.getMessage()]
        assert len(firsts) == 1, caplog.text
        info = await c.js.stream_info(stream)
        await c.js.update_stream(replace(info.config, subjects=[f"{root}.>"]))

        async def all_published() -> bool:
            return int((await c.js.stream_info(stream)).state.last_seq) >= head

        await eventually(all_published, 20, "the relay publishing once the stream takes its subjects")
        assert not task.done()
        assert relay.position >= head
        assert relay.failures == 0  # a publish that works starts the count again
        assert "relay: publishing again after" in caplog.text
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)
        with contextlib.suppress(Exception):
            await c.js.delete_stream(stream)
    assert task.exception() is None
    assert any(s in caplog.text for s in ("NoStreamResponse", "no response from stream", "Timeout")), caplog.text


async def _not(check: Any) -> bool:
    return not await check


@pytest.mark.timeout(60)
async def test_a_stop_during_a_read_is_not_lost(container: Container, settings: Settings) -> None:
    """stop() (or a commit's wake-up) that lands while the relay reads the store is seen as
    soon as the read ends, not a whole ``idle`` later: the wake is cleared before the read."""
    c, s = container, settings
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool, idle=60)
    relay.position = await relay.published_position()
    while await relay.publish_once():  # all published: the held read below finds nothing new
        pass
    reading, release = asyncio.Event(), asyncio.Event()
    real = relay.publish_once

    async def held_read() -> int:
        reading.set()
        await release.wait()  # the read is in progress while the test stops the relay
        return await real()

    relay.publish_once = held_read  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run(), name="relay-stopped-mid-read")
    try:
        await asyncio.wait_for(reading.wait(), 10)
        relay.stop()
        release.set()
        await asyncio.wait_for(task, 5)  # idle=60: a lost stop would wait a minute
    finally:
        if not task.done():
            task.cancel()
    assert task.exception() is None


async def test_a_redis_batch_keeps_each_keys_last_write(redis: Redis, settings: Settings) -> None:
    """A Redis view's batch goes as one DEL, one MSET and the hashes: the keys end as if
    every write had been applied in order (each write replaces its key whole)."""
    from projections.redisview import _queue

    p = f"{settings.redis_prefix}q{uuid.uuid4().hex[:6]}:"
    await redis.set(p + "gone", "old")
    await redis.hset(p + "hash", mapping={"stale": "1"})
    writes = [
        ("set", p + "a", "1"), ("del", p + "a", None),             # set then deleted: absent
        ("del", p + "b", None), ("set", p + "b", "2"),             # deleted then set: "2"
        ("set", p + "c", "x"), ("set", p + "c", "y"),              # set twice: the last
        ("del", p + "gone", None),                                 # an old key deleted
        ("hset", p + "hash", {"k": "v"}),                          # a hash replaced whole
        ("set", p + "h2", "s"), ("hset", p + "h2", {"n": "1"}),    # a string, then a hash
        ("set", p + "empty", None),                                # an empty value
    ]
    async with redis.pipeline(transaction=True) as pipe:
        _queue(pipe, writes)
        await pipe.execute()
    assert await redis.exists(p + "a") == 0
    assert await redis.get(p + "b") == b"2"
    assert await redis.get(p + "c") == b"y"
    assert await redis.exists(p + "gone") == 0
    assert await redis.hgetall(p + "hash") == {b"k": b"v"}
    assert await redis.hgetall(p + "h2") == {b"n": b"1"}
    assert await redis.get(p + "empty") == b""
    await redis.delete(p + "b", p + "c", p + "hash", p + "h2", p + "empty")
    # Many hashes of several fields (more than one script call's worth), each whole.
    many = [("hset", f"{p}m{i}", {"id": f"t{i}", "status": "enabled", "n": str(i)}) for i in range(2500)]
    async with redis.pipeline(transaction=True) as pipe:
        _queue(pipe, many)
        await pipe.execute()
    for i in (0, 999, 1000, 2499):
        assert await redis.hgetall(f"{p}m{i}") == {b"id": f"t{i}".encode(), b"status": b"enabled",
                                                    b"n": str(i).encode()}
    await redis.delete(*[f"{p}m{i}" for i in range(2500)])


# -- the recorder: an aggregate's events read with its statements rendered once -----------------
async def test_select_events_answers_as_the_librarys_for_every_shape(container: Container) -> None:
    from eventsourcing.postgres import PostgresApplicationRecorder

    app = container.store.app
    admin = Principal(uuid.uuid4(), admin=True)
    made = await container.store.run(app.create_things, admin, [{"name": f"t{i}"} for i in range(3)])
    thing = made.result[0]
    for i in range(4):  # versions 2..5 of one thing
        await container.store.run(app.update_thing, admin, thing.id, f"renamed {i}", None)
    recorder = app.recorder
    ids = [thing.id, made.result[1].id, uuid.uuid4()]  # several versions, one, none
    shapes: list[dict[str, Any]] = [{}, {"gt": 2}, {"lte": 3}, {"gt": 1, "lte": 4}, {"desc": True},
                                    {"desc": True, "limit": 1}, {"gt": 1, "lte": 5, "desc": True, "limit": 2},
                                    {"limit": 2}]
    for _ in range(2):  # rendered the first time, then taken as rendered
        for shape in shapes:
            for oid in ids:
                ours = await container.store.run(recorder.select_events, oid, **shape)
                library = await container.store.run(PostgresApplicationRecorder.select_events, recorder, oid,
                                                    **shape)
                assert ours == library, shape
    assert [e.originator_version for e in recorder.select_events(thing.id, gt=1, lte=4, desc=True)] == [4, 3, 2]
