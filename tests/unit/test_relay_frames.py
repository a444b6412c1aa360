"""The relay writes its pipelined messages itself (workers.relay_acks): byte for byte the
commands nats-py's own publish writes for the same subject, reply, headers and payload."""

from __future__ import annotations

import pytest
from nats import errors
from nats.aio.client import Client

from infra.bus import EXPECTED_LAST_MSG_ID, MSG_ID, POSITION, STORE
from workers.relay_acks import Acks, header_block, header_value, hpub

STORE_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


async def _library_command(subject: str, reply: str, headers: dict[str, str], payload: bytes) -> bytes:
    """What nats-py's publish puts in its pending buffer (a client not connected yet buffers it)."""
    nc = Client()
    nc._max_pending_size = 1 << 20  # noqa: SLF001 - as connect sets it (buffering while not connected)
    await nc.publish(subject, payload, reply=reply, headers=headers)
    assert len(nc._pending) == 1  # noqa: SLF001
    return nc._pending[0]  # noqa: SLF001


@pytest.mark.parametrize(("position", "previous"), [(1, 0), (2, 1), (123_456_789, 123_456_788)])
async def test_an_event_message_is_written_as_nats_py_writes_it(position: int, previous: int) -> None:
    headers = {MSG_ID: str(position), POSITION: str(position), STORE: STORE_ID}
    if previous:
        headers[EXPECTED_LAST_MSG_ID] = str(previous)
    payload = '{"position":1,"data":{"name":"ünï"}}'.encode()
    reply = "_INBOX.abcdef.42"
    want = await _library_command("events.thing.created", reply, headers, payload)
    got = hpub("events.thing.created", reply, header_block(position, header_value(STORE_ID), previous), payload)
    assert got == want


@pytest.mark.parametrize("value", [" padded ", "line\r\nbreak", "plain"])
async def test_a_header_value_is_written_as_nats_py_writes_it(value: str) -> None:
    want = await _library_command("a.b", "r.1", {MSG_ID: "1", POSITION: "1", STORE: value}, b"x")
    assert hpub("a.b", "r.1", header_block(1, header_value(value), 0), b"x") == want


@pytest.mark.parametrize("subject", ["", "a b", "a.b\r\nPUB x 1", "a\tb"])
async def test_a_subject_nats_py_refuses_is_refused(subject: str) -> None:
    with pytest.raises(errors.BadSubjectError):
        await _library_command(subject, "r.1", {MSG_ID: "1"}, b"x")
    acks = Acks(Client())
    acks._sub = object()  # type: ignore[assignment]  # noqa: SLF001 - as if started: no server needed
    with pytest.raises(errors.BadSubjectError):
        await acks.publish(subject, b"x", header_block(1, "s", 0))
