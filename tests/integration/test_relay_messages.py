"""What the relay puts on the stream, message by message: the documented subject, exactly the
documented headers, and the envelope's JSON as the store's events give it (docs/events.md),
its credentials sealed with a fresh nonce each, bound to their event and field."""

from __future__ import annotations

import base64

import msgspec
from eventsourcing.persistence import JSONTranscoder

from domain.base import Meta
from domain.common import Principal
from infra.bus import EXPECTED_LAST_MSG_ID, MSG_ID, POSITION, STORE
from infra.settings import Settings
from projections.envelope import encode, from_stored
from projections.sealing import NONCE, SEALED, associated, is_sealed
from service.container import Container
from workers.relay import Relay

FIELDS = ["position", "aggregate", "aggregate_id", "version", "type", "occurred_at", "actor",
          "correlation_id", "causation_id", "data"]


async def test_each_message_has_the_documented_subject_headers_and_body(
        container: Container, settings: Settings) -> None:
    c, s = container, settings
    app, sealer = c.store.app, c.store.sealer
    assert sealer is not None
    user = (await c.store.command(app.create_user, "owner@example.com", "12345678", name="ö",
                                  meta=Meta(actor=None, correlation_id="corr-u"))).result
    who, meta = Principal(user.id), Meta(actor=str(user.id), correlation_id="corr-t", causation_id="cause")
    things = (await c.store.command(app.create_things, who, [
        {"name": "t1", "metadata": {"nested": {"k": [1, 2.5, None]}}, "tags": ["a"]},
        {"name": "t2", "credentials": {"secret": "secret-of-t2"}}], meta=meta)).result
    await c.store.command(app.change_thing_secret, who, things[0].id, "new-secret-of-t1", meta=meta)
    await c.store.command(app.update_user, who, user.id, name="renamed", metadata={"m": "ü"}, meta=meta)

    # Batches of 3: each batch's first message goes by nats-py's publish, the rest pipelined.
    relay = Relay(c.store, c.js, s.stream, s.events_subject, c.pool, batch=3)
    while await relay.publish_once():
        pass
    store_id = await c.store.identity()

    # The reference: the library's own read and JSON decoding of the store.
    library = JSONTranscoder()
    app.register_transcodings(library)
    stored = app.recorder.select_notifications(1, 10_000)
    info = await c.js.stream_info(s.stream)
    assert (info.state.first_seq, info.state.last_seq) == (1, len(stored))
    kinds, sealed_seen, nonces = set(), 0, set()
    for seq, n in enumerate(stored, start=1):
        want = from_stored(n.id, n.topic, n.originator_id, n.originator_version, library.decode(n.state))
        msg = await c.js.get_msg(s.stream, seq)
        assert msg.subject == f"{s.events_subject}.{want.aggregate}.{want.type}"
        headers = {MSG_ID: str(n.id), POSITION: str(n.id), STORE: store_id}
        if seq > 1:
            headers[EXPECTED_LAST_MSG_ID] = str(n.id - 1)
        assert msg.headers == headers
        body = msgspec.json.decode(msg.data)
        assert list(body) == FIELDS
        for field in SEALED.intersection(want.data):
            value = body["data"][field]
            assert is_sealed(value), (field, value)
            version, key_id, text = value["sealed"].split(":")
            assert (version, key_id) == ("v1", sealer.key_id)
            nonces.add(base64.urlsafe_b64decode(text)[:NONCE])
            bound = associated(want.aggregate, want.aggregate_id, want.version, field)
            assert sealer.open(value, bound) == want.data[field]
            body["data"][field] = want.data[field]
            sealed_seen += 1
        # Byte for byte what the envelope of the stored event encodes to, once opened.
        assert msgspec.json.encode(body) == encode(want)
        kinds.add(f"{want.aggregate}.{want.type}")
    assert {"user.created", "user.updated", "thing.created", "thing.secret_changed",
            "unique_key.claimed"} <= kinds
    assert len(nonces) == sealed_seen >= 6
