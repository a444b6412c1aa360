"""Enable, disable, status, share, update and update_tags are decided once
(``domain.traits``) for Thing, Channel and User, while each keeps its own events: the topics events were stored under, the bus
subjects and the views' handlers are those of before."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.app import Smq
from domain.channels import Channel
from domain.things import Thing
from domain.users import User
from projections import catalogue
from projections.envelope import name_of

OWNER = uuid.uuid4()

# The topics stored events carry: a rename or a move of a class would orphan them.
TOPICS = {
    Thing.Enabled: "domain.things:Thing.Enabled",
    Thing.Disabled: "domain.things:Thing.Disabled",
    Thing.Shared: "domain.things:Thing.Shared",
    Channel.Enabled: "domain.channels:Channel.Enabled",
    Channel.Disabled: "domain.channels:Channel.Disabled",
    Channel.Shared: "domain.channels:Channel.Shared",
    Thing.Updated: "domain.things:Thing.Updated",
    Thing.TagsUpdated: "domain.things:Thing.TagsUpdated",
    User.Updated: "domain.users:User.Updated",
    User.TagsUpdated: "domain.users:User.TagsUpdated",
    User.Enabled: "domain.users:User.Enabled",
    User.Disabled: "domain.users:User.Disabled",
}


def _recorded(agg: Any) -> list[str]:
    """The topics of the events ``agg`` records: those of its own event classes, which the views
    and the bus tell apart (an ``@event`` on a shared base would record the base's class)."""
    return [get_topic(type(e)) for e in agg.collect_events()]


def _thing() -> Thing:
    return Thing(id=uuid.uuid4(), owner=OWNER, name="t", secret=f"s-{uuid.uuid4()}", tags=[],
                 metadata={}, enabled=True)


def _channel() -> Channel:
    return Channel(id=uuid.uuid4(), owner=OWNER, name="c", description="", metadata={}, enabled=True)


def _user() -> User:
    return User(identity=f"{uuid.uuid4()}@example.com", name="u", secret_hash="h", metadata={},
                tags=[], role="user", enabled=True)


def test_the_shared_events_keep_their_topics_and_bus_names() -> None:
    for cls, topic in TOPICS.items():
        assert get_topic(cls) == topic
        assert cls.__qualname__ == topic.partition(":")[2]
    assert name_of(Thing.TagsUpdated) == ("thing", "tags_updated")
    assert name_of(Channel.Shared) == ("channel", "shared")
    # Each aggregate has events of its own: the views tell a thing's from a channel's.
    assert len(set(TOPICS)) == len(TOPICS)
    things = catalogue.view("things").handles
    assert Thing.Enabled in things and Channel.Enabled not in things and User.Enabled not in things


@pytest.mark.parametrize("make", [_thing, _channel, _user], ids=["thing", "channel", "user"])
def test_repeating_enable_or_disable_records_nothing(make: Any) -> None:
    agg = make()
    agg.enable()
    agg.disable()
    agg.disable()
    assert agg.status == "disabled"
    agg.enable()
    agg.enable()
    assert agg.status == "enabled"
    cls = type(agg)
    assert _recorded(agg) == [get_topic(cls.Created), TOPICS[cls.Disabled], TOPICS[cls.Enabled]]


@pytest.mark.parametrize("make", [_thing, _user], ids=["thing", "user"])
def test_an_update_that_changes_nothing_records_nothing(make: Any) -> None:
    agg = make()
    agg.update(None, None)
    agg.update(agg.name, {})
    agg.update("renamed", None)
    agg.update_tags([])
    agg.update_tags(["a"])
    assert (agg.name, agg.metadata, agg.tags) == ("renamed", {}, ["a"])
    cls = type(agg)
    assert _recorded(agg) == [get_topic(cls.Created), TOPICS[cls.Updated], TOPICS[cls.TagsUpdated]]


@pytest.mark.parametrize("make", [_thing, _channel], ids=["thing", "channel"])
def test_sharing_records_only_what_changes(make: Any) -> None:
    agg = make()
    friend = uuid.uuid4()
    agg.share([friend, OWNER], ["c_update"])
    agg.share([friend], ["c_update"])
    assert agg.shares == {str(friend): ["c_update"]}
    assert _recorded(agg) == [get_topic(type(agg).Created), TOPICS[type(agg).Shared]]


def _restored(app: Smq, agg: Any, topic: str) -> Any:
    """``agg`` saved, with its last event stored again under the literal ``topic``, loaded."""
    app.save(agg)
    *earlier, last = app.repository.event_store.get(agg.id)
    stored = app.mapper.to_stored_event(last)
    fresh = Smq()
    fresh.recorder.insert_events([app.mapper.to_stored_event(e) for e in earlier] + [
        StoredEvent(originator_id=stored.originator_id, originator_version=stored.originator_version,
                    topic=topic, state=stored.state)])
    return fresh.repository.get(agg.id)


def test_events_stored_under_the_topics_of_before_still_load() -> None:
    app = Smq()
    thing = _thing()
    thing.disable()
    assert _restored(app, thing, "domain.things:Thing.Disabled").status == "disabled"
    thing = _thing()
    thing.disable()
    app.save(thing)
    thing.enable()
    assert _restored(app, thing, "domain.things:Thing.Enabled").enabled is True
    channel, friend = _channel(), uuid.uuid4()
    channel.share([friend], ["c_list"])
    assert _restored(app, channel, "domain.channels:Channel.Shared").shares == {str(friend): ["c_list"]}
    user = _user()
    user.update_tags(["t"])
    assert _restored(app, user, "domain.users:User.TagsUpdated").tags == ["t"]
    user = _user()
    user.disable()
    loaded = _restored(app, user, "domain.users:User.Disabled")
    assert (loaded.enabled, loaded.tokens_epoch) == (False, 1)
