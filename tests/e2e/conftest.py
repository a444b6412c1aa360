"""What the end-to-end tests of `smq serve` on its embedded default share: a data folder of its
own, and the processes that point into it."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest


@pytest.fixture
def data() -> Iterator[Path]:
    """A data folder outside pytest's own (a concurrent pytest session makes that one 0700 again,
    which the PostgreSQL user, as root, can then no longer traverse)."""
    top = Path(tempfile.mkdtemp(prefix="smq-e2e-"))
    yield top / "smq"
    for pid in processes_of(top):  # whatever a failed test left behind
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    shutil.rmtree(top, ignore_errors=True)


def processes_of(data: Path) -> dict[int, str]:
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
