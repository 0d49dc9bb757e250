"""The architecture's import rules, checked on the source so they cannot rot.

policy <- models <- sync/server <- ui. Only ``agentdesk.ui`` may import Qt, the rules engine
imports nothing of ours and no framework, and the desktop reaches a server only through sync.
Function-local imports count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "agentdesk"

QT = {"PySide6", "shiboken6", "PyQt5", "PyQt6"}
FRAMEWORKS = {
    "sqlalchemy", "alembic", "requests", "fastapi", "starlette", "uvicorn", "keyring",
    "psycopg", "platformdirs", "httpx",
}
# What each layer may import from the project (besides itself).
ALLOWED_INTERNAL = {
    "policy": set(),
    "models": {"policy"},
    "sync": {"policy", "models"},
    "server": {"policy", "models", "sync"},
    "ui": {"policy", "models", "sync"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Absolute module names imported by a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = parts if path.name == "__init__.py" else parts[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            # ``from agentdesk import server`` imports the subpackage.
            if mod == "agentdesk":
                found.extend((node.lineno, f"agentdesk.{a.name}") for a in node.names)
    return found


def _layer_files(layer: str) -> list[Path]:
    root = PACKAGE / layer
    return sorted(root.rglob("*.py")) if root.exists() else []


def _violations(layer: str) -> list[str]:
    bad = []
    for path in _layer_files(layer):
        for lineno, mod in _imports(path):
            top = mod.split(".")[0]
            where = f"{path.relative_to(PACKAGE.parent)}:{lineno} imports {mod}"
            if top in QT and layer != "ui":
                bad.append(where + " (only agentdesk.ui may import Qt)")
            if layer == "policy" and top in FRAMEWORKS:
                bad.append(where + " (the rules engine stays free of frameworks and I/O)")
            if top == "agentdesk" and mod != "agentdesk":
                other = mod.split(".")[1]
                allowed = ALLOWED_INTERNAL[layer]
                if other != layer and other in ALLOWED_INTERNAL and other not in allowed:
                    bad.append(where + f" ({layer} may not depend on {other})")
    return bad


@pytest.mark.parametrize("layer", sorted(ALLOWED_INTERNAL))
def test_layer_imports_respect_the_architecture(layer: str) -> None:
    assert _violations(layer) == []


def test_the_checker_catches_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard against a checker that passes because it sees nothing."""
    fake = tmp_path / "agentdesk"
    (fake / "policy").mkdir(parents=True)
    (fake / "policy" / "__init__.py").write_text("")
    (fake / "policy" / "bad.py").write_text(
        "def f():\n    from PySide6 import QtCore\n"
        "    from ..models import x\n    import sqlalchemy\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = _violations("policy")
    assert len(found) == 3
    assert any("Qt" in v for v in found)
    assert any("may not depend on models" in v for v in found)
    assert any("frameworks" in v for v in found)


def test_policy_exists_and_is_scanned() -> None:
    assert _layer_files("policy"), "agentdesk/policy must exist and hold the rules engine"
