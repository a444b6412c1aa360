"""mypy over the project's packages, as configured in pyproject.toml (``[tool.mypy]``: the
packages, ``check_untyped_defs``, ``warn_unused_ignores``, the plugin that declares the event
classes eventsourcing's ``@event("Name")`` creates), must find nothing (issue 17), in every
package, ``domain/`` included.

A cold run takes about 15 s (its cache is in a temporary folder, so nothing stale is trusted);
set ``SMQ_MYPY_CACHE`` to a folder to keep the cache between runs (about 2 s when warm)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
ERROR = re.compile(r"^(?P<path>[^:\s]+\.py):(?P<line>\d+): error: (?P<message>.*)$")


def test_mypy_finds_no_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the packages are found from the repository's root
    cache = os.environ.get("SMQ_MYPY_CACHE") or str(tmp_path / "mypy_cache")
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                "--cache-dir", cache, "--no-error-summary", "--no-pretty"])
    assert status in (0, 1), f"mypy did not run: {err}{out}"
    errors = [m for m in map(ERROR.match, out.splitlines()) if m]
    assert status == 0 or errors, f"mypy failed without an error line: {err}{out}"
    assert status == 0, "mypy errors:\n" + "\n".join(m.group(0) for m in errors)
