"""Open MQTT sessions end when their thing's rights do (part of the `authz` role).

NATS cannot narrow an open session's rights, so a session whose thing lost a right is closed
(``$SYS.REQ.SERVER.<server id>.KICK {"cid": N}``, as a system-account user); its client
reconnects and the authorizer decides anew. The authorizer records every session it admits in
Redis (``{prefix}mqtt:{thing}``: field ``<server id> <cid>``, value ``<reached> <expiry>``,
``reached`` the views' position its decision read) *before* it reads the views for its answer.
The revoker follows the events that end rights (a disconnect, a disabled, changed or removed
thing, a disabled or removed channel, revoked certificates); once the views have applied an event it reads the
registry of the things concerned and closes each session decided before that event. So a
connect racing a revocation is either closed or decided on the new state, within the
read-your-writes bound. Stale entries are harmless (a KICK of a cid that is gone) and expire
with the user JWTs. At start it replays the last hour's events (a JWT's life): what happened
while no revoker ran is caught up with, sessions decided after an event are spared.

A revocation that fails (an event it cannot apply, a KICK the server does not answer) is not
silent: an ERROR at once, then reminders with back-off; ``smq_mqtt_revocation_failures_total``;
and ``/health`` fails ``mqtt_authorizer`` naming it (the authorizer's health answer carries
``failing``) until a revocation succeeds again. A session whose KICK failed stays in the
registry, so the thing's next revocation closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from redis.asyncio import Redis

from domain.certs import CertBook
from domain.channels import Channel
from domain.connections import Connection
from domain.things import Thing
from infra import metrics
from infra.bus import cause
from projections.envelope import Envelope, decode, name_of

log = logging.getLogger("smq.revoker")

# The events that end rights. Removal events (issue 18's "removed" thing or channel), when the
# domain has them, are followed the same way.
THING_EVENTS = (Thing.Disabled, Thing.SecretChanged, Thing.Removed)
CHANNEL_EVENTS = (Channel.Disabled, Channel.Removed)
CONNECTION_EVENTS = (Connection.Disconnected,)
CERT_EVENTS = (CertBook.Revoked,)
VIEWS = ("thing_keys", "access", "connections", "certs")  # what must have applied an event first


class Sessions:
    """The registry of admitted MQTT sessions, by thing, in Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix

    def key(self, thing_id: str) -> str:
        return f"{self.prefix}mqtt:{thing_id}"

    async def record(self, thing_id: str, server: str, cid: int, reached: int, expires: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key(thing_id), f"{server} {cid}", f"{reached} {int(expires)}")
            pipe.expireat(self.key(thing_id), int(expires) + 60)  # the newest session lives longest
            await pipe.execute()

    async def decided_before(self, thing_id: str, position: int) -> list[tuple[str, str, int]]:
        """The sessions of a thing decided on views older than ``position``: (field, server, cid)."""
        raw = await self.redis.hgetall(self.key(thing_id))
        now, found = time.time(), []
        for key, value in raw.items():
            field = key.decode() if isinstance(key, bytes) else key
            text = value.decode() if isinstance(value, bytes) else value
            server, _, cid = field.partition(" ")
            reached, _, expires = text.partition(" ")
            if int(reached) < position and int(expires) > now:
                found.append((field, server, int(cid)))
        return found

    async def forget(self, thing_id: str, field: str) -> None:
        await self.redis.hdel(self.key(thing_id), field)


class Revoker:
    """Closes the MQTT sessions whose thing's rights ended."""

    def __init__(self, js: JetStreamContext, sys_nc: Client, sessions: Sessions, stream: str, root: str,
                 wait: Callable[[Iterable[str], int], Awaitable[bool]],
                 channel_things: Callable[[str], Awaitable[list[str]]],
                 cert_things: Callable[[list[str]], Awaitable[list[str]]], lookback: float = 3600.0,
                 release: Callable[[str], Awaitable[int]] | None = None) -> None:
        self.js, self.sys_nc, self.sessions, self.stream, self.root = js, sys_nc, sessions, stream, root
        self.wait, self.channel_things, self.lookback = wait, channel_things, lookback
        self.cert_things, self.release = cert_things, release
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self.failing: str | None = None  # what the last revocation could not do, until one succeeds
        self._since, self._next_reminder, self._reminder = 0.0, 0.0, 30.0
        self._subs: list[object] = []
        self._task: asyncio.Task[None] | None = None

    def subjects(self) -> list[str]:
        return [f"{self.root}.{'.'.join(name_of(cls))}" for cls in (*THING_EVENTS, *CHANNEL_EVENTS,
                                                                    *CONNECTION_EVENTS, *CERT_EVENTS)]

    async def start(self) -> None:
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=self.lookback)
        for subject in self.subjects():
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
            self._subs.append(await self.js.subscribe(subject, stream=self.stream, ordered_consumer=True,
                                                      config=config, cb=self._queue.put))
        self._task = asyncio.create_task(self._run(), name="revoker")
        log.info("MQTT revoker follows %s", ", ".join(self.subjects()))

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()  # type: ignore[attr-defined]
        self._subs = []
        task, self._task = self._task, None
        # Cancelled again until it ends: a cancellation swallowed deep in a wait (a library's
        # race) must not leave the stop waiting for ever.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)

    async def _run(self) -> None:
        while True:
            msg = await self._queue.get()
            try:
                await self.revoke(decode(msg.data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next event goes on; the JWT's exp is the backstop
                self._failed("event", f"could not apply an event: {cause(exc)}")

    def _failed(self, stage: str, what: str) -> None:
        """Count a failed revocation and say it: at once, then reminders with back-off."""
        metrics.MQTT_REVOCATION_FAILURES.labels(stage).inc()
        now = time.monotonic()
        if self.failing is None:
            self._since, self._reminder, self._next_reminder = now, 30.0, now + 30.0
            log.error("MQTT revoker: %s; sessions may outlive their rights (1 h at most)", what)
        elif now >= self._next_reminder:
            log.error("MQTT revoker: failing for %.0fs: %s", now - self._since, what)
            self._reminder = min(self._reminder * 2, 600.0)
            self._next_reminder = now + self._reminder
        self.failing = what

    def failing_now(self) -> str | None:
        return self.failing

    def _succeeded(self) -> None:
        if self.failing is not None:
            log.warning("MQTT revoker: revoking again after %.1fs", time.monotonic() - self._since)
            self.failing = None

    async def revoke(self, env: Envelope) -> int:
        """Close the sessions that ``env`` ends (after the views have applied it); how many."""
        await self.wait(VIEWS, env.position)
        event = (env.aggregate, env.type)
        if event in {name_of(c) for c in CONNECTION_EVENTS}:
            things = [str(env.data["thing_id"])]
        elif event in {name_of(c) for c in CHANNEL_EVENTS}:
            things = await self.channel_things(env.aggregate_id)
        elif event in {name_of(c) for c in CERT_EVENTS}:
            things = await self.cert_things([str(s) for s in env.data["serials"]])
        else:
            things = [env.aggregate_id]
            if event == name_of(Thing.Removed) and self.release is not None:
                await self.release(env.aggregate_id)  # its MQTT client ids (workers.clientids)
        closed, kicked_all = 0, True
        for thing in things:
            for field, server, cid in await self.sessions.decided_before(thing, env.position):
                if await self.kick(server, cid):
                    await self.sessions.forget(thing, field)
                    closed += 1
                else:
                    kicked_all = False
        if kicked_all:
            self._succeeded()
        return closed

    async def kick(self, server: str, cid: int) -> bool:
        """Close the session ``cid`` of ``server``; False when that could not be done (said)."""
        try:
            reply = await self.sys_nc.request(f"$SYS.REQ.SERVER.{server}.KICK", json.dumps({"cid": cid}).encode(),
                                              timeout=2.0)
        except NoRespondersError:
            return True  # no such server any more: it took its sessions with it
        except Exception as exc:  # noqa: BLE001 - said, counted, and tried again at the next revocation
            self._failed("kick", f"KICK of {server}/{cid} failed: {cause(exc)}")
            return False
        answer = json.loads(reply.data or b"{}")
        if not answer.get("error"):
            metrics.MQTT_KICKS.inc()
        return True  # closed, or no such client any more
