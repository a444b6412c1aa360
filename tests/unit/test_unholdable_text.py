"""What the bus and the SQL views carry of stored text that UTF-8 or PostgreSQL cannot hold."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from projections.envelope import Envelope, decode, encode, safe


def _env(data: dict[str, object]) -> Envelope:
    return Envelope(position=1, aggregate="thing", aggregate_id="a", version=1, type="created",
                    occurred_at=datetime.now(UTC), data=data)


def test_a_lone_surrogate_travels_as_the_replacement_character() -> None:
    assert decode(encode(_env({"name": "v\x00"}))).data == {"name": "v\x00"}  # NUL is JSON
    env = _env({"name": "x\ud800", "metadata": {"k\udc00": ["v\x00"]}})
    out = decode(encode(env))
    assert out.data == {"name": "x\ufffd", "metadata": {"k\ufffd": ["v\ufffd"]}}


def test_safe_replaces_nul_and_surrogates_and_keeps_a_clean_envelope() -> None:
    clean = _env({"name": "ok\n", "n": 1})
    assert safe(clean) is clean
    dirty = _env({"name": "a\x00", "m": {"\x00": "\ud800"}})
    assert safe(dirty).data == {"name": "a\ufffd", "m": {"\ufffd": "\ufffd"}}
    assert dirty.data["name"] == "a\x00"  # the original is untouched
    assert msgspec.json.decode(encode(dirty))["data"]["m"] == {"\ufffd": "\ufffd"}
