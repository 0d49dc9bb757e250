"""The command line answers --help and --version without starting Qt."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentdesk import __version__
from agentdesk.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_describes_the_app() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agentdesk", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "desktop app" in out
    assert "--server" in out


def test_help_does_not_import_qt() -> None:
    code = (
        "import sys; from agentdesk.cli import build_parser; build_parser(); "
        "print('PySide6' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
