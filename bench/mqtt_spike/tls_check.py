"""mTLS on the MQTT listener (``tls { verify: true }``): what the callout sees of the client cert.

    cd bench/mqtt_spike && /work/main/.venv/bin/python tls_check.py
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import uuid

import aiomqtt
import callout
import server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def cert(cn, key, issuer_cert=None, issuer_key=None, ca=False, san=None):
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san), x509.IPAddress(
            __import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def keypem(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


async def main():
    iss = server.account_key()
    s = server.Server(iss, tls=True)
    cak = ec.generate_private_key(ec.SECP256R1())
    ca = cert("spike CA", cak, ca=True)
    sk = ec.generate_private_key(ec.SECP256R1())
    sc = cert("localhost", sk, ca, cak, san="localhost")
    thing, cid = str(uuid.uuid4()), str(uuid.uuid4())
    ck = ec.generate_private_key(ec.SECP256R1())
    cc = cert(thing, ck, ca, cak)
    (s.dir / "ca.pem").write_bytes(pem(ca))
    (s.dir / "server.pem").write_bytes(pem(sc))
    (s.dir / "server.key").write_bytes(keypem(sk))
    (s.dir / "client.pem").write_bytes(pem(cc))
    (s.dir / "client.key").write_bytes(keypem(ck))
    s.start()
    r = callout.Responder(iss)
    r.things[thing] = callout.Thing("s3cret", {cid: {"m_read", "m_write"}})
    try:
        await r.start(s.url("authz"))
        ctx = ssl.create_default_context(cafile=str(s.dir / "ca.pem"))
        ctx.load_cert_chain(s.dir / "client.pem", s.dir / "client.key")
        async with aiomqtt.Client("127.0.0.1", s.mqtt_port, username=thing, password="s3cret",
                                  identifier="tls-1", tls_context=ctx):
            print("mTLS connect with username/password: ok")
        req = r.requests[-1]["nats"]
        print("client_tls in the request:", json.dumps(
            {k: (v if k != "certs" else [c[:60] + "..." for c in v]) for k, v in req.get("client_tls", {}).items()},
            indent=1))
        tls = req["client_tls"]
        print("keys of client_tls:", sorted(tls))
        got = x509.load_pem_x509_certificate(tls["verified_chains"][0][0].encode())
        print("verified_chains[0][0] is the client's cert:", got == cc, "|",
              got.subject.rfc4514_string(), "serial", hex(got.serial_number))
        # no username at all: the callout must decide from the certificate
        try:
            async with aiomqtt.Client("127.0.0.1", s.mqtt_port, identifier="tls-2", tls_context=ctx):
                print("mTLS connect without username: admitted by the callout; connect_opts seen:",
                      r.requests[-1]["nats"].get("connect_opts"))
        except aiomqtt.MqttError as e:
            print("mTLS connect without username:", e, "| callout saw connect_opts:",
                  r.requests[-1]["nats"].get("connect_opts"))
        nocert = ssl.create_default_context(cafile=str(s.dir / "ca.pem"))
        try:
            async with aiomqtt.Client("127.0.0.1", s.mqtt_port, username=thing, password="s3cret",
                                      identifier="tls-3", tls_context=nocert):
                print("TLS without client cert: admitted (!)")
        except aiomqtt.MqttError as e:
            print("TLS without client cert refused by the listener:", e)
    finally:
        s.stop()


asyncio.run(main())
