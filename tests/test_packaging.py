"""The extras split: a team's server runs without Qt or keyring (``agentdesk[server]``), a
desktop without the server's PostgreSQL driver (``agentdesk[desktop]``).

The fast tests run the real start-up code in a child process whose imports of the other side's
packages fail, as they would where those packages are not installed. The slow one installs
``.[server]`` into a fresh virtual environment and checks what it got."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BLOCKER = """
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
"""


def _run_without(blocked: set[str], code: str, tmp_path: Path) -> str:
    script = f"BLOCKED = {sorted(blocked)!r}\n{BLOCKER}\n{textwrap.dedent(code)}"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _extras() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(config["project"]["optional-dependencies"])


def _names(requirements: list[str]) -> set[str]:
    return {
        r.split(">")[0].split("[")[0].split("=")[0].split("!")[0].strip().lower()
        for r in requirements
    }


def test_the_extras_put_qt_and_keyring_on_the_desktop_and_the_driver_on_the_server() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    base = _names(config["project"]["dependencies"])
    extras = _extras()
    assert {"pyside6", "keyring", "requests", "psycopg"}.isdisjoint(base)
    assert {"pyside6", "keyring", "requests"} <= _names(extras["desktop"])
    assert _names(extras["server"]) == {"psycopg"}


def test_the_server_runs_without_qt_keyring_or_requests(tmp_path: Path) -> None:
    out = _run_without(
        {"PySide6", "shiboken6", "keyring", "requests"},
        f"""
        from fastapi.testclient import TestClient
        from agentdesk.cli import main
        from agentdesk.models.db import sqlite_url
        from agentdesk.server.app import create_app
        from agentdesk.server.settings import ServerSettings

        url = sqlite_url({str(tmp_path / "server.sqlite3")!r})
        assert main(["server", "init", "--database-url", url, "--team-name", "Acme"]) == 0
        with TestClient(create_app(ServerSettings(database_url=url))) as client:
            print(client.get("/healthz").status_code)
        loaded = [m for m in sys.modules if m.split(".")[0] in ("PySide6", "keyring", "requests")]
        assert not loaded, loaded
    """,
        tmp_path,
    )
    assert out.strip().splitlines()[-1] == "200"


def test_without_the_desktop_extra_the_app_says_what_to_install(tmp_path: Path) -> None:
    out = _run_without(
        {"PySide6", "shiboken6", "keyring", "requests"},
        """
        import contextlib, io
        from agentdesk.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main([])
        print(code, err.getvalue())
    """,
        tmp_path,
    )
    assert out.startswith("2 ")
    assert "pip install 'agentdesk[desktop]'" in out


def test_the_desktop_starts_without_the_postgres_driver(tmp_path: Path) -> None:
    _run_without(
        {"psycopg", "psycopg_binary"},
        """
        import agentdesk.desktop, agentdesk.local_mode, agentdesk.ui.shell.main_window
        assert "psycopg" not in sys.modules
    """,
        tmp_path,
    )


@pytest.mark.slow
def test_pip_install_server_extra_into_a_fresh_venv(tmp_path: Path) -> None:
    """The real install: the server imports and serves; Qt and keyring are not there."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"{ROOT}[server]",
        ],
        check=True,
        timeout=900,
        capture_output=True,
        text=True,
    )
    check = subprocess.run(
        [
            str(python),
            "-c",
            textwrap.dedent("""
        import importlib.util
        from agentdesk.server.app import create_app
        from agentdesk.server.cli import add_server_commands
        import psycopg
        for name in ("PySide6", "shiboken6", "keyring"):
            assert importlib.util.find_spec(name) is None, name
        print("ok")
    """),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "ok"
