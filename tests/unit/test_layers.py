"""The layers, checked from the imports of every module (the issue 17 rule): ``domain/`` imports
nothing of the project's other packages; ``infra/`` (the adapters) nothing of ``command_api/``,
``workers/`` or the composition packages (``service/``, ``client/``); ``projections/`` nothing of
``command_api/``. Imports inside functions and under ``TYPE_CHECKING`` count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "infra", "projections", "command_api", "workers", "service", "client")
FORBIDDEN = {
    "domain": set(PACKAGES) - {"domain"},
    "infra": {"command_api", "workers", "service", "client"},
    "projections": {"command_api"},
}


def imported(source: str, package: str) -> set[str]:
    """The top-level packages a module of ``package`` imports (a relative import is its own)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
    return found


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for name in sorted(imported(path.read_text(), package) & forbidden):
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_every_package_is_there() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").exists(), package


def test_no_layer_imports_what_sits_above_it() -> None:
    assert violations() == []


@pytest.mark.parametrize(("package", "line"), [
    ("domain", "from infra import metrics"),
    ("domain", "import projections.sqlview"),
    ("infra", "from service.container import Container"),
    ("infra", "from workers import relay"),
    ("infra", "import command_api.app"),
    ("projections", "from command_api.wire import json"),
])
def test_a_forbidden_import_is_found(tmp_path: Path, package: str, line: str) -> None:
    for p in PACKAGES:
        (tmp_path / p).mkdir()
    (tmp_path / package / "bad.py").write_text(f"def f():\n    {line}\n")
    assert violations(tmp_path) == [f"{package}/bad.py imports {line.split()[1].split('.')[0]}"]


def test_allowed_imports_pass(tmp_path: Path) -> None:
    for p in PACKAGES:
        (tmp_path / p).mkdir()
    (tmp_path / "infra" / "ok.py").write_text("from domain.errors import Conflict\nfrom . import sql\n")
    (tmp_path / "projections" / "ok.py").write_text("from infra import metrics\n")
    assert violations(tmp_path) == []
