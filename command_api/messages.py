"""The HTTP message adapter and the access check for brokers: may this thing secret publish
(or subscribe) on this channel? Answered from Redis alone, fresh within the read-your-writes
bound."""

from __future__ import annotations

import hmac
import re
from uuid import UUID

import msgspec
from aiohttp import web

from command_api import sqlauth, wire
from command_api.context import container
from command_api.errors import BadRequest
from command_api.listing import ID
from command_api.ratelimit import THING, Failures, address_of, failures, refuse_after_ms
from command_api.things import thing_secret
from domain.connections import CONNECTION_ACTIONS
from domain.errors import Forbidden, Unauthenticated
from domain.things import secret_key
from projections.access import Snapshot
from service.container import Container

routes = web.RouteTableDef()

CID = ID.replace("{id:", "{cid:")
# An MQTT topic level as a subject token: no wildcard (NATS's or MQTT's), no white space.
_LEVEL = re.compile(r"^[^\s*>+#]+$")
ATTEMPTS = 3
PUBLISHER = "Smq-Publisher"  # the header naming the thing that published over HTTP


class AccessRequest(msgspec.Struct):
    secret: str = ""
    action: str = ""


def subject_of(root: str, channel_id: str, subtopic: str | None) -> str:
    """``<root>.<channel>.messages[.<subtopic>]``: the subject NATS gives the MQTT topic
    ``channels/<channel>/messages[/<subtopic>]`` (``/`` parts levels; a ``.`` inside a level
    is ``//``), so HTTP, MQTT and NATS publishers and subscribers meet. 400 for wildcards or
    empty levels, which would publish where nobody asked."""
    subject = f"{root}.{channel_id}.messages"
    if subtopic is None:
        return subject
    levels = subtopic.split("/")
    if any(not _LEVEL.match(level) for level in levels):
        raise BadRequest("malformed subtopic")
    return f"{subject}.{'.'.join(level.replace('.', '//') for level in levels)}"


async def authorized(c: Container, secret: str, channel_id: str, action: str,
                     limits: Failures | None = None, address: str = "") -> str:
    """The id of the thing holding ``secret`` when it may do ``action`` on the channel.

    One Redis script reads the secret's thing, its connection, the channel's status, the
    positions recorded under the thing's and the channel's ids by the commands that changed
    them, and how far the views are. When the views are behind those positions we wait for
    them (bounded) and read again, so a disconnect, a disabled thing or a changed secret
    stops working at once. Only an unknown secret waits, as ``/identify`` does, for the
    store's head: a thing created a moment ago is found too.

    With ``limits``, the same script says whether ``address`` is refused for failing too
    often (429, nothing checked), and a wrong secret is counted against it: a right secret
    pays no round trip more.
    While a Redis view is not whole (Redis lost it; the projector rebuilds it) the SQL views
    answer the same way.
    """
    view, keys, fr = c.access(), c.thing_keys(), c.freshness
    key_hash = secret_key(secret)
    seen_thing, waited_head = False, False
    block = limits.block_key(THING, address) if limits is not None and limits.enabled else None

    async def read(block: str | None = None) -> tuple[Snapshot, tuple[str, ...]]:
        snap = await view.snapshot(keys, fr.key(""), key_hash, channel_id, block)
        refuse_after_ms(snap.blocked_ms)
        if snap.whole:
            return snap, (keys.name, view.name)
        return await sqlauth.snapshot(c, secret, key_hash, channel_id), sqlauth.ACCESS_VIEWS

    snap, views = await read(block)
    for _ in range(ATTEMPTS):
        if snap.thing_id is None:
            if seen_thing or waited_head:
                break  # the thing's own position said it no longer holds this secret
            await fr.wait(views, await c.store.max_position())
            waited_head = True
        elif snap.reached >= snap.target:
            break
        else:
            seen_thing = True
            await fr.wait(views, snap.target)
        snap, views = await read()
    try:
        return decide(snap, key_hash, action)
    except Unauthenticated:
        if limits is not None:
            await limits.failed(THING, None, address)
        raise


def decide(snap: Snapshot, key_hash: str, action: str) -> str:
    if snap.thing_id is None or snap.held_key is None or not hmac.compare_digest(
            snap.held_key.encode(), key_hash.encode()):
        raise Unauthenticated("invalid thing secret")
    if not snap.enabled:
        raise Forbidden("thing is disabled")
    if not snap.channel_enabled:
        raise Forbidden("channel is disabled")
    if action not in snap.actions:
        raise Forbidden(f"thing is not connected to this channel with {action}")
    return snap.thing_id


def _channel_id(request: web.Request) -> str:
    return str(UUID(request.match_info["cid"]))  # the route admits only UUIDs


async def _publish(request: web.Request, subtopic: str | None) -> web.Response:
    c = container(request)
    channel_id = _channel_id(request)
    secret = thing_secret(request)
    subject = subject_of(c.settings.messages_subject, channel_id, subtopic)
    payload = await request.read()
    if len(payload) > c.nc.max_payload:
        raise BadRequest("message is larger than the bus accepts")
    thing_id = await authorized(c, secret, channel_id, "m_write", failures(request), address_of(request))
    # Core NATS: the body as it came; who sent it and its content type in headers.
    headers = {PUBLISHER: thing_id}
    content_type = request.headers.get("Content-Type", "")
    if content_type and content_type.isascii() and content_type.isprintable():  # a header as sent
        headers["Content-Type"] = content_type
    await c.nc.publish(subject, payload, headers=headers)
    return web.Response(status=202)


@routes.post(f"/http/channels/{CID}/messages")
# The adapter's own path, for an SDK or CLI whose HTTP adapter URL is this base URL itself.
@routes.post(f"/channels/{CID}/messages")
async def publish(request: web.Request) -> web.Response:
    return await _publish(request, None)


@routes.post(f"/http/channels/{CID}/messages/{{subtopic:.*}}")
@routes.post(f"/channels/{CID}/messages/{{subtopic:.*}}")
async def publish_subtopic(request: web.Request) -> web.Response:
    return await _publish(request, request.match_info["subtopic"])


@routes.post(f"/channels/{CID}/access")
async def access(request: web.Request) -> web.Response:
    """200 ``{id}`` when the thing holding ``secret`` may do ``action`` on the channel."""
    body = await wire.body(request, AccessRequest)
    if body.action not in CONNECTION_ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(CONNECTION_ACTIONS)}")
    if not body.secret:
        raise Unauthenticated("missing thing secret")
    c = container(request)
    thing_id = await authorized(c, body.secret, _channel_id(request), body.action,
                                failures(request), address_of(request))
    # `id` as the contract shows; `authorized` and `thing_id` as upstream's SDK decodes them.
    return wire.json({"id": thing_id, "thing_id": thing_id, "authorized": True})
