"""The embedded MQTT listener's port: 1883 unless another program holds it (then a free one,
said once), a port asked for and taken is an error naming SMQ_MQTT_PORT, 0 is any free port."""

from __future__ import annotations

import errno
import logging
import socket

import pytest

from infra import mqtt


def _hold(port: int) -> socket.socket | None:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError as exc:
        s.close()
        if exc.errno == errno.EADDRINUSE:
            return None  # another program holds it already (this machine's Mosquitto)
        raise
    s.listen()
    return s


def test_1883_taken_gives_a_free_port_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    held = _hold(mqtt.DEFAULT_PORT)
    try:
        with caplog.at_level(logging.WARNING, "smq.mqtt"):
            port = mqtt.choose_port("127.0.0.1", None)
    finally:
        if held is not None:
            held.close()
    assert port != mqtt.DEFAULT_PORT and 0 < port < 65536
    said = [r for r in caplog.records if r.name == "smq.mqtt"]
    assert len(said) == 1 and str(port) in said[0].getMessage() and "SMQ_MQTT_PORT" in said[0].getMessage()


def test_a_port_asked_for_and_taken_names_the_setting() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with pytest.raises(mqtt.PortInUse, match="SMQ_MQTT_PORT"):
            mqtt.choose_port("127.0.0.1", taken)
    assert mqtt.choose_port("127.0.0.1", 0) > 0


def test_addresses_and_the_issuer_seed(tmp_path) -> None:  # noqa: ANN001
    assert mqtt.address("tcp://h.example:1884") == ("h.example", 1884)
    assert mqtt.address("localhost:1883") == ("localhost", 1883)
    assert mqtt.address("mqtt://h") == ("h", 1883) and mqtt.address("") is None
    seed = mqtt.issuer_seed(tmp_path)
    assert seed.startswith(b"SA") and mqtt.issuer_seed(tmp_path) == seed  # generated once
    assert (tmp_path / mqtt.ISSUER_SEED_FILE).stat().st_mode & 0o777 == 0o600
    assert mqtt.keypair(seed).public_key.decode().startswith("A")
    with pytest.raises(ValueError, match="account"):
        mqtt.keypair(b"SUAAAA")
