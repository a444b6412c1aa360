"""Sealed credentials: what a trusted consumer with the bus key opens, and what it refuses."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest

from projections.envelope import decode, encode, from_stored
from projections.sealing import SEALED, Sealer, Unsealable, associated, is_sealed

KEY = "k" * 40
AD = associated("thing", "8d3c1f9e", 1, "secret")
TOPIC = "domain.things:Thing.Created"


def _stored_thing(secret: str) -> tuple[str, uuid.UUID, dict[str, object]]:
    state = {"owner": uuid.uuid4(), "name": "t", "secret": secret, "tags": [], "metadata": {},
             "enabled": True, "description": "", "class_version": 2,
             "timestamp": dt.datetime.now(dt.UTC), "originator_topic": "domain.things:Thing"}
    return TOPIC, uuid.uuid4(), state


def test_a_sealed_value_opens_with_its_key_and_associated_data() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal("device-secret-1", AD)
    assert is_sealed(sealed) and sealed["sealed"].startswith(f"v1:{sealer.key_id}:")
    assert "device-secret-1" not in json.dumps(sealed)
    assert sealer.open(sealed, AD) == "device-secret-1"
    assert sealer.seal("device-secret-1", AD) != sealed  # a fresh nonce each time


def test_a_tampered_value_is_refused() -> None:
    sealer = Sealer(KEY)
    version, kid, text = sealer.seal("device-secret-1", AD)["sealed"].split(":")
    blob = bytearray(base64.urlsafe_b64decode(text))
    blob[-1] ^= 1
    tampered = {"sealed": f"{version}:{kid}:{base64.urlsafe_b64encode(bytes(blob)).decode()}"}
    with pytest.raises(Unsealable):
        sealer.open(tampered, AD)
    with pytest.raises(Unsealable):
        sealer.open({"sealed": f"{version}:{kid}:not base64!"}, AD)
    with pytest.raises(Unsealable, match="unknown format"):
        sealer.open({"sealed": f"v9:{kid}:{text}"}, AD)


def test_a_value_moved_to_another_event_or_field_is_refused() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal("device-secret-1", AD)
    for other in (associated("thing", "another-thing", 1, "secret"),
                  associated("thing", "8d3c1f9e", 2, "secret"),
                  associated("thing", "8d3c1f9e", 1, "external_key"),
                  associated("config", "8d3c1f9e", 1, "secret")):
        with pytest.raises(Unsealable):
            sealer.open(sealed, other)


def test_another_key_is_refused_by_name_and_a_rotation_opens_both() -> None:
    old, new = Sealer("o" * 40), Sealer("n" * 40)
    sealed = old.seal("device-secret-1", AD)
    with pytest.raises(Unsealable, match="SMQ_BUS_KEY"):
        new.open(sealed, AD)
    rotated = Sealer(f"{'n' * 40},{'o' * 40}")  # the first seals, all open
    assert rotated.key_id == new.key_id and rotated.open(sealed, AD) == "device-secret-1"
    with pytest.raises(ValueError, match="at least 32"):
        Sealer("short")


def test_envelopes_carry_credentials_sealed_and_a_trusted_consumer_opens_them() -> None:
    sealer = Sealer(KEY)
    topic, tid, state = _stored_thing("device-secret-1")
    env = from_stored(7, topic, tid, 1, dict(state), sealer)
    raw = encode(env)
    assert b"device-secret-1" not in raw and is_sealed(env.data["secret"])
    assert env.data["name"] == "t"  # only the credentials are sealed
    # Without the key the value stays sealed; with it, it opens.
    assert is_sealed(decode(raw).data["secret"])
    assert decode(raw, sealer).data["secret"] == "device-secret-1"
    # A value sealed for another event does not open in this one.
    _, other_id, other_state = _stored_thing("device-secret-2")
    moved = from_stored(8, topic, other_id, 1, dict(other_state), sealer)
    moved.data["secret"] = env.data["secret"]
    with pytest.raises(Unsealable, match=f"thing {other_id} version 1, field secret"):
        decode(encode(moved), sealer)
    # An event published before sealing (plain) still reads.
    assert decode(encode(from_stored(9, topic, tid, 1, dict(state))), sealer).data["secret"] == "device-secret-1"


def test_the_sealed_fields_are_the_credentials_of_the_events() -> None:
    assert {"secret", "external_key", "client_key"} <= SEALED and "secret_hash" not in SEALED


def test_the_recipe_of_docs_events_md_opens_a_sealed_field() -> None:
    """A consumer without this package: only `cryptography` and the documented format."""
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    topic, tid, state = _stored_thing("device-secret-1")
    env = json.loads(encode(from_stored(7, topic, tid, 3, dict(state), Sealer(KEY))))
    aead = AESGCM(hashlib.sha256(b"smq-es/bus/" + KEY.encode()).digest())
    version, _key_id, text = env["data"]["secret"]["sealed"].split(":", 2)
    blob = base64.urlsafe_b64decode(text)
    ad = f"smq-es/{version}\n{env['aggregate']}\n{env['aggregate_id']}\n{env['version']}\nsecret"
    assert aead.decrypt(blob[:12], blob[12:], ad.encode()).decode() == "device-secret-1"


def _claim(sealer: Sealer | None, key: str, position: int = 5) -> bytes:
    """A unique claim as the relay publishes it (its key sealed with ``sealer``)."""
    state = {"kind": "thing_secret", "key": key, "holder": uuid.uuid4(),
             "timestamp": dt.datetime.now(dt.UTC), "originator_topic": "domain.base:UniqueKey"}
    return encode(from_stored(position, "domain.base:UniqueKey.Claimed", uuid.uuid4(), 1, state, sealer))


def test_the_projector_opens_only_the_events_its_views_read_sealed() -> None:
    from redis.asyncio import Redis

    from domain.base import UniqueKey
    from domain.things import Thing
    from projections.catalogue import VIEWS
    from projections.envelope import name_of, sealed_read_by

    redis = Redis.from_url("redis://127.0.0.1:1")  # never connected to
    views = {v.name: v.over_redis(redis, "p:") if v.redis else v.over_sql(None) for v in VIEWS}
    opened = sealed_read_by(views.values())
    assert opened is not None and {name_of(Thing.Created), name_of(Thing.SecretChanged)} <= opened
    assert name_of(UniqueKey.Claimed) not in opened  # no view reads a claim's key
    assert sealed_read_by([views["events"]]) == frozenset()  # the audit log hides them unopened
    assert sealed_read_by([views["thing_keys"]]) == {name_of(Thing.Created), name_of(Thing.SecretChanged)}
    assert sealed_read_by([views["things"], object()]) is None  # a view that says nothing: every event

    sealer = Sealer(KEY)
    topic, tid, state = _stored_thing("device-secret-1")
    thing = encode(from_stored(7, topic, tid, 1, dict(state), sealer))
    assert decode(thing, sealer, opened).data["secret"] == "device-secret-1"
    claim = decode(_claim(sealer, "a" * 64), sealer, opened)
    assert is_sealed(claim.data["key"])  # left sealed: not opened, not checked
    assert decode(_claim(sealer, "a" * 64), sealer).data["key"] == "a" * 64  # every event: as before


def test_the_audit_log_hides_a_credential_alike_whether_opened_or_not() -> None:
    from projections.events import redact

    sealer = Sealer(KEY)
    for key in ("a" * 64, "", "x"):
        raw = _claim(sealer, key)
        sealed, opened = decode(raw).data, decode(raw, sealer).data
        assert is_sealed(sealed["key"]) and opened["key"] == key
        assert redact(sealed, top=True) == redact(opened, top=True) == {**opened, "key": "***" if key else ""}
    nested = {"secret": None, "metadata": {"key": "k", "list": [{"client_key": ""}, 1, [{"new_secret": "s"}]]},
              "tags": ["a"], "external_key": sealer.seal("", AD)}
    assert redact(nested, top=True) == {
        "secret": None, "metadata": {"key": "***", "list": [{"client_key": ""}, 1, [{"new_secret": "***"}]]},
        "tags": ["a"], "external_key": ""}
    plain = {"name": "t", "tags": ["a"], "metadata": {"k": [1, {"x": 2}]}}
    assert redact(plain, top=True) is plain  # nothing to hide: not copied
    # Below the top, a value that looks sealed is not a sealed credential of the event: "***".
    assert redact({"metadata": {"key": sealer.seal("", AD)}}, top=True) == {"metadata": {"key": "***"}}
