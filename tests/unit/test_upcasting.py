"""Thing.Created is at version 2 (it adds ``description``); events stored at version 1 are
upcast by the library's own mechanism, for the aggregate and for the bus envelope alike."""

from __future__ import annotations

import uuid

from eventsourcing.persistence import StoredEvent

from domain.app import Smq
from domain.things import Thing
from infra.store import Store
from projections.envelope import decode, encode

OWNER = uuid.uuid4()


def _v1_created(app: Smq, thing_id: uuid.UUID) -> StoredEvent:
    """A Thing.Created as version 1 stored it: no ``description``, no ``class_version``."""
    thing = Thing(id=thing_id, owner=OWNER, name="old", secret="s-old", tags=["a"], metadata={"m": 1},
                  enabled=True)
    stored = app.mapper.to_stored_event(thing.collect_events()[0])
    state = app.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2 and state.pop("description") == ""
    return StoredEvent(originator_id=stored.originator_id, originator_version=1, topic=stored.topic,
                       state=app.mapper.transcoder.encode(state))


def test_new_created_events_are_stored_at_version_2() -> None:
    app = Smq()
    thing = Thing(id=uuid.uuid4(), owner=OWNER, name="n", secret="s", tags=[], metadata={}, enabled=True,
                  description="a pump")
    app.save(thing)
    [n] = app.recorder.select_notifications(1, 10)
    state = app.mapper.transcoder.decode(n.state)
    assert state["class_version"] == 2 and state["description"] == "a pump"


async def test_a_version_1_event_loads_and_travels_upcast() -> None:
    app = Smq()
    thing_id = uuid.uuid4()
    app.recorder.insert_events([_v1_created(app, thing_id)])

    thing = app.repository.get(thing_id)
    assert isinstance(thing, Thing)
    assert (thing.name, thing.secret, thing.tags, thing.metadata, thing.description) == (
        "old", "s-old", ["a"], {"m": 1}, "")
    # It keeps working as a version 2 aggregate: the next event follows on.
    thing.disable()
    app.save(thing)
    assert app.repository.get(thing_id).version == 2

    store = Store(app, workers=1)
    try:
        created, disabled = await store.read(0)
    finally:
        store._pool.shutdown()
    wire = decode(encode(created))  # as the projector receives it
    assert (wire.aggregate, wire.type, wire.version) == ("thing", "created", 1)
    assert wire.data["description"] == "" and "class_version" not in wire.data
    assert wire.data["name"] == "old" and wire.data["enabled"] is True
    assert disabled.type == "disabled"
