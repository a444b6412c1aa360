"""Functional checks of NATS-served MQTT with an auth callout (issue 18's spike).

    cd bench/mqtt_spike && /work/main/.venv/bin/python spike.py

Prints one line per fact checked
the decoded callout requests go to ``requests.json``.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import aiomqtt
import callout
import nats
import paho.mqtt.client as paho_client
import server


def line(what: str, value) -> None:
    print(f"{what:<62} {value}")


async def recv(sub, wait=1.0):
    try:
        return await sub.next_msg(wait)
    except nats.errors.TimeoutError:
        return None


async def mqtt_recv(client: aiomqtt.Client, wait=1.0):
    try:
        async with asyncio.timeout(wait):
            async for m in client.messages:
                return m
    except TimeoutError:
        return None


async def main() -> None:
    iss = server.account_key()
    s = server.Server(iss).start()
    r = callout.Responder(iss)
    C1, C2 = str(uuid.uuid4()), str(uuid.uuid4())  # C1 connected (read+write), C2 not
    RO = str(uuid.uuid4())  # channel where the thing only reads
    thing, reader = str(uuid.uuid4()), str(uuid.uuid4())
    r.things[thing] = callout.Thing("s3cret", {C1: {"m_read", "m_write"}, RO: {"m_read"}})
    r.things[reader] = callout.Thing("r3ader", {C1: {"m_read"}})
    try:
        await r.start(s.url("authz"))
        svc = await nats.connect(s.url("svc"))
        sysc = await nats.connect(s.url("sys"))
        allsub = await svc.subscribe("channels.>")

        # --- 5. the service's own users bypass the callout
        n0 = len(r.requests)
        n1 = await nats.connect(s.url("svc"))
        line("svc (auth_users) connects without a callout request", len(r.requests) == n0)
        await n1.close()

        # --- 1. connect, subject mapping
        kw = dict(hostname="127.0.0.1", port=s.mqtt_port)
        try:
            async with aiomqtt.Client(**kw, username=thing, password="wrong", identifier="x"):
                pass
            line("wrong secret refused", False)
        except aiomqtt.MqttError as e:
            line("wrong secret refused", f"True ({e})")
        async with aiomqtt.Client(**kw, username="s3cret", identifier="secret-only"):
            line("secret alone as username admitted", True)
        async with aiomqtt.Client(**kw, username=thing, password="s3cret", identifier="dev-1") as dev, \
                aiomqtt.Client(**kw, username=reader, password="r3ader", identifier="rd-1") as rd:
            await rd.subscribe(f"channels/{C1}/messages/#", qos=1)
            for topic in [f"channels/{C1}/messages", f"channels/{C1}/messages/req",
                          f"channels/{C1}/messages/a/b", f"channels/{C1}/messages/a.b",
                          f"channels/{C1}/messages/a//b", f"channels/{C1}/messages/x/"]:
                await dev.publish(topic, b"p", qos=1)
                m = await recv(allsub)
                m2 = await mqtt_recv(rd)
                line(f"MQTT pub {topic.replace(C1, '<cid>')} -> NATS",
                     f"{m.subject.replace(C1, '<cid>') if m else None} headers={m.headers if m else None}"
                     f" | MQTT sub got {str(m2.topic).replace(C1, '<cid>') if m2 else None}")
            for subj in [f"channels.{C1}.messages.req", f"channels.{C1}.messages",
                         f"channels.{C1}", f"channels.{C1}.req", f"channels.{C1}.messages.a//b"]:
                await svc.publish(subj, b"n", headers={"Content-Type": "application/senml+json"})
                m2 = await mqtt_recv(rd)
                await recv(allsub)
                line(f"NATS pub {subj.replace(C1, '<cid>')} -> MQTT sub channels/<cid>/messages/#",
                     f"{str(m2.topic).replace(C1, '<cid>') if m2 else None} qos={m2.qos if m2 else None}")

            # --- refusals on an open session
            await dev.publish(f"channels/{C2}/messages/req", b"x", qos=1)
            line("publish on a channel not connected: reaches NATS?", await recv(allsub, 0.5) is not None)
            await dev.publish(f"channels/{RO}/messages/req", b"x", qos=0)
            line("publish on an m_read-only channel: reaches NATS?", await recv(allsub, 0.5) is not None)
            await dev.publish(f"channels/{C1}/messages/ok", b"x", qos=1)
            line("session still usable after refused publishes", await recv(allsub) is not None)
            res = await dev.subscribe(f"channels/{C2}/messages/#", qos=1)
            line("subscribe on a channel not connected: SUBACK codes", res)
            res = await dev.subscribe("channels/#", qos=0)
            line("subscribe on channels/# : SUBACK codes", res)

        # --- 3. MQTT 5
        c5 = paho_client.Client(paho_client.CallbackAPIVersion.VERSION2, client_id="v5",
                                protocol=paho_client.MQTTv5)
        c5.username_pw_set(thing, "s3cret")
        try:
            c5.connect("127.0.0.1", s.mqtt_port, 5)
            c5.loop_start()
            await asyncio.sleep(1)
            line("MQTT 5 connect: connected", c5.is_connected())
        except Exception as e:
            line("MQTT 5 connect", f"refused: {e!r}")
        finally:
            c5.loop_stop()
        line("server log on MQTT 5",
             [ln.split(" - ")[-1] for ln in (s.dir / "nats.log").read_text().splitlines()
              if "protocol version" in ln][-1:])

        # --- 2. revocation: kick by the client id the callout saw
        async with aiomqtt.Client(**kw, username=thing, password="s3cret", identifier="dev-kick") as dev:
            req = r.requests[-1]["nats"]
            cid_, sid = req["client_info"]["id"], req["server_id"]["id"]
            cz = await sysc.request("$SYS.REQ.SERVER.PING.CONNZ",
                                    json.dumps({"mqtt_client": "dev-kick"}).encode(), timeout=2)
            conns = json.loads(cz.data)["data"]["connections"]
            line("CONNZ filter mqtt_client finds the session (cid, user, name_tag?)",
                 [(c["cid"], c.get("authorized_user"), c.get("name_tag"), c.get("tags"),
                   c.get("mqtt_client")) for c in conns])
            await dev.subscribe(f"channels/{C1}/messages/#")
            r.things[thing].enabled = False
            t0 = time.perf_counter()
            ans = await sysc.request(f"$SYS.REQ.SERVER.{sid}.KICK", json.dumps({"cid": cid_}).encode(),
                                     timeout=2)
            line("KICK answer (data)", json.loads(ans.data).get("data", json.loads(ans.data).get("error")))
            try:
                async with asyncio.timeout(3):
                    async for _ in dev.messages:
                        pass
                line("kicked client noticed", False)
            except aiomqtt.MqttError as e:
                line("kicked MQTT client disconnected after (ms)",
                     f"{(time.perf_counter() - t0) * 1000:.1f} ({e})")
            except TimeoutError:
                line("kicked MQTT client disconnected", "no, within 3 s")
        try:
            async with aiomqtt.Client(**kw, username=thing, password="s3cret", identifier="dev-kick"):
                line("reconnect after disable refused", False)
        except aiomqtt.MqttError as e:
            line("reconnect after disable refused", f"True ({e})")
        r.things[thing].enabled = True

        # --- user JWT expiry as a backstop
        r_ttl = r.decide
        def short(req):
            jwt, err = r_ttl(req)
            if jwt:
                import natsjwt
                claims = natsjwt.decode(jwt)
                n = claims["nats"]
                jwt = natsjwt.user_jwt(iss, req["nats"]["user_nkey"], "APP", claims["name"],
                                       n["pub"].get("allow", []), n["sub"].get("allow", []), ttl=2)
            return jwt, err
        r.decide = short
        async with aiomqtt.Client(**kw, username=thing, password="s3cret", identifier="dev-exp") as dev:
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(5):
                    async for _ in dev.messages:
                        pass
            except aiomqtt.MqttError as e:
                line("user JWT exp=2s: MQTT session closed after (s)", f"{time.perf_counter() - t0:.1f} ({e})")
            except TimeoutError:
                line("user JWT exp=2s: session closed", "no, within 5 s")
        r.decide = r_ttl

        line("callout decisions", r.decisions)
        (s.dir / "requests.json").write_text(json.dumps(r.requests[-3:], indent=1))
        print("callout requests:", s.dir / "requests.json")
        errs = [ln for ln in (s.dir / "nats.log").read_text().splitlines() if "[ERR]" in ln or "[WRN]" in ln]
        print("--- server warnings/errors (last 25)")
        print("\n".join(e.split("] ", 1)[-1] for e in errs[-25:]))
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
