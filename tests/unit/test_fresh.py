"""``domain.fresh``: a new aggregate made directly is the one the library makes (the same state,
the same pending event, the same stored event), and a bulk create made of them keeps its
refusals and reads back as it was made. ``derived_id`` is ``uuid5``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from domain.app import Principal, Smq
from domain.base import NAMESPACE, Entity, Meta, UniqueKey, derived_id, key_id
from domain.bootstrap import Config
from domain.channels import Channel
from domain.connections import Connection
from domain.errors import Conflict
from domain.fresh import fresh, recipe
from domain.provisioning import Layout, Provisioning
from domain.things import SECRET_KIND, Thing, secret_key

OWNER = Principal(uuid.uuid4())
PINNED = datetime(2026, 11, 27, 12, 34, 56, 789012, tzinfo=UTC)
META = Meta(actor="someone", correlation_id="req-1", causation_id=None)


def _thing(**more: Any) -> tuple[type[Entity], dict[str, Any]]:
    return Thing, {"id": uuid.uuid4(), "owner": OWNER.user_id, "name": "pump", "secret": "s-1",
                   "tags": ["a", "b"], "metadata": {"k": [1, {"x": None}]}, "enabled": True, **more}


CASES = [
    _thing(),
    _thing(description="a pump", enabled=False),
    (UniqueKey, {"kind": SECRET_KIND, "key": secret_key("s-1"), "holder": uuid.uuid4()}),
    (Channel, {"id": uuid.uuid4(), "owner": OWNER.user_id, "name": "room", "description": "",
               "metadata": {"floor": 2}, "enabled": True}),
    # What a provisioning makes (domain/provisioning_steps.py) and a connect command makes.
    (Connection, {"channel_id": uuid.uuid4(), "thing_id": uuid.uuid4()}),
    (Config, {"thing_id": uuid.uuid4(), "owner": OWNER.user_id, "external_id": "aa:bb", "external_key": "k",
              "name": "gw", "content": '{"agent": {}}', "channels": [str(uuid.uuid4())],
              "client_cert": "", "client_key": "", "ca_cert": ""}),
    (Provisioning, {"owner": OWNER.user_id, "external_id": "aa:bb", "external_key": "k", "name": "gw",
                    "layout": Layout().as_dict()}),
]


def _apps() -> list[Smq]:
    """The store's transcoder (msgspec) and the library's own."""
    return [Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo",
                     "TRANSCODER_TOPIC": "infra.transcoder:FastTranscoder"}),
            Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})]


def _both(cls: type[Entity], kwargs: dict[str, Any]) -> tuple[Entity, Entity]:
    return cls(**kwargs), fresh(cls, **kwargs)


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every event's timestamp is ``PINNED`` (both ways ask the library's clock)."""
    monkeypatch.setattr("eventsourcing.domain.datetime_now_with_tzinfo", lambda: PINNED)


@pytest.mark.parametrize(("cls", "kwargs"), CASES)
def test_the_aggregate_and_its_event_are_the_librarys(pinned: None, cls: type[Entity],
                                                      kwargs: dict[str, Any]) -> None:
    assert recipe(cls) is not None  # the shortcut, not the fallback, is what is compared
    lib, new = _both(cls, kwargs)
    assert type(new) is type(lib) and list(vars(new)) == list(vars(lib))
    assert {k: v for k, v in vars(new).items() if k != "_pending_events"} == \
        {k: v for k, v in vars(lib).items() if k != "_pending_events"}
    assert new.version == 1 and new.created_on is new.modified_on
    [lib_event], [new_event] = lib.pending_events, new.pending_events
    assert type(new_event) is type(lib_event) and new_event == lib_event
    assert list(vars(new_event).items()) == list(vars(lib_event).items())  # the same order
    # The aggregate holds what its event holds, as the library's does (the same objects).
    for name in ("tags", "metadata"):
        if name in kwargs:
            assert getattr(new, name) is vars(new_event)[name]
    # The event alone rebuilds it (as the repository does).
    rebuilt = new_event.mutate(None)
    assert rebuilt is not None
    assert {k: v for k, v in vars(rebuilt).items() if k != "_pending_events"} == \
        {k: v for k, v in vars(new).items() if k != "_pending_events"}


@pytest.mark.parametrize(("cls", "kwargs"), CASES)
def test_the_stored_event_is_the_librarys_byte_for_byte(pinned: None, cls: type[Entity],
                                                        kwargs: dict[str, Any]) -> None:
    for app in _apps():
        lib, new = _both(cls, kwargs)
        lib.stamp(META)
        new.stamp(META)
        a, b = (app.mapper.to_stored_event(x.collect_events()[0]) for x in (lib, new))
        assert (b.originator_id, b.originator_version, b.topic) == \
            (a.originator_id, a.originator_version, a.topic)
        assert b.state == a.state
        state = app.mapper.transcoder.decode(b.state)
        assert state["timestamp"] == PINNED and state["_meta"] == META.as_dict()


@pytest.mark.parametrize(("cls", "kwargs"), CASES)
def test_unpinned_the_stored_states_differ_only_by_time(cls: type[Entity], kwargs: dict[str, Any]) -> None:
    app = _apps()[0]
    lib, new = _both(cls, kwargs)
    states = [app.mapper.transcoder.decode(app.mapper.to_stored_event(x.collect_events()[0]).state)
              for x in (lib, new)]
    times = [s.pop("timestamp") for s in states]
    assert states[0] == states[1] and list(states[0]) == list(states[1])
    assert times[0] <= times[1] and times[1].tzinfo == times[0].tzinfo == UTC


def test_wrong_arguments_are_refused_as_the_library_refuses_them() -> None:
    _, kwargs = CASES[0]
    for bad in ({**kwargs, "colour": "red"}, {k: v for k, v in kwargs.items() if k != "name"}):
        with pytest.raises(TypeError):
            Thing(**bad)
        with pytest.raises(TypeError):
            fresh(Thing, **bad)
    claim = dict(CASES[2][1])
    with pytest.raises(TypeError):  # its id is made from its kind and key
        UniqueKey(id=uuid.uuid4(), **claim)
    with pytest.raises(TypeError):
        fresh(UniqueKey, id=uuid.uuid4(), **claim)
    with pytest.raises(TypeError):
        fresh(Thing, **{**kwargs, "id": str(kwargs["id"])})


class Applied(Aggregate):
    """A class the shortcut leaves to the library: its created event applies itself."""

    class Created(Aggregate.Created):
        size: int

        def apply(self, aggregate: Any) -> None:
            aggregate.doubled = self.size * 2

    @staticmethod
    def create_id(size: int) -> uuid.UUID:
        return derived_id("applied", size)

    def __init__(self, size: int) -> None:
        self.size = size


def test_a_class_it_does_not_cover_is_made_by_the_library(pinned: None) -> None:
    assert recipe(Applied) is None
    made = fresh(Applied, size=3)
    assert vars(made)["doubled"] == 6 and made.id == derived_id("applied", 3)
    assert made.pending_events == Applied(size=3).pending_events


@pytest.mark.parametrize("parts", [("unique", SECRET_KIND, "ab" * 32), ("x", uuid.uuid4(), 3),
                                   ("é☃ 𝄞",), (), ("",)])
def test_derived_id_is_uuid5(parts: tuple[object, ...]) -> None:
    assert derived_id(*parts) == uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts))


def _app() -> Smq:
    return _apps()[0]


def _count(app: Smq) -> int:
    return len(app.recorder.select_notifications(1, 100_000))


def test_a_bulk_create_reads_back_as_it_was_made() -> None:
    app = _app()
    items = [{"name": f"t{i}", "tags": ["x"], "metadata": {"i": i}} for i in range(5)]
    made = app.create_things(OWNER, items, meta=META).result
    assert _count(app) == 10
    for thing in made:
        assert app.repository.get(thing.id) == thing  # its class and every attribute
        claim = app.repository.get(key_id(SECRET_KIND, secret_key(thing.secret)))
        assert isinstance(claim, UniqueKey) and claim.held and claim.holder == thing.id
    channels = app.create_channels(OWNER, [{"name": "a"}, {"name": "b", "metadata": {"m": 1}}]).result
    for channel in channels:
        assert app.repository.get(channel.id) == channel
    stored = [app.mapper.transcoder.decode(n.state) for n in app.recorder.select_notifications(1, 10)]
    assert all(s["_meta"] == META.as_dict() for s in stored)


def test_a_bulk_create_refuses_a_taken_secret_or_id_and_stores_nothing() -> None:
    app = _app()
    first = app.create_things(OWNER, [{"name": "a", "credentials": {"secret": "taken"}}]).result[0]
    before = _count(app)
    cases = [  # the first try stores nothing (the store refuses), the retry reads and refuses
        ([{"name": "x"}, {"credentials": {"secret": "taken"}}], "item 1: secret already exists"),
        ([{"name": "x"}, {"name": "y"}, {"id": str(first.id)}], "item 2: thing id already exists"),
    ]
    for items, message in cases:
        with pytest.raises(Conflict) as info:
            app.create_things(OWNER, items)
        assert info.value.message == message
    with pytest.raises(Conflict) as info:
        app.create_channels(OWNER, [{"name": "c", "id": str(first.id)}])
    assert info.value.message == "item 0: channel id already exists"
    assert _count(app) == before
    # What was refused was not half-made: the same items, freed, are created whole.
    made = app.create_things(OWNER, [{"name": "x"}, {"credentials": {"secret": "other"}}]).result
    assert [app.repository.get(t.id) for t in made] == made and _count(app) == before + 4
