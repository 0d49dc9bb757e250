"""The architecture's import rules are import-linter contracts in pyproject.toml, checked by
``lint-imports`` in ``make lint``. These tests keep the checker honest: the real package passes,
and a planted violation of each kind is caught (a checker that sees nothing passes too)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the package in ``root`` (its own copy first on the path)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def copy_of_the_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layering")
    shutil.copytree(
        ROOT / "agentdesk",
        root / "agentdesk",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_cover_every_top_level_module() -> None:
    """A new top-level module or package must be placed in the layers, not slip past them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    layered = {name.strip() for layer in layers for name in layer.split("|")}
    ours = {
        f"agentdesk.{p.stem if p.suffix else p.name}"
        for p in (ROOT / "agentdesk").iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
        or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert ours - layered == set()


def test_the_package_keeps_its_contracts(copy_of_the_package: Path) -> None:
    result = _lint_imports(copy_of_the_package)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("where", "planted", "contract"),
    [
        # A lazy import inside a function is still a dependency.
        ("policy/planted.py", "def f():\n    from PySide6 import QtCore\n", "Only ui imports Qt"),
        ("policy/planted.py", "import sqlalchemy\n", "policy imports nothing"),
        ("policy/planted.py", "from ..models import Ticket\n", "Layers"),
        ("queries/planted.py", "from ..server import app\n", "queries and exports"),
        ("exports/planted.py", "from PySide6 import QtCore\n", "Only ui imports Qt"),
        ("server/planted.py", "from ..sync.replica import Replica\n", "server: not the desktop"),
        ("server/planted.py", "import keyring\n", "server: not the desktop"),
        ("sync/planted.py", "from .. import ui\n", "Layers"),
        ("ui/planted.py", "from ..server.app import create_app\n", "Layers"),
        ("paths.py", "def f():\n    from .models import Ticket\n", "Layers"),
        ("local_mode.py", "def f():\n    from .desktop import main\n", "Layers"),
    ],
)
def test_a_planted_violation_is_caught(
    copy_of_the_package: Path, where: str, planted: str, contract: str
) -> None:
    path = copy_of_the_package / "agentdesk" / where
    original = path.read_text(encoding="utf-8") if path.exists() else None
    path.write_text((original or "") + "\n" + planted, encoding="utf-8")
    try:
        result = _lint_imports(copy_of_the_package)
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout
