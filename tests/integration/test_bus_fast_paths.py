"""The relay's acknowledgements and the projector's fetch, without nats-py's per-message cost,
through the real NATS: they say what the library says."""

from __future__ import annotations

import nats
import nats.js.errors
import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from infra.bus import EXPECTED_LAST_MSG_ID, MSG_ID
from infra.settings import Settings
from workers.projector_fetch import headers_of, quick, raw_headers, stream_sequence
from workers.relay_acks import Acks, PubAck


def block(headers: dict[str, str]) -> bytes:
    """A header block as nats-py writes one."""
    return ("NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


async def test_acks_say_stored_duplicate_refused_and_no_stream(settings: Settings) -> None:
    nc = await nats.connect(settings.nats_url or "")
    js = nc.jetstream()
    subject = settings.events_subject
    await js.add_stream(StreamConfig(name=settings.stream, subjects=[f"{subject}.>"]))
    acks = Acks(nc)

    async def one(subject: str, payload: bytes, headers: dict[str, str]) -> object:
        return (await acks.results([await acks.publish(subject, payload, block(headers))], 5.0))[0]

    try:
        tokens = [await acks.publish(f"{subject}.x.y", b"%d" % i, block({MSG_ID: str(i)})) for i in (1, 2, 3)]
        got = await acks.results(tokens, 5.0)
        assert [(a.stream, a.seq, a.duplicate) for a in got] == [(settings.stream, i, False) for i in (1, 2, 3)]

        again = await one(f"{subject}.x.y", b"2", {MSG_ID: "2"})
        assert isinstance(again, PubAck) and again.duplicate and again.seq == 2

        refused = await one(f"{subject}.x.y", b"4", {MSG_ID: "4", EXPECTED_LAST_MSG_ID: "1"})
        assert isinstance(refused, nats.js.errors.APIError)
        assert "last msg id" in str(refused).lower()

        assert isinstance(await one("nobody.listens.here", b"x", {MSG_ID: "1"}), nats.js.errors.NoStreamResponseError)

        # Many at once, as a relay's batch: every one acknowledged, in order.
        many = [await acks.publish(f"{subject}.x.y", b"m", block({MSG_ID: f"m{i}"})) for i in range(500)]
        assert [a.seq for a in await acks.results(many, 5.0)] == list(range(4, 504))

        # A batch given up on: its acknowledgements, come or still to come, are dropped; the
        # next batch gets its own, and one that never comes ends in TimeoutError.
        dropped = [await acks.publish(f"{subject}.x.y", b"d", block({MSG_ID: f"d{i}"})) for i in range(50)]
        acks.forget()
        after = await acks.publish(f"{subject}.x.y", b"n", block({MSG_ID: "n"}))
        assert [a.seq for a in await acks.results([after], 5.0)] == [554]
        with pytest.raises(TimeoutError):
            await acks.results(dropped[-1:] + [f"{after}0"], 0.2)
    finally:
        await acks.close()
        await js.delete_stream(settings.stream)
        await nc.close()


async def test_quick_fetch_gives_what_the_library_gives(settings: Settings) -> None:
    nc = await nats.connect(settings.nats_url or "")
    js = nc.jetstream()
    subject = settings.events_subject
    await js.add_stream(StreamConfig(name=settings.stream, subjects=[f"{subject}.>"]))
    seen: list[Msg] = []  # another subscriber of the same connection, a core one

    async def got(msg: Msg) -> None:
        seen.append(msg)

    await nc.subscribe(f"{subject}.>", cb=got)
    try:
        def config(name: str) -> ConsumerConfig:
            return ConsumerConfig(durable_name=name, deliver_policy=DeliverPolicy.ALL,
                                  ack_policy=AckPolicy.ALL, max_ack_pending=20_000)
        plain = await js.pull_subscribe(f"{subject}.>", durable="plain", stream=settings.stream,
                                        config=config("plain"))
        fast = quick(await js.pull_subscribe(f"{subject}.>", durable="fast", stream=settings.stream,
                                             config=config("fast")))
        for i in range(1, 1201):
            await js.publish(f"{subject}.a.b", b"%d" % i, headers={MSG_ID: str(i), "Smq-Other": "x"})

        async def drain(sub: object) -> list[tuple[int, bytes, dict[str, str] | None]]:
            out: list[tuple[int, bytes, dict[str, str] | None]] = []
            while len(out) < 1200:
                msgs = await sub.fetch(512, timeout=2)  # type: ignore[attr-defined]
                for m in msgs:
                    assert stream_sequence(m) == m.metadata.sequence.stream
                out += [(stream_sequence(m), m.data, headers_of(m)) for m in msgs]
                await msgs[-1].ack()
            return out
        fetched = await drain(fast)
        assert fetched == await drain(plain) == [
            (i, b"%d" % i, {MSG_ID: str(i), "Smq-Other": "x"}) for i in range(1, 1201)]
        # Nothing left: the quick fetch times out as the library's does (with either class):
        # the server's status messages are still read.
        with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
            await fast.fetch(10, timeout=0.3)
        await js.publish(f"{subject}.a.b", b"late", headers={MSG_ID: "late"})
        late = await fast.fetch(10, timeout=2)
        assert [m.data for m in late] == [b"late"]
        # The quick subscription's messages keep their header block unparsed; every other
        # subscriber of the connection gets the library's dicts.
        assert late[0].headers is None and raw_headers(late[0]) is not None
        assert headers_of(late[0]) == {MSG_ID: "late"}
        again = await plain.fetch(10, timeout=2)
        assert again[0].headers == {MSG_ID: "late"} and raw_headers(again[0]) is None
        assert len(seen) == 1201
        assert all(m.headers == {MSG_ID: str(i), "Smq-Other": "x"} for i, m in enumerate(seen[:1200], 1))
    finally:
        await js.delete_stream(settings.stream)
        await nc.close()
