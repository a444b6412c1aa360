"""A minimal auth callout responder: things (id, secret, channel -> actions) held in memory.

The real one would read the Redis access view (see docs/mqtt-spike.md); this one only shows the
request and answer shapes and measures the round trip.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import nats
import natsjwt
import nkeys


def channel_subjects(cid: str) -> list[str]:
    """What MQTT ``channels/<cid>/messages[/<subtopic>...]`` becomes in NATS."""
    return [f"channels.{cid}.messages", f"channels.{cid}.messages.>"]


@dataclass
class Thing:
    secret: str
    channels: dict[str, set[str]]  # channel id -> {"m_read", "m_write"}
    enabled: bool = True


@dataclass
class Responder:
    issuer: nkeys.KeyPair
    account: str = "APP"
    things: dict[str, Thing] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)  # the last few decoded requests
    decisions: dict[str, int] = field(default_factory=lambda: {"allow": 0, "deny": 0})
    busy: float = 0.0  # seconds spent inside the handler

    def decide(self, req: dict) -> tuple[str | None, str | None]:
        """(user JWT, None) or (None, error)."""
        nats_ = req["nats"]
        opts = nats_.get("connect_opts", {})
        user, password = opts.get("user", ""), opts.get("pass", "")
        thing_id = user if user in self.things else None
        if thing_id is None:  # the secret alone as username
            thing_id = next((t for t, th in self.things.items() if th.secret == user), None)
            password = user
        chains = nats_.get("client_tls", {}).get("verified_chains")
        if thing_id is None and not user and chains:  # mTLS: the verified leaf's CN names the thing
            from cryptography import x509
            leaf = x509.load_pem_x509_certificate(chains[0][0].encode())
            cn = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
            thing_id, password = cn, self.things[cn].secret if cn in self.things else None
        thing = self.things.get(thing_id) if thing_id else None
        if thing is None or thing.secret != password:
            return None, "invalid thing credentials"
        if not thing.enabled:
            return None, "thing is disabled"
        pub = [s for cid, acts in thing.channels.items() if "m_write" in acts
               for s in channel_subjects(cid)]
        sub = [s for cid, acts in thing.channels.items() if "m_read" in acts
               for s in channel_subjects(cid)]
        # (QoS 1 subscriptions need no "$MQTT.sub.>" grant: checked by the spike.)
        return natsjwt.user_jwt(self.issuer, nats_["user_nkey"], self.account, thing_id,
                                pub, sub, tags=[f"thing:{thing_id}"]), None

    async def handle(self, msg) -> None:
        t0 = time.perf_counter()
        req = natsjwt.decode(msg.data.decode())
        self.requests = (self.requests + [req])[-20:]
        jwt, error = self.decide(req)
        self.decisions["allow" if jwt else "deny"] += 1
        answer = natsjwt.auth_response(self.issuer, req, jwt=jwt, error=error)
        self.busy += time.perf_counter() - t0
        await msg.respond(answer.encode())

    async def start(self, url: str):
        self.nc = await nats.connect(url, name="authz")
        await self.nc.subscribe("$SYS.REQ.USER.AUTH", queue="authz", cb=self.handle)
        await self.nc.flush()
        return self.nc
