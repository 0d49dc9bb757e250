"""``agentdesk --self-test`` run from source as a user runs it, and Help > About."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from agentdesk import __version__
from agentdesk.cli import build_parser
from agentdesk.paths import data_dir
from agentdesk.ui.shell.about import about_lines
from agentdesk.ui.theme import ICON_SIZES, app_icon, resources_dir
from tests.ui.shell_fixtures import (
    Shell,
    shell_app,
    shell_keyring,
    shell_local_data,
    shell_local_template,
    shell_settings,
)

__all__ = [
    "shell_app",
    "shell_keyring",
    "shell_local_data",
    "shell_local_template",
    "shell_settings",
]

ROOT = Path(__file__).resolve().parents[2]


def test_self_test_from_source_reports_ok_and_leaves_nothing_behind(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("AGENTDESK_DATA_DIR", None)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "agentdesk", "--self-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith(f"AgentDesk {__version__} self-test\n")
    assert "platform: offscreen" in out
    assert re.search(r"main window: open, [1-9]\d* tickets in the queue", out)
    assert re.search(r"sync: one round trip .*cursor [1-9]\d*, 0 pending", out)
    assert out.rstrip().splitlines()[-1].startswith("OK in ")
    assert "Traceback" not in proc.stderr
    assert "propagateSizeHints" not in proc.stderr
    used = re.search(r"data directory: (\S+) \(temporary\)", out)
    assert used is not None
    assert not Path(used.group(1)).exists(), "the temporary data directory is removed"
    assert not list(cwd.iterdir()), "nothing written to the working directory"
    written = [p for p in isolated_dirs.rglob("*") if p.is_file()]
    assert written == [], "nothing written to the user's data, config or cache directories"


def test_icon_files_exist_in_every_size_and_the_desktop_file_names_them() -> None:
    resources = resources_dir()
    assert resources == ROOT / "resources"
    assert (resources / "agentdesk.svg").read_text().lstrip().startswith("<?xml")
    for size in ICON_SIZES:
        png = (resources / f"agentdesk-{size}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(png[16:20], "big") == size  # IHDR width
        assert int.from_bytes(png[20:24], "big") == size
    entry = (resources / "agentdesk.desktop").read_text().splitlines()
    assert entry[0] == "[Desktop Entry]"
    fields = dict(line.split("=", 1) for line in entry[1:] if "=" in line)
    assert fields["Name"] == "AgentDesk"
    assert fields["Icon"] == "agentdesk"
    assert fields["Exec"].startswith("AgentDesk")
    assert fields["Type"] == "Application"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_the_window_uses_the_icon_and_about_says_version_server_data_and_licence(
    qtbot: QtBot,
    shell_app: Shell,
) -> None:
    window = shell_app.window
    assert sorted(s.width() for s in app_icon().availableSizes()) == list(ICON_SIZES)
    assert not window.windowIcon().isNull()
    lines = about_lines(None)
    assert lines[0] == f"AgentDesk {__version__}"
    assert "Server: not connected" in lines

    shell_app.controller.start()
    qtbot.waitUntil(lambda: window.workspace is not None, timeout=30_000)
    box = window.show_about()
    qtbot.waitExposed(box)
    assert box.textFormat() == Qt.TextFormat.PlainText
    text = box.text()
    assert f"AgentDesk {__version__}" in text
    assert "Server: Local mode" in text
    assert f"Data directory: {data_dir()}" in text
    assert "Licence: MIT" in text
    assert not box.iconPixmap().isNull()
    # --version says the same version.
    assert build_parser().format_usage()  # the parser builds
    version = subprocess.run(
        [sys.executable, "-m", "agentdesk", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"agentdesk {__version__}"
    box.close()
