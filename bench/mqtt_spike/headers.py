"""Who published: a THINGS account for the callout's users, a service import with ``share: true``.

    cd bench/mqtt_spike && /work/main/.venv/bin/python headers.py

THINGS imports APP's ``channels.>`` twice: as a service (a thing's publish goes to APP, and NATS
adds ``Nats-Request-Info`` naming the publisher) and as a stream (APP's messages, the HTTP
publishes included, reach MQTT subscribers in THINGS). Prints what APP's subscriber and an MQTT
subscriber get, to show each message arrives once and the header's ``user`` is the user JWT's
name (the thing id) even when the thing logged in with its secret alone.
"""
import asyncio
import uuid

import aiomqtt
import callout
import nats
import server

server.CONFIG = server.CONFIG.replace("""  SYS {{""", """  THINGS {{
    jetstream: enabled
    imports: [
      {{service: {{account: APP, subject: "channels.>"}}, share: true}}
      {{stream: {{account: APP, subject: "channels.>"}}}}
    ]
  }}
  SYS {{""").replace("""    jetstream: enabled
    users: [ {{user: svc""", """    jetstream: enabled
    exports: [ {{service: "channels.>"}}, {{stream: "channels.>"}} ]
    users: [ {{user: svc""")


async def main():
    iss = server.account_key()
    s = server.Server(iss).start()
    try:
        r = callout.Responder(iss, account="THINGS")
        cid, tid, t2 = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        r.things[tid] = callout.Thing("s3cret", {cid: {"m_read", "m_write"}})
        r.things[t2] = callout.Thing("s2", {cid: {"m_read"}})
        await r.start(s.url("authz"))
        svc = await nats.connect(s.url("svc"))
        got = await svc.subscribe("channels.>")
        print("publisher thing id:", tid)
        kw = dict(hostname="127.0.0.1", port=s.mqtt_port)
        async with aiomqtt.Client(**kw, username="s3cret", identifier="dev-1") as c, \
                aiomqtt.Client(**kw, username=t2, password="s2", identifier="dev-2") as c2:
            await c2.subscribe(f"channels/{cid}/messages/#", qos=1)
            for q in (0, 1):
                await c.publish(f"channels/{cid}/messages/req", b"hello%d" % q, qos=q)
                for _ in range(2):
                    try:
                        m = await got.next_msg(1)
                        print("APP subscriber got", m.subject.replace(cid, "<cid>"), m.headers, m.data)
                    except nats.errors.TimeoutError:
                        print("APP subscriber: nothing more")
            await svc.publish(f"channels.{cid}.messages.cmd", b"from-svc")
            try:
                async with asyncio.timeout(1.5):
                    async for m in c2.messages:
                        print("MQTT subscriber got", str(m.topic).replace(cid, "<cid>"), m.payload, "qos", m.qos)
            except TimeoutError:
                pass
    finally:
        s.stop()

asyncio.run(main())
