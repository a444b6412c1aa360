"""`smq serve` and `smq api` on a port another program holds: one line says what is wrong and
which setting changes it, and the exit status is not 0."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import Settings
from tests.conftest import env_of


@pytest.mark.timeout(180)
@pytest.mark.parametrize("role", ["serve", "api"])
def test_a_taken_port_is_one_line_naming_the_setting(settings: Settings, role: str) -> None:
    with socket.socket() as holder:  # no SO_REUSEPORT: nobody may share it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}, **env_of(settings),
               "SMQ_HTTP_PORT": str(port), "SMQ_HTTP_HOST": "127.0.0.1", "SMQ_LOG_LEVEL": "ERROR"}
        done = subprocess.run([sys.executable, "-m", "service.cli", role], env=env, text=True,
                              capture_output=True, timeout=150, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1, done.stderr[-2000:]
    assert f"127.0.0.1:{port}" in said[0] and "in use" in said[0] and "SMQ_HTTP_PORT" in said[0], said


@pytest.mark.timeout(180)
def test_a_taken_mqtt_port_is_one_line_naming_the_setting(settings: Settings) -> None:
    """The embedded NATS's MQTT listener on a port asked for (SMQ_MQTT_PORT) and taken."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}, **env_of(settings),
               "SMQ_MQTT_PORT": str(port), "SMQ_HTTP_HOST": "127.0.0.1", "SMQ_LOG_LEVEL": "ERROR"}
        del env["SMQ_NATS_URL"]  # the embedded NATS, which serves MQTT
        done = subprocess.run([sys.executable, "-m", "service.cli", "serve"], env=env, text=True,
                              capture_output=True, timeout=150, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1, done.stderr[-2000:]
    assert f"127.0.0.1:{port}" in said[0] and "in use" in said[0] and "SMQ_MQTT_PORT" in said[0], said
