"""Start the wheel's nats-server (2.15) with JetStream, an MQTT listener and an auth callout.

Accounts (config mode, no operator): APP holds the service's own users (``svc`` for its roles,
``authz`` for the callout responder; both in ``auth_users``, so they bypass the callout) and every
thing the callout admits (the user JWT's ``aud`` is ``APP``). SYS is the system account.
"""
from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nkeys

NATS_SERVER = os.environ.get("SPIKE_NATS_SERVER", "/work/main/.venv/bin/nats-server")
PASSWORDS = {"svc": "svc-pw", "authz": "authz-pw", "sys": "sys-pw"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def account_key() -> nkeys.KeyPair:
    """A fresh account nkey (seed prefix SA): the callout's issuer key."""
    raw = os.urandom(32)
    seed = nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_ACCOUNT)
    return nkeys.from_seed(seed)


CONFIG = """
server_name: spike
listen: 127.0.0.1:{port}
http: 127.0.0.1:{http_port}
max_payload: 1MB
jetstream {{ store_dir: "{dir}/js" }}
accounts {{
  APP {{
    jetstream: enabled
    users: [ {{user: svc, password: {svc}}}, {{user: authz, password: {authz}}} ]
  }}
  SYS {{ users: [ {{user: sys, password: {sys}}} ] }}
}}
system_account: SYS
authorization {{
  auth_callout {{
    issuer: {issuer}
    auth_users: [ svc, authz, sys ]
    account: APP
  }}
}}
mqtt {{
  listen: 127.0.0.1:{mqtt_port}
{mqtt_tls}}}
"""

TLS = """  tls {{
    cert_file: "{dir}/server.pem"
    key_file: "{dir}/server.key"
    ca_file: "{dir}/ca.pem"
    verify: true
  }}
"""


@dataclass
class Server:
    issuer: nkeys.KeyPair
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mqttspike-")))
    tls: bool = False
    proc: subprocess.Popen | None = None

    def url(self, user: str) -> str:
        return f"nats://{user}:{PASSWORDS[user]}@127.0.0.1:{self.port}"

    def start(self) -> Server:
        conf = CONFIG.format(port=self.port, http_port=self.http_port, dir=self.dir,
                             mqtt_port=self.mqtt_port, issuer=self.issuer.public_key.decode(),
                             mqtt_tls=TLS.format(dir=self.dir) if self.tls else "", **PASSWORDS)
        (self.dir / "nats.conf").write_text(conf)
        log = open(self.dir / "nats.log", "w")
        self.proc = subprocess.Popen([NATS_SERVER, "-c", str(self.dir / "nats.conf")],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "nats.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.mqtt_port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not open its MQTT port")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
