"""The store's msgspec transcoder writes and reads the library's JSON format exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from infra.transcoder import FastTranscoder


def _pair() -> tuple[JSONTranscoder, FastTranscoder]:
    slow, fast = JSONTranscoder(), FastTranscoder()
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.register_transcodings(slow)
    app.register_transcodings(fast)
    return slow, fast


STATES = [
    {"timestamp": datetime(2026, 11, 27, 18, 0, 0, 123456, tzinfo=UTC), "owner": uuid.uuid4(),
     "name": "ünïcode ☃", "tags": ["a", "b"], "metadata": {"k": {"deep": [1, 2.5, None, True]}},
     "enabled": True, "_meta": {"actor": None, "correlation_id": "c"}},
    {"ids": [uuid.uuid4(), uuid.uuid4()], "nested": {"at": [{"when": datetime(2020, 1, 1, tzinfo=UTC)}]},
     "price": Decimal("1.50"), "pair": (1, "x"), "empty": {}, "big": 2**62},
    {"_type_": "not a tag", "extra": 1, "x": "\x7f\n\t\"quoted\""},
]


@pytest.mark.parametrize("state", STATES)
def test_same_bytes_and_same_state_as_the_library(state: dict[str, object]) -> None:
    slow, fast = _pair()
    raw = slow.encode(state)
    assert fast.encode(state) == raw
    assert fast.decode(raw) == slow.decode(raw)


def test_what_msgspec_cannot_take_goes_the_librarys_way() -> None:
    slow, fast = _pair()
    escaped = b'{"name":"\\ud800 lone","at":{"_type_":"uuid_hex","_data_":"' + uuid.UUID(int=1).hex.encode() + b'"}}'
    assert fast.decode(escaped) == slow.decode(escaped)
    with pytest.raises(TranscodingNotRegisteredError):
        fast.encode({"s": {1, 2}})
    with pytest.raises(TranscodingNotRegisteredError):
        fast.decode(b'{"x":{"_type_":"unknown","_data_":"1"}}')
