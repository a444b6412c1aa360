"""`smq serve` as a newcomer runs it: nothing configured, everything embedded, data kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from tests.conftest import env_of


def _call(base: str, method: str, path: str, body: Any = None, token: str | None = None,
          timeout: float = 30) -> tuple[int, Any]:
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def _start(data: Path, extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}
    env.update(SMQ_DATA_DIR=str(data), SMQ_HTTP_PORT="0")
    env.update(extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the one line that says where it listens; bounded by the test timeout
    if not line:
        proc.wait(10)
        pytest.fail(f"smq serve exited with {proc.returncode} before listening")
    return proc, json.loads(line)


def _children_of(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


@pytest.mark.timeout(240)
def test_serve_embedded_default_survives_restart(data: Path) -> None:
    proc, where = _start(data)
    try:
        base = where["http"]
        assert where["nats"].startswith("nats://smq:***@127.0.0.1:") and where["redis"].startswith("redis://127.0.0.1:")
        assert where["mqtt"].startswith("tcp://127.0.0.1:")  # the embedded NATS serves MQTT
        # The embedded NATS takes a generated password, which the printed line does not show.
        assert (data / "nats.password").read_text().strip() not in json.dumps(where)
        children = _children_of(proc.pid)
        assert len(children) >= 2  # its own nats-server and redis-server (and PostgreSQL)
        assert _call(base, "GET", "/health")[0] == 200
        st, user = _call(base, "POST", "/users", {"name": "John Doe", "credentials": {
            "identity": "john.doe@email.com", "secret": "12345678"}, "status": "enabled"})
        assert st == 201, user
        st, tokens = _call(base, "POST", "/users/tokens/issue",
                           {"identity": "john.doe@email.com", "secret": "12345678"})
        assert st == 201
    finally:
        code = _stop(proc)
    assert code == 0
    deadline = time.monotonic() + 15
    while any(os.path.exists(f"/proc/{c}") and "Z" not in open(f"/proc/{c}/stat").read().split()[2]
              for c in children):
        assert time.monotonic() < deadline, "embedded servers outlived smq serve"
        time.sleep(0.1)

    proc, where = _start(data)
    try:
        base = where["http"]
        # The account, and the signing key, were kept in the data folder.
        st, profile = _call(base, "GET", "/users/profile", token=tokens["access_token"])
        assert st == 200 and profile["id"] == user["id"]
        st, again = _call(base, "POST", "/users/tokens/issue",
                          {"identity": "john.doe@email.com", "secret": "12345678"})
        assert st == 201
        st, _ = _call(base, "POST", "/users", {"credentials": {"identity": "john.doe@email.com",
                                                                "secret": "12345678"}})
        assert st == 409
    finally:
        assert _stop(proc) == 0


def _api_children(pid: int) -> list[int]:
    """The HTTP API children of `smq serve` (``python -m service.cli api``)."""
    found = []
    for child in _children_of(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "service.cli api" in cmdline:
            found.append(child)
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] in ("Z", "X")
    except OSError:
        return True


def _answers(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> int:
    try:
        return _call(base, method, path, body, token, timeout=2)[0]
    except (OSError, ValueError):  # refused, reset, timed out (waiting in the backlog), cut short
        return 0


@pytest.mark.timeout(120)
def test_serve_starts_again_an_api_process_that_dies(settings: Settings) -> None:
    """`smq serve` runs the HTTP API in a child (SMQ_API_PROCESSES, default 1) and starts
    again a child that dies; the servers are the test's (no embedded ones)."""
    proc, where = _start(Path(settings.data_dir), env_of(settings))
    try:
        base = where["http"]
        assert _call(base, "GET", "/health")[0] == 200
        first = _api_children(proc.pid)
        assert len(first) == 1, first  # one API child by default
        creds = {"identity": "survivor@example.com", "secret": "12345678"}
        st, user = _call(base, "POST", "/users", {"name": "s", "credentials": creds})
        assert st == 201, user
        st, before = _call(base, "POST", "/users/tokens/issue", creds)
        assert st == 201, before

        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # a new API child, then answers again: within the bound
            children = _api_children(proc.pid)
            if (_gone(first[0]) and len(children) == 1 and children[0] != first[0]
                    and _answers(base, "GET", "/health") == 200):
                break
            assert proc.poll() is None, f"smq serve exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"no API answering within 30s (children {children})"
            time.sleep(0.1)
        second = children[0]
        # The user made before the kill still gets a token, both tokens work, writes work.
        st, after = _call(base, "POST", "/users/tokens/issue", creds)
        assert st == 201, after
        for tokens in (before, after):
            st, profile = _call(base, "GET", "/users/profile", token=tokens["access_token"])
            assert st == 200 and profile["id"] == user["id"], profile
        st, other = _call(base, "POST", "/users", {"credentials": {"identity": "after@example.com",
                                                                    "secret": "12345678"}})
        assert st == 201, other
        assert _api_children(proc.pid) == [second]
    finally:
        code = _stop(proc)
    assert code == 0
    deadline = time.monotonic() + 15
    while not _gone(second):
        assert time.monotonic() < deadline, "the API child outlived smq serve"
        time.sleep(0.1)
