"""Shared fixtures: every test gets its own data directory and never touches the user's."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import ENGINES

# Shared test support: loaded here once, so no conftest imports another (see tests/plugins/).
pytest_plugins = [
    "tests.plugins.live_team",
    "tests.plugins.panels",
    "tests.plugins.demo_data",
    "tests.plugins.silent_server",
]

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


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """A command run in-process (``agentdesk server``) configures the process's logging: the
    ``agentdesk`` logger stops propagating, and later tests' ``caplog`` saw none of its lines.
    Each test gets the loggers back as they were."""
    names = ("", "agentdesk", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [
        (lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        for lg in (logging.getLogger(n) for n in names)
    ]
    yield
    for lg, level, handlers, propagate, disabled in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.disabled = disabled


@pytest.fixture(params=ENGINES)
def db_kind(request: pytest.FixtureRequest) -> str:
    """Each database test runs on SQLite, and on PostgreSQL when CI provides one."""
    return str(request.param)


@pytest.fixture
def database_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database migrated to head."""
    from tests.databases import drop_database, new_database_url

    url = new_database_url(db_kind, tmp_path)
    yield url
    drop_database(url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.databases import drop_template

    drop_template()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests are deselected (not skipped) when no PostgreSQL is configured:
    they cannot run there, and a skip would read as a feature that should work but doesn't."""
    if "postgresql" in ENGINES:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if item.get_closest_marker("postgres") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def collector_on_the_main_thread() -> Iterator[None]:
    """The cyclic collector runs between tests on the main thread, never on a worker: a pass
    that ran on a background read's or a test server's thread and freed a cycle holding a Qt
    object destroyed it on the wrong thread while the GUI thread delivered an event to it (a
    segmentation fault). The desktop does the same (``agentdesk/ui/gc_pacing.py``)."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


@pytest.fixture(autouse=True)
def collected_between_tests(collector_on_the_main_thread: None) -> Iterator[None]:
    """What CPython's thresholds say is due, collected after each test on the main thread."""
    from agentdesk.ui.gc_pacing import collect_due

    yield
    collect_due()
