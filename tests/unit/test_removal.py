"""A failed provisioning's compensation removes what it made, on the in-memory store: nothing in
the write model finds a removed thing or channel, its secret is free, its history keeps it."""

from __future__ import annotations

import uuid

import pytest

from domain.app import Principal, Smq
from domain.channels import Channel
from domain.commands import ProvisionStep
from domain.errors import NotFound
from domain.provisioning import FAILED, STEPS, Layout, provisioning_id
from domain.provisioning_steps import UNDO
from domain.things import SECRET_KIND, Thing, secret_key

OWNER = Principal(uuid.uuid4())


@pytest.fixture
def app() -> Smq:
    return Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def _failed_after(app: Smq, last: str) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """A provisioning whose steps up to ``last`` are done, then failed and compensated; the
    ids of the things and channels it made."""
    prov_id = app.start_provisioning(OWNER, "gw", "key", "", Layout()).result.id
    done = STEPS[:STEPS.index(last) + 1]
    for step in done:
        app.provision_step(ProvisionStep(prov_id, step), None)
    app.fail_provisioning(prov_id, "gateway", "Invalid", "injected")
    for step in reversed(done):
        app.compensate_step(prov_id, step)
    p = app.end_compensation(prov_id).result
    assert p.status == FAILED and p.compensated == list(reversed(done))
    return ([p.made_id("thing", i) for i in range(len(p.layout["things"]))],
            [p.made_id("channel", i) for i in range(len(p.layout["channels"]))])


def test_compensation_removes_the_layout_s_things_and_channels(app: Smq) -> None:
    [tid], channels = _failed_after(app, "connections")
    thing = app.repository.get(tid)
    assert isinstance(thing, Thing) and thing.removed
    for cid in channels:
        channel = app.repository.get(cid)
        assert isinstance(channel, Channel) and channel.removed
    # Nothing finds them: reads, connects, the secret's claim.
    with pytest.raises(NotFound):
        app.thing(OWNER, tid)
    with pytest.raises(NotFound):
        app.channel(OWNER, channels[0])
    with pytest.raises(NotFound):
        app.connect(OWNER, [str(channels[0])], [str(tid)])
    assert app.holder_of(SECRET_KIND, secret_key(thing.secret)) is None
    # The secret is free for another thing; the history keeps the removed one, created to removed.
    made = app.create_things(OWNER, [{"name": "again", "credentials": {"secret": thing.secret}}])
    assert made.result[0].id != tid
    history = [type(e).__name__ for e in app.events.get(tid)]
    assert history[0] == "Created" and history[-1] == "Removed" and history.count("Removed") == 1
    # Undoing again changes nothing.
    p = app.provisioning(provisioning_id(OWNER.user_id, "gw"))
    assert UNDO["things"](app.core.reads(), p) == UNDO["channels"](app.core.reads(), p) == []


def test_removing_twice_records_one_event() -> None:
    thing = Thing(id=uuid.uuid4(), owner=OWNER.user_id, name="t", secret="s", tags=[], metadata={},
                  enabled=True)
    thing.remove()
    thing.remove()
    assert [type(e).__name__ for e in thing.collect_events()] == ["Created", "Removed"]


def test_a_new_attempt_after_removal_makes_new_ones(app: Smq) -> None:
    things, channels = _failed_after(app, "channels")
    p = app.start_provisioning(OWNER, "gw", "key", "", Layout()).result
    assert p.attempt == 2
    assert p.made_id("thing", 0) not in things and p.made_id("channel", 0) not in channels
    app.provision_step(ProvisionStep(p.id, "things"), None)
    assert app.thing(OWNER, p.made_id("thing", 0)).name == "thing"
