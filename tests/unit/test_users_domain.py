"""Users on the in-memory store: invariants, no-op repeats, audit metadata."""

from __future__ import annotations

import pytest

from domain.app import Principal, Smq
from domain.base import Meta
from domain.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from domain.users import User


@pytest.fixture
def app() -> Smq:
    return Smq(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def events_of(app: Smq) -> list[str]:
    return [n.topic.split(":")[1] for n in app.recorder.select_notifications(1, 1000)]


def test_create_claims_identity_and_returns_position(app: Smq) -> None:
    done = app.create_user("a@b.co", "12345678", name="A")
    assert done.position == 2
    assert sorted(events_of(app)) == ["UniqueKey.Claimed", "User.Created"]
    assert app.user_by_identity("A@B.co").id == done.result.id


def test_duplicate_identity_is_a_conflict_and_saves_nothing(app: Smq) -> None:
    app.create_user("a@b.co", "12345678")
    with pytest.raises(Conflict):
        app.create_user("A@b.co", "87654321")
    assert len(events_of(app)) == 2


@pytest.mark.parametrize("identity, secret", [("not-an-email", "12345678"), ("a@b.co", "short"),
                                              (None, "12345678"), ("a@b.co", None)])
def test_bad_identity_or_secret_is_invalid(app: Smq, identity: object, secret: object) -> None:
    with pytest.raises(Invalid):
        app.create_user(identity, secret)
    assert events_of(app) == []


def test_authentication_rules(app: Smq) -> None:
    u = app.create_user("a@b.co", "12345678").result
    assert app.authenticate_user("a@b.co", "12345678").id == u.id
    for identity, secret in [("a@b.co", "wrong-secret"), ("x@b.co", "12345678"), ("a@b.co", None)]:
        with pytest.raises(Unauthenticated):
            app.authenticate_user(identity, secret)
    app.set_user_enabled(Principal(u.id), u.id, False)
    with pytest.raises(Unauthenticated):
        app.authenticate_user("a@b.co", "12345678")


def test_disabling_twice_records_one_event(app: Smq) -> None:
    u = app.create_user("a@b.co", "12345678").result
    first = app.set_user_enabled(Principal(u.id), u.id, False)
    second = app.set_user_enabled(Principal(u.id), u.id, False)
    assert first.position is not None and second.position is None
    assert events_of(app).count("User.Disabled") == 1


def test_user_changes_only_itself_admin_anyone(app: Smq) -> None:
    a = app.create_user("a@b.co", "12345678").result
    b = app.create_user("b@b.co", "12345678").result
    with pytest.raises(NotFound):
        app.update_user(Principal(a.id), b.id, name="x")
    app.update_user(Principal(a.id, admin=True), b.id, name="by admin")
    assert app.repository.get(b.id).name == "by admin"


def test_admin_cannot_disable_itself(app: Smq) -> None:
    admin = app.create_user("root@b.co", "12345678", role="admin").result
    with pytest.raises(Forbidden):
        app.set_user_enabled(Principal(admin.id, admin=True), admin.id, False)


def test_secret_change_needs_the_old_secret(app: Smq) -> None:
    u = app.create_user("a@b.co", "12345678").result
    with pytest.raises(Unauthenticated):
        app.change_user_secret(Principal(u.id), "wrong-old", "newsecret1")
    app.change_user_secret(Principal(u.id), "12345678", "newsecret1")
    assert app.authenticate_user("a@b.co", "newsecret1").id == u.id


def test_events_carry_actor_and_correlation(app: Smq) -> None:
    meta = Meta(actor="someone", correlation_id="corr-1", causation_id="req-1")
    u = app.create_user("a@b.co", "12345678", meta=meta).result
    stored = app.recorder.select_notifications(1, 10)
    decoded = [app.mapper.transcoder.decode(n.state) for n in stored]
    assert all(d["_meta"] == meta.as_dict() for d in decoded)
    assert isinstance(app.repository.get(u.id), User)


def test_a_new_secret_or_a_disable_starts_a_new_token_epoch() -> None:
    from domain.users import User

    user = User(identity="e@example.com", name="", secret_hash="h", metadata={}, tags=[], role="user",
                enabled=True)
    assert user.tokens_epoch == 0
    user.change_secret(secret_hash="h2")
    user.disable()
    user.enable()  # enabling again revives nothing
    assert user.tokens_epoch == 2
