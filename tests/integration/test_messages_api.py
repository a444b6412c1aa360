"""The HTTP message adapter and the access check, through the real NATS and Redis: a connected
thing's message reaches subscribers byte for byte; a disconnect, a disabled thing or a changed
secret stops the old way in at once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from infra.settings import Settings
from tests.conftest import Client

SENML = b'[{"bn":"some-base-name:","bt":1.276020076001e+09, "bu":"A","bver":5, "n":"voltage","u":"V","v":120.1}]\n'


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Any]:
    nc = await nats.connect(settings.nats_url, connect_timeout=5)
    try:
        yield nc
    finally:
        await nc.close()


async def publish(client: Client, cid: str, secret: str, body: bytes, subtopic: str = "") -> tuple[int, Any]:
    path = f"/http/channels/{cid}/messages" + (f"/{subtopic}" if subtopic else "")
    st, out, _ = await client.call("POST", path, data=body,
                                   headers={"Authorization": f"Thing {secret}", "Content-Type": "application/senml+json"})
    return st, out


async def access(client: Client, cid: str, secret: str, action: str = "m_write") -> int:
    st, _, _ = await client.call("POST", f"/channels/{cid}/access", {"secret": secret, "action": action})
    return st


async def connected_thing(client: Client, token: str, secret: str, actions: list[str] | None = None
                          ) -> tuple[str, str]:
    _, thing, _ = await client.call("POST", "/things", {"name": "dev", "credentials": {"secret": secret}},
                                    token=token)
    _, ch, _ = await client.call("POST", "/channels", {"name": "ch"}, token=token)
    body = {"actions": actions} if actions else None
    st, _, _ = await client.call("PUT", f"/channels/{ch['id']}/things/{thing['id']}", body, token=token)
    assert st == 201
    return thing["id"], ch["id"]


async def test_message_reaches_subscribers_byte_for_byte(client: Client, settings: Settings, bus: Any) -> None:
    _, token = await client.user()
    tid, cid = await connected_thing(client, token, "pub-secret-1")
    sub = await bus.subscribe(f"{settings.messages_subject}.{cid}.messages")
    deep = await bus.subscribe(f"{settings.messages_subject}.{cid}.messages.>")
    await bus.flush()

    # Right after the connect: read-your-writes for the thing, with no user.
    assert await publish(client, cid, "pub-secret-1", SENML) == (202, None)
    msg = await sub.next_msg(timeout=5)
    assert msg.data == SENML and msg.subject == f"{settings.messages_subject}.{cid}.messages"
    # Who sent it and its content type travel in headers, the body untouched.
    assert msg.headers == {"Smq-Publisher": tid, "Content-Type": "application/senml+json"}
    binary = bytes(range(256))
    assert (await publish(client, cid, "pub-secret-1", binary))[0] == 202
    assert (await sub.next_msg(timeout=5)).data == binary

    # Subtopics as NATS maps MQTT topics: slashes part tokens, a dot inside a level is "//";
    # wildcards (NATS's and MQTT's) and empty levels are refused.
    assert (await publish(client, cid, "pub-secret-1", b"t", "room/1.temp"))[0] == 202
    msg = await deep.next_msg(timeout=5)
    assert msg.subject == f"{settings.messages_subject}.{cid}.messages.room.1//temp" and msg.data == b"t"
    for bad in ["a/*", "a/>", "a//b", "a/", "x*", "a/+/b", "a/#", "a%20b"]:
        st, err = await publish(client, cid, "pub-secret-1", b"x", bad)
        assert st == 400 and err["error"] == "malformed subtopic", bad

    assert await access(client, cid, "pub-secret-1", "m_write") == 200
    st, body, _ = await client.call("POST", f"/channels/{cid}/access", {"secret": "pub-secret-1", "action": "m_read"})
    assert st == 200 and body == {"id": tid, "thing_id": tid, "authorized": True}
    assert await access(client, cid, "pub-secret-1", "c_list") == 400
    assert await access(client, cid, "wrong-secret") == 401
    assert await access(client, str(uuid.uuid4()), "pub-secret-1") == 403
    assert (await publish(client, cid, "wrong-secret", b"x"))[0] == 401
    st, _, _ = await client.call("POST", f"/http/channels/{cid}/messages", data=b"x")
    assert st == 401
    # Nothing refused reached the bus.
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.2)


async def test_read_only_connection_may_not_publish(client: Client) -> None:
    _, token = await client.user()
    _, cid = await connected_thing(client, token, "reader-1", ["m_read"])
    assert await access(client, cid, "reader-1", "m_read") == 200
    assert await access(client, cid, "reader-1", "m_write") == 403
    assert (await publish(client, cid, "reader-1", b"x"))[0] == 403
    # Another thing of the same user, never connected.
    await client.call("POST", "/things", {"credentials": {"secret": "loner-1"}}, token=token)
    assert (await publish(client, cid, "loner-1", b"x"))[0] == 403


async def test_disconnect_disable_and_secret_change_stop_it_at_once(client: Client) -> None:
    _, token = await client.user()
    tid, cid = await connected_thing(client, token, "old-secret-1")
    assert (await publish(client, cid, "old-secret-1", b"x"))[0] == 202

    # Disconnected: refused on the very next request.
    st, _, _ = await client.call("DELETE", f"/channels/{cid}/things/{tid}", token=token)
    assert st == 204
    assert (await publish(client, cid, "old-secret-1", b"x"))[0] == 403
    assert await access(client, cid, "old-secret-1") == 403
    await client.call("PUT", f"/channels/{cid}/things/{tid}", token=token)
    assert (await publish(client, cid, "old-secret-1", b"x"))[0] == 202

    # Disabled: refused; enabled again: accepted.
    st, _, _ = await client.call("POST", f"/things/{tid}/disable", token=token)
    assert st == 200
    assert (await publish(client, cid, "old-secret-1", b"x"))[0] == 403
    assert await access(client, cid, "old-secret-1", "m_read") == 403
    await client.call("POST", f"/things/{tid}/enable", token=token)
    assert (await publish(client, cid, "old-secret-1", b"x"))[0] == 202

    # A disabled channel carries nothing.
    await client.call("POST", f"/channels/{cid}/disable", token=token)
    assert (await publish(client, cid, "old-secret-1", b"x"))[0] == 403
    await client.call("POST", f"/channels/{cid}/enable", token=token)
    assert await access(client, cid, "old-secret-1") == 200

    # A new secret: the old one is unknown at once, the new one works at once.
    st, _, _ = await client.call("PATCH", f"/things/{tid}/secret", {"secret": "new-secret-1"}, token=token)
    assert st == 200
    assert (await publish(client, cid, "old-secret-1", b"x"))[0] == 401
    assert await access(client, cid, "old-secret-1") == 401
    assert (await publish(client, cid, "new-secret-1", b"x"))[0] == 202
    assert await access(client, cid, "new-secret-1") == 200


async def test_cli_connections_identify_and_messages(client: Client, settings: Settings, bus: Any,
                                                     monkeypatch: Any, capsys: Any) -> None:
    import asyncio
    import json

    from service.cli import main

    _, token = await client.user()
    monkeypatch.setenv("SMQ_URL", client.base)
    monkeypatch.setenv("SMQ_TOKEN", token)

    async def smq(*argv: str) -> Any:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(argv))  # the CLI blocks: keep the loop serving
        out = capsys.readouterr()
        assert code == 0, out.err
        return json.loads(out.out) if out.out.strip() else None

    thing = await smq("things", "create", "cli-dev")
    ch = await smq("channels", "create", "cli-ch")
    tid, cid, secret = thing["id"], ch["id"], thing["credentials"]["secret"]
    policy = await smq("things", "connect", tid, cid)
    assert policy["subject"] == tid and policy["object"] == cid
    assert (await smq("things", "connections", tid))["channels"][0]["id"] == cid
    assert (await smq("channels", "connections", cid))["things"][0]["id"] == tid
    assert await smq("things", "identify", secret) == {"id": tid}

    sub = await bus.subscribe(f"{settings.messages_subject}.{cid}.messages")
    await bus.flush()
    payload = '[{"n":"temp","v":21.5}]'
    assert await smq("messages", "send", cid, payload, secret) == {"status": "accepted"}
    assert (await sub.next_msg(timeout=5)).data == payload.encode()

    assert await smq("things", "disconnect", tid, cid) is None
    assert (await smq("things", "connections", tid))["total"] == 0
    code = await asyncio.to_thread(main, ["messages", "send", cid, payload, secret])
    assert code == 1 and "403" in capsys.readouterr().err
