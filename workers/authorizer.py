"""The `authz` role: answers NATS's auth callout for MQTT clients (docs/mqtt-spike.md).

The server asks on ``$SYS.REQ.USER.AUTH`` (a JWT it signed, carrying the client's username and
password); we answer with a user JWT signed by the issuer key, placing the thing in the things'
account with the right to publish on its ``m_write`` channels and subscribe to its ``m_read``
ones (``channels.<cid>.messages`` and below), or with an error (the client gets CONNACK 5).
Username = the thing's id and password = its secret, or the secret alone as username (or a
client certificate). The views and
the freshness rule are the HTTP message path's (``workers.thingaccess``). The user JWT expires
after an hour (a backstop: the revoker closes the sessions whose rights end).

Refused besides (docs/architecture.md, "MQTT"): a client that is not an MQTT one (the callout
sees every client of the server not in ``auth_users``: a NATS-protocol client could set
headers); an empty password (the secret alone is sent as the username, with no password); an
MQTT client id that another thing holds (``workers.clientids``).

Every authorizer process subscribes in one queue group; each request is answered in its own
task. The request carries the password: it is never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from command_api.errors import TooManyFailures
from command_api.ratelimit import THING, Failures, client_address
from domain.things import secret_key
from infra import metrics, natsjwt
from infra.ca import leaf_identity
from infra.mqtt import AUTH_SUBJECT, AUTHZ_QUEUE, HEALTH_SUBJECT, MqttAuth
from infra.natsconf import MQTT_ROOT
from projections.access import SessionRecord, ThingSnapshot
from workers.revoker import Sessions

log = logging.getLogger("smq.authz")
USER_TTL = 3600.0  # the user JWT's life: a backstop
IN_FLIGHT = 256    # requests answered at once by one process

# The views' answer about a secret (``workers.thingaccess.thing_access``): with a failure block
# key to check and a session to record in the same round trip.
Resolve = Callable[[str, str | None, SessionRecord | None], Awaitable[ThingSnapshot]]
# A client certificate's thing and whether it is revoked (by serial, once the views reached a
# position), None for one the service never issued.
Certificate = Callable[[str, int], Awaitable[tuple[str, bool] | None]]
# Whether a thing may use an MQTT client id (then it holds it): ``workers.clientids``.
Claim = Callable[[str, str], Awaitable[bool]]


def channel_subjects(channel_id: str) -> list[str]:
    """The subjects of MQTT's ``channels/<cid>/messages`` and every topic below it."""
    return [f"{MQTT_ROOT}.{channel_id}.messages", f"{MQTT_ROOT}.{channel_id}.messages.>"]


@dataclass(frozen=True)
class Decision:
    outcome: str                # the metric's label
    thing_id: str | None = None
    jwt: str | None = None
    error: str | None = None


class Authorizer:
    """Answers the server's questions about MQTT clients from the access views."""

    def __init__(self, nc: Client, auth: MqttAuth, resolve: Resolve, limits: Failures | None = None,
                 sessions: Sessions | None = None, certificate: Certificate | None = None,
                 claim: Claim | None = None, ttl: float = USER_TTL,
                 failing: Callable[[], str | None] | None = None) -> None:
        self.nc, self.auth, self.resolve, self.limits, self.sessions = nc, auth, resolve, limits, sessions
        self.certificate, self.claim, self.failing = certificate, claim, failing
        self.ttl = ttl
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns = asyncio.Semaphore(IN_FLIGHT)
        self._warned = 0.0

    async def start(self) -> None:
        self._subs = [await self.nc.subscribe(AUTH_SUBJECT, queue=AUTHZ_QUEUE, cb=self._on_request),
                      await self.nc.subscribe(HEALTH_SUBJECT, queue=AUTHZ_QUEUE, cb=self._on_health)]
        await self.nc.flush()
        log.info("MQTT authorizer subscribed to %s (things in account %s)", AUTH_SUBJECT, self.auth.account)

    async def stop(self) -> None:
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - closing anyway
                log.debug("unsubscribe failed", exc_info=True)
        self._subs = []
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _on_health(self, msg: Msg) -> None:
        """``ok``, or what this process's revoker cannot do (``/health`` names it)."""
        failing = self.failing() if self.failing is not None else None
        await msg.respond(f"revoker: {failing}".encode() if failing else b"ok")

    async def _on_request(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        async with self._turns:
            try:
                request = natsjwt.authorization_request(msg.data.decode())
            except (natsjwt.BadToken, UnicodeDecodeError) as exc:
                metrics.MQTT_AUTH.labels("malformed").inc()
                self._warn(f"an authorization request that is not the server's ({exc}) was not answered")
                return
            try:
                decision = await self.decide(request)
            except Exception as exc:  # noqa: BLE001 - the client is refused, the cause said
                decision = Decision("error", error="authorization unavailable")
                # the type only: an error's text could quote what it was given
                self._warn(f"an MQTT connect could not be decided: {type(exc).__name__}")
            metrics.MQTT_AUTH.labels(decision.outcome).inc()
            answer = natsjwt.authorization_response(self.auth.issuer, request, decision.jwt, decision.error)
            try:
                await msg.respond(answer.encode())
            except Exception as exc:  # noqa: BLE001 - the server times the client out
                self._warn(f"an MQTT connect's answer could not be sent: {type(exc).__name__}")

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._warned > 60:  # once a minute, not once a request
            self._warned = now
            log.warning(text)

    async def decide(self, request: dict[str, Any]) -> Decision:
        """Who the client is and what it may do, from its credentials and the views."""
        opts, client = request.get("connect_opts") or {}, request.get("client_info") or {}
        if client.get("type") != "mqtt":
            return Decision("refused_protocol", error="only MQTT clients are authorized")
        user, secret = str(opts.get("user") or ""), str(opts.get("pass") or "")
        claimed: str | None = user
        if not secret and "pass" not in opts:
            # The secret alone as username, for clients that send only one (issue 18). NATS
            # writes the username of a refused connect in its log: the embedded server's log
            # is redacted (``infra.embedded``); docs/deploy.md says so for an operator's own.
            user, secret, claimed = "", user, None
        address = client_address(str(client.get("host") or ""))
        chains = (request.get("client_tls") or {}).get("verified_chains") or []
        serial = None
        if chains and chains[0]:  # a certificate the server verified against the CA
            try:
                secret, serial = leaf_identity(str(chains[0][0]))  # its common name: the secret
            except ValueError:
                return Decision("refused_credentials", error="unreadable client certificate")
            claimed = user or None
        if not secret:
            return Decision("refused_credentials", error="no thing credentials")
        block = self.limits.block_key(THING, address) if self.limits is not None and self.limits.enabled else None
        server = str((request.get("server_id") or {}).get("id") or "")
        cid = int((request.get("client_info") or {}).get("id") or 0)
        expires = time.time() + self.ttl
        # The session is recorded by the same Redis script, in the same instant, as the views
        # are read: a revocation the views apply later finds it (workers.revoker).
        session = SessionRecord(self.sessions.key(""), f"{server} {cid}", int(expires)) if self.sessions else None
        try:
            snap = await self.resolve(secret, block, session)
        except TooManyFailures:
            return Decision("refused_limited", error="too many failed attempts")
        refused = self._refusal(snap, secret, claimed)
        if refused is not None:
            if refused.outcome == "refused_credentials" and self.limits is not None:
                await self.limits.failed(THING, None, address)
            return refused
        assert snap.thing_id is not None
        thing_id = snap.thing_id
        if serial is not None:
            found = await self.certificate(serial, snap.target) if self.certificate else None
            if found is None or found[0] != thing_id or found[1]:
                return Decision("refused_certificate", thing_id, error="certificate revoked or unknown")
        if self.claim is not None and not await self.claim(str(client.get("mqtt_id") or ""), thing_id):
            return Decision("refused_client_id", thing_id, error="MQTT client id in use by another thing")
        if self.sessions is not None and not snap.recorded:
            # Decided by the SQL views (a Redis view is rebuilt): recorded, then read again, so
            # a revocation applied meanwhile is either seen here or finds this session.
            await self.sessions.record(thing_id, server, cid, snap.reached, expires)
            snap = await self.resolve(secret, None, None)
            refused = self._refusal(snap, secret, claimed)
            if refused is not None:
                return refused
        pub = [s for cid_, acts in sorted(snap.channels.items()) if "m_write" in acts for s in channel_subjects(cid_)]
        sub = [s for cid_, acts in sorted(snap.channels.items()) if "m_read" in acts for s in channel_subjects(cid_)]
        jwt = natsjwt.user_jwt(self.auth.issuer, request["user_nkey"], self.auth.account, thing_id,
                               pub, sub, self.ttl)
        return Decision("allowed", thing_id, jwt=jwt)

    @staticmethod
    def _refusal(snap: ThingSnapshot, secret: str, claimed: str | None) -> Decision | None:
        held = (snap.held_key or "").encode()
        if snap.thing_id is None or not hmac.compare_digest(held, secret_key(secret).encode()) \
                or (claimed is not None and not hmac.compare_digest(claimed.encode(), snap.thing_id.encode())):
            return Decision("refused_credentials", error="invalid thing credentials")
        if not snap.enabled:
            return Decision("refused_disabled", snap.thing_id, error="thing is disabled")
        return None
