"""Shared fixtures: every test gets its own data directory and never touches the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Headless everywhere, even when someone runs plain `pytest` outside `make test`.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point platformdirs (XDG) and the app's own override at a per-test directory."""
    home = tmp_path / "home"
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        path = home / sub
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("AGENTDESK_DATA_DIR", str(home / "agentdesk"))
    return home
