"""Things and channels on the in-memory store: uniqueness, bulk atomicity, access, no-op repeats."""

from __future__ import annotations

import uuid

import pytest

from domain.app import Principal, Smq
from domain.base import Meta, key_id
from domain.channels import Channel
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.things import SECRET_KIND, Thing, secret_key

OWNER = Principal(uuid.uuid4())
OTHER = Principal(uuid.uuid4())
ADMIN = Principal(uuid.uuid4(), admin=True)


@pytest.fixture
def app() -> Smq:
    return Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def events_of(app: Smq) -> list[str]:
    return [n.topic.split(":")[1] for n in app.recorder.select_notifications(1, 10_000)]


def test_disabling_twice_records_one_event() -> None:
    thing = Thing(id=uuid.uuid4(), owner=OWNER.user_id, name="weio", secret="s", tags=[], metadata={},
                  enabled=True)
    thing.disable()
    thing.disable()
    assert [type(e).__name__ for e in thing.collect_events()] == ["Created", "Disabled"]


def test_create_generates_id_and_secret_and_claims_the_secret_hash(app: Smq) -> None:
    done = app.create_things(OWNER, [{"name": "weio"}])
    thing = done.result[0]
    assert isinstance(thing.id, uuid.UUID) and uuid.UUID(thing.secret) and thing.enabled
    assert sorted(events_of(app)) == ["Thing.Created", "UniqueKey.Claimed"]
    stored = [app.mapper.transcoder.decode(n.state) for n in app.recorder.select_notifications(1, 10)]
    claim = next(s for s in stored if "kind" in s)
    assert claim["key"] == secret_key(thing.secret) and thing.secret not in str(claim)


def test_client_chosen_id_and_secret(app: Smq) -> None:
    tid = uuid.uuid4()
    thing = app.create_things(OWNER, [{"id": str(tid), "credentials": {"secret": "abc-123"}}]).result[0]
    assert thing.id == tid and thing.secret == "abc-123"
    with pytest.raises(Conflict, match="item 0: thing id already exists"):
        app.create_things(OWNER, [{"id": str(tid)}])
    with pytest.raises(Conflict, match="item 0: secret already exists"):
        app.create_things(OTHER, [{"credentials": {"secret": "abc-123"}}])


def test_bulk_is_all_or_nothing_and_names_the_item(app: Smq) -> None:
    app.create_things(OWNER, [{"name": "a", "credentials": {"secret": "taken"}}])
    before = len(events_of(app))
    cases = [
        ([{"name": "x"}, {"name": 5}], Invalid, "item 1: name must be a string"),
        ([{"name": "x"}, {"name": "y"}, {"credentials": {"secret": "taken"}}], Conflict,
         "item 2: secret already exists"),
        ([{"credentials": {"secret": "dup"}}, {"credentials": {"secret": "dup"}}], Conflict,
         "item 1: secret already exists"),
        ([{"name": "x"}, {"metadata": [1]}], Invalid, "item 1: metadata must be a JSON object"),
        ([{"id": "not-a-uuid"}], Invalid, "item 0: id must be a UUID"),
        ([], Invalid, "things must be a non-empty JSON array"),
    ]
    for items, error, message in cases:
        with pytest.raises(error) as info:
            app.create_things(OWNER, items)
        assert info.value.message == message
    assert len(events_of(app)) == before


def test_secret_change_releases_the_old_claim(app: Smq) -> None:
    a = app.create_things(OWNER, [{"credentials": {"secret": "one"}}]).result[0]
    b = app.create_things(OWNER, [{"credentials": {"secret": "two"}}]).result[0]
    with pytest.raises(Conflict, match="secret already exists"):
        app.change_thing_secret(OWNER, b.id, "one")
    app.change_thing_secret(OWNER, a.id, "three")
    assert not app.repository.get(key_id(SECRET_KIND, secret_key("one"))).held
    app.change_thing_secret(OWNER, b.id, "one")  # the released secret may be taken again
    assert app.repository.get(key_id(SECRET_KIND, secret_key("one"))).holder == b.id
    assert app.repository.get(b.id).secret == "one"


def test_enable_disable_repeat_records_one_event(app: Smq) -> None:
    t = app.create_things(OWNER, [{"name": "t"}]).result[0]
    assert app.set_thing_enabled(OWNER, t.id, False).position is not None
    assert app.set_thing_enabled(OWNER, t.id, False).position is None
    assert app.set_thing_enabled(OWNER, t.id, True).position is not None
    assert app.set_thing_enabled(OWNER, t.id, True).position is None
    assert events_of(app).count("Thing.Disabled") == 1 and events_of(app).count("Thing.Enabled") == 1


def test_access_rules(app: Smq) -> None:
    t = app.create_things(OWNER, [{"name": "t"}]).result[0]
    for call in (lambda: app.thing(OTHER, t.id), lambda: app.update_thing(OTHER, t.id, name="x"),
                 lambda: app.set_thing_enabled(OTHER, t.id, False),
                 lambda: app.share_thing(OTHER, t.id, [str(OTHER.user_id)], ["c_list"])):
        with pytest.raises(NotFound):
            call()
    app.share_thing(OWNER, t.id, [str(OTHER.user_id)], ["c_list"])
    assert app.thing(OTHER, t.id).id == t.id
    with pytest.raises(Forbidden):
        app.update_thing(OTHER, t.id, name="x")
    app.share_thing(OWNER, t.id, [str(OTHER.user_id)], ["c_update"])
    assert app.update_thing(OTHER, t.id, name="x").result.name == "x"
    with pytest.raises(Forbidden):
        app.set_thing_enabled(OTHER, t.id, False)
    with pytest.raises(Forbidden):
        app.share_thing(OTHER, t.id, [str(uuid.uuid4())], ["c_list"])
    assert app.repository.get(t.id).shares == {str(OTHER.user_id): ["c_list", "c_update"]}
    assert app.update_thing(ADMIN, t.id, name="by admin").result.name == "by admin"
    # Sharing what is already granted records nothing.
    assert app.share_thing(OWNER, t.id, [str(OTHER.user_id)], ["c_list"]).position is None
    with pytest.raises(Invalid):
        app.share_thing(OWNER, t.id, [str(OTHER.user_id)], ["m_write"])


def test_update_and_tags_no_op(app: Smq) -> None:
    t = app.create_things(OWNER, [{"name": "t", "metadata": {"a": 1}}]).result[0]
    assert app.update_thing(OWNER, t.id, name="t", metadata={"a": 1}).position is None
    assert app.update_thing_tags(OWNER, t.id, ["x", "x", "y"]).result.tags == ["x", "y"]
    with pytest.raises(Invalid):
        app.update_thing_tags(OWNER, t.id, "x")


def test_channels(app: Smq) -> None:
    done = app.create_channels(OWNER, [{"name": "joe"}, {"name": "joe", "description": "d"}])
    a, b = done.result
    assert isinstance(a, Channel) and a.enabled and b.description == "d"
    with pytest.raises(Invalid, match="item 1"):
        app.create_channels(OWNER, [{"name": "ok"}, {"description": 3}])
    with pytest.raises(Conflict, match="item 0: channel id already exists"):
        app.create_channels(OWNER, [{"id": str(a.id)}])
    with pytest.raises(NotFound):
        app.update_channel(OTHER, a.id, name="x")
    assert app.update_channel(OWNER, a.id, description="new").result.description == "new"
    assert app.set_channel_enabled(OWNER, a.id, False).position is not None
    assert app.set_channel_enabled(OWNER, a.id, False).position is None


def test_events_carry_actor_and_correlation(app: Smq) -> None:
    meta = Meta(actor=str(OWNER.user_id), correlation_id="corr", causation_id="req")
    app.create_things(OWNER, [{"name": "a"}, {"name": "b"}], meta=meta)
    decoded = [app.mapper.transcoder.decode(n.state) for n in app.recorder.select_notifications(1, 10)]
    assert len(decoded) == 4 and all(d["_meta"] == meta.as_dict() for d in decoded)
