"""MQTT: NATS serves it (its ``mqtt`` listener); the service only decides who may do what,
through NATS's auth callout (``workers.authorizer``). What the service must know for that:
the issuer key that signs its answers, the account things are placed in, a system-account
user (to close sessions whose rights ended), and where the broker listens (for /health).

The embedded NATS has all of it (``infra.natsconf``); an external NATS ≥ 2.10 is configured by
settings (``SMQ_MQTT_ISSUER_SEED_FILE``, ``SMQ_MQTT_SYS_URL``, ``SMQ_MQTT_URL``, ``SMQ_MQTT_BROKER``;
docs/deploy.md).
Without an issuer seed, MQTT authorization is off (``/health`` says so).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import nkeys

from infra.files import write_once
from infra.settings import Settings

log = logging.getLogger("smq.mqtt")

DEFAULT_PORT = 1883
THINGS_ACCOUNT = "THINGS"
AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"  # where the server asks (auth callout)
AUTHZ_QUEUE = "smq-authz"            # every authorizer process answers in one queue group
HEALTH_SUBJECT = "smq.authz.health"  # any authorizer answers: /health knows one is subscribed
ISSUER_SEED_FILE = "mqtt-issuer.seed"
OFF = "off: MQTT authorization is not configured (SMQ_MQTT_ISSUER_SEED_FILE; docs/deploy.md)"


class PortInUse(Exception):
    """The MQTT port asked for cannot be had: said in one line naming the setting."""


@dataclass(frozen=True)
class MqttAuth:
    """What the service needs to authorize the MQTT clients of a NATS server."""

    issuer: nkeys.KeyPair = field(repr=False)  # signs the callout's answers and the user JWTs
    account: str = THINGS_ACCOUNT              # where things are placed (the user JWT's ``aud``)
    sys_url: str | None = field(default=None, repr=False)  # a system-account user (KICK)
    brokers: tuple[tuple[str, int], ...] = ()  # the MQTT listener(s), for /health (any one answers)
    url: str = ""                              # the address devices dial

    @property
    def issuer_public(self) -> str:
        return str(self.issuer.public_key.decode())


def new_seed() -> bytes:
    """A fresh account nkey seed (``SA…``): the callout's issuer."""
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT))


def keypair(seed: bytes) -> nkeys.KeyPair:
    """The key pair of an account seed; a seed of another kind is refused."""
    seed = seed.strip()
    if not seed.startswith(b"SA"):
        raise ValueError("the MQTT issuer seed must be an account nkey seed (SA…)")
    return nkeys.from_seed(bytearray(seed))


def issuer_seed(data_dir: Path) -> bytes:
    """The embedded NATS's issuer seed, generated once into the data folder (mode 0600)."""
    path = Path(data_dir) / ISSUER_SEED_FILE
    if path.exists():
        return path.read_bytes().strip()
    return write_once(path, new_seed()).strip()


def address(url: str | None) -> tuple[str, int] | None:
    """``host, port`` of an MQTT address: ``tcp://h:p``, ``mqtt://h:p``, ``ssl://h:p`` or ``h:p``."""
    if not url:
        return None
    parts = urlsplit(url if "://" in url else "tcp://" + url)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or DEFAULT_PORT


def host_port(brokers: tuple[tuple[str, int], ...]) -> str:
    """``host:port[,host:port…]`` of addresses (an IPv6 host in brackets), as ``addresses``
    reads it back."""
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in brokers)


def addresses(urls: str | None) -> tuple[tuple[str, int], ...]:
    """The addresses of a comma-separated list (``SMQ_MQTT_BROKER``), each as ``address``."""
    found = (address(u.strip()) for u in (urls or "").split(","))
    return tuple(a for a in found if a is not None)


def url_of(host: str, port: int, tls: bool = False) -> str:
    """The address devices dial for a listener on ``host:port`` (any-address: this host's name)."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"{'ssl' if tls else 'tcp'}://{host}:{port}"


def from_settings(settings: Settings) -> MqttAuth | None:
    """The MQTT authorization of an external NATS, from the settings; None when off. The
    listeners /health checks: ``SMQ_MQTT_BROKER`` (a list: the nodes of a cluster), else where
    devices dial (``SMQ_MQTT_URL``)."""
    if not settings.mqtt_issuer_seed_file:
        return None
    seed = Path(settings.mqtt_issuer_seed_file).read_bytes()
    return MqttAuth(keypair(seed), settings.mqtt_account, settings.mqtt_sys_url,
                    addresses(settings.mqtt_broker or settings.mqtt_url), settings.mqtt_url or "")


def _free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on (as nats-server will: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def choose_port(host: str, wanted: int | None) -> int:
    """The embedded MQTT listener's port: ``wanted`` (0: a free one); unset, 1883 or, when
    another program holds it, a free port (said once). A port asked for and taken is an error."""
    if wanted is None:
        if _free(host, DEFAULT_PORT):
            return DEFAULT_PORT
        port = free_port(host)
        log.warning("the MQTT port %s:%d is in use by another program; the embedded MQTT listener"
                    " takes %d instead (set SMQ_MQTT_PORT to choose)", host, DEFAULT_PORT, port)
        return port
    if wanted == 0:
        return free_port(host)
    if not _free(host, wanted):
        raise PortInUse(f"cannot listen for MQTT on {host}:{wanted} (the port is in use): set"
                        " SMQ_MQTT_PORT to a free port (0: any free port)")
    return wanted


async def reachable(broker: tuple[str, int], bound: float = 1.0) -> None:
    """Raise unless a TCP connection to an MQTT listener opens within ``bound`` seconds."""
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(*broker), bound)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:  # the listener closing first is still a listener
        pass
