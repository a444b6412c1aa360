"""The merged /metrics page of `smq serve`: what it does when the workers' side is away."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from infra import treemetrics


def test_sockets_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead, alive = tmp_path / "metrics-999999999.sock", tmp_path / f"metrics-{os.getpid()}.sock"
    other = tmp_path / "metrics-notapid.sock"
    for f in (dead, alive, other):
        f.write_text("")
    treemetrics._forget_dead(tmp_path)
    assert not dead.exists() and alive.exists() and other.exists()


async def test_an_unreadable_parent_is_said_once_per_streak(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(treemetrics.PARENT_METRICS, str(tmp_path / "gone.sock"))
    monkeypatch.setattr(treemetrics, "_unreadable", False)
    with caplog.at_level(logging.DEBUG, logger="smq.metrics"):
        for _ in range(5):
            page = await treemetrics.page()
            assert b'process="api"' in page  # this process's metrics, still served
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "FileNotFoundError" in warnings[0].getMessage()
