"""A role whose start waits for a server that is not there says so (once, then with back-off,
naming the server and why) and still honours SIGTERM: it exits within a bound. `smq serve`
stopped by SIGTERM while its embedded PostgreSQL starts leaves nothing behind, and the next
start on the same data folder comes up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from infra.embedded import free_port
from infra.settings import Settings
from tests.conftest import env_of
from tests.e2e.test_embedded_lifetime import _none_left, _of
from tests.e2e.test_serve import _start, _stop

REPO = Path(__file__).resolve().parents[2]
BOUND = 10.0  # SIGTERM to exit


async def _run_until(env: dict[str, str], role: str, wanted: re.Pattern[str], bound: float = 30.0
                     ) -> tuple[asyncio.subprocess.Process, list[str]]:
    """The role started, and its log read until a line matches ``wanted``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service.cli", role, env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + bound
    while not (lines and wanted.search(lines[-1])):
        left = deadline - time.monotonic()
        if left <= 0:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"smq {role} never logged {wanted.pattern!r}: {lines[-5:]}")
        try:
            line = await asyncio.wait_for(proc.stderr.readline(), left)
        except TimeoutError:
            continue
        if not line:
            raise AssertionError(f"smq {role} exited with {await proc.wait()} first: {lines[-5:]}")
        lines.append(line.decode(errors="replace"))
    return proc, lines


async def _sigterm_within(proc: asyncio.subprocess.Process, lines: list[str]) -> tuple[int, float]:
    assert proc.stderr is not None and proc.stdout is not None
    proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    try:
        rest, out = await asyncio.wait_for(asyncio.gather(proc.stderr.read(), proc.stdout.read()), BOUND)
        code = await asyncio.wait_for(proc.wait(), BOUND)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"still running {BOUND}s after SIGTERM: {lines[-3:]}") from None
    lines.extend(rest.decode(errors="replace").splitlines())
    assert not out.strip(), f"the start went on after SIGTERM: {out!r}"
    return code, time.monotonic() - began


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}
    env.update(env_of(settings))
    return env


@pytest.mark.timeout(90)
@pytest.mark.parametrize("role", ["saga", "relay", "projector", "api"])
async def test_a_role_waiting_for_nats_says_so_with_back_off_and_exits_on_sigterm(settings: Settings,
                                                                                  role: str) -> None:
    port = free_port()  # closed: nothing listens there
    env = _env(replace(settings, nats_url=f"nats://127.0.0.1:{port}"))
    proc, lines = await _run_until(env, role, re.compile(rf'"WARNING".*127\.0\.0\.1.*{port}'))
    await asyncio.sleep(4)  # eight tries of the old every-half-second retry
    code, took = await _sigterm_within(proc, lines)
    assert code == 0, lines[-3:]
    assert re.search(rf"waiting for NATS at nats://127\.0\.0\.1:{port}: .*(refused|failed)", "".join(lines)), lines[:3]
    # Said once, then with back-off: not a line per try.
    about_nats = [ln for ln in lines if "nats" in ln.lower() and '"WARNING"' in ln]
    assert 1 <= len(about_nats) <= 3, about_nats
    assert re.search(rf"start interrupted by SIGTERM while waiting for NATS at nats://127\.0\.0\.1:{port}",
                     lines[-1]), lines[-1]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("role", ["relay", "api"])
async def test_a_role_waiting_for_postgresql_exits_on_sigterm(settings: Settings, role: str) -> None:
    port = free_port()
    env = _env(replace(settings, database_url=f"postgresql://postgres@127.0.0.1:{port}/smq"))
    proc, lines = await _run_until(env, role, re.compile(rf"waiting for PostgreSQL at postgresql://postgres@127\.0\.0\.1:{port}/smq: .*refused"))
    code, took = await _sigterm_within(proc, lines)
    assert code == 0, lines[-3:]
    assert "start interrupted by SIGTERM while waiting for PostgreSQL" in lines[-1], lines[-1]


@pytest.mark.timeout(240)
def test_sigterm_while_the_embedded_postgresql_starts_leaves_nothing_and_the_next_start_works(
        data: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}
    env.update(SMQ_DATA_DIR=str(data), SMQ_HTTP_PORT="0")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, text=True, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # SIGTERM once PostgreSQL's own programs run: initdb (a first start), then postgres.
        while not ({"initdb", "postgres"} & set(_of(data).values())):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the embedded PostgreSQL never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            with contextlib.suppress(psutil.Error):
                for pid in _of(data):
                    psutil.Process(pid).kill()
    assert proc.returncode == 0, err[-2000:]
    assert not out.strip(), f"the start went on after SIGTERM: {out!r}"
    assert "start interrupted by SIGTERM while starting the embedded PostgreSQL" in err, err[-2000:]
    _none_left(data, 5)
    # No half-made cluster left: the next start comes up.
    proc, where = _start(data)
    try:
        assert where["http"]
    finally:
        assert _stop(proc) == 0
    _none_left(data, 30)
