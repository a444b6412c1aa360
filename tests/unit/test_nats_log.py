"""The embedded nats-server's log, copied with client usernames blanked (a thing may send its
secret alone as the MQTT username, and NATS writes the username of every refused connect)."""

from __future__ import annotations

import io
from pathlib import Path

from infra.embedded import redacted_log

LINES = (b'[1] [ERR] 127.0.0.1:5 - mid:9 - authentication error - User "the-secret"\n'
         b'[1] [ERR] 127.0.0.1:6 - cid:3 - authentication error - User "smq"\n'
         b'[1] [INF] Server is ready\n')


def test_client_usernames_are_blanked_and_the_services_own_kept(tmp_path: Path) -> None:
    redacted_log(io.BytesIO(LINES), tmp_path / "nats.log")
    text = (tmp_path / "nats.log").read_text()
    assert "the-secret" not in text and 'User "[redacted]"' in text
    assert 'User "smq"' in text and "Server is ready" in text


def test_a_log_that_cannot_be_written_does_not_stop_the_reading(tmp_path: Path) -> None:
    source = io.BytesIO(LINES * 100)
    redacted_log(source, tmp_path / "missing" / "nats.log")  # its folder does not exist
    assert source.read() == b""  # everything was read: the server's pipe never fills
