"""The README's team-server trial, command by command, as a new user would type it (issue 15).

The commands are read from the README's block marked for this test, so the documentation
cannot drift from what works. Changes to what was typed: the test's database stands in for
``sqlite+pysqlite:///demo.sqlite3``, a free port for 8765, a smaller demo (``--tickets``) for
speed, and the desktop's sign-in (the last line) is made with the sync client over HTTP.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agentdesk.cli import main
from agentdesk.models import Tenant, Ticket
from agentdesk.models.db import make_engine
from agentdesk.sync.client import ApiClient
from agentdesk.sync.protocol import PullRequest
from tests.server_cli.test_server_process import _free_port, _wait_healthy

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/server_cli/test_readme_steps.py runs this block's commands in order -->"
PASSWORD = "dana-has-a-long-password"


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, "the README lost the block this test runs"
    block = text.split(MARKER, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_team_server_steps_make_one_working_team(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = readme_commands()
    assert [shlex.split(c)[:3] for c in commands] == [
        ["agentdesk", "server", "init"],
        ["agentdesk", "user", "add"],
        ["agentdesk", "server", "--database-url"],
        ["agentdesk", "--server", "http://127.0.0.1:8765"],
    ]
    port = _free_port()

    def argv(command: str) -> list[str]:
        args = shlex.split(command)[1:]
        args = [database_url if a == "sqlite+pysqlite:///demo.sqlite3" else a for a in args]
        return ["--port" if a == "--port" else (str(port) if a == "8765" else a) for a in args]

    init, add, serve, _desktop = commands
    assert main([*argv(init), "--tickets", "150"]) == 0
    out = capsys.readouterr().out
    assert "Created team 'Acme Support' with demo data" in out
    assert re.search(r"^  lead +/ demo-lead-pass ", out, re.MULTILINE)
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(argv(add)) == 0
    assert "Added 'dana' (lead) to team 'Acme Support'." in capsys.readouterr().out

    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            assert list(s.scalars(select(Tenant.name))) == ["Acme Support"], "one team"
            tickets = s.scalar(select(func.count()).select_from(Ticket))
        assert tickets == 150
    finally:
        engine.dispose()

    proc = subprocess.Popen(
        [sys.executable, "-m", "agentdesk", *argv(serve)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, base)
        # The desktop's sign-in, as dana and as a demo user: both see the demo's tickets.
        for username, password in (("dana", PASSWORD), ("lead", "demo-lead-pass")):
            with ApiClient(base) as client:
                client.login(username, password)
                seen: set[uuid.UUID] = set()
                cursor, more = 0, True
                while more:
                    page = client.pull(
                        PullRequest(client_id=uuid.uuid4(), cursor=cursor, limit=1000)
                    )
                    seen |= {c.id for c in page.changes if c.table == "tickets"}
                    cursor, more = page.cursor, page.has_more
                assert len(seen) == 150, username
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_demo_data_names_its_file_and_refuses_a_second_team(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``agentdesk demo-data`` without a URL says which file it writes (local mode uses
    another); beside an existing team it refuses instead of making a team nobody sees."""
    monkeypatch.delenv("AGENTDESK_DATABASE_URL", raising=False)
    from agentdesk.paths import data_dir

    assert main(["demo-data", "--tickets", "5"]) == 0
    out = capsys.readouterr().out
    server_file = data_dir() / "server.sqlite3"
    assert out.splitlines()[0] == (
        f"Writing into sqlite+pysqlite:///{server_file}: the database 'agentdesk server' uses "
        f"when given no --database-url. The desktop's local mode keeps its own demo in "
        f"{data_dir() / 'local-server.sqlite3'}."
    )
    assert server_file.exists()

    url = f"sqlite+pysqlite:///{tmp_path / 'team.sqlite3'}"
    assert main(["server", "init", "--database-url", url, "--team-name", "Acme Support"]) == 0
    capsys.readouterr()
    assert main(["demo-data", "--database-url", url, "--tickets", "5"]) == 1
    err = capsys.readouterr().err
    assert "the database already holds the team 'Acme Support'" in err
    assert "agentdesk server init --demo" in err
    assert "Nothing was changed" in err
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            assert list(s.scalars(select(Tenant.name))) == ["Acme Support"]
    finally:
        engine.dispose()


def test_server_init_help_has_a_clean_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["server", "init", "--help"])
    usage = capsys.readouterr().out.split("\n\n", 1)[0]
    assert usage.startswith("usage: agentdesk server init [-h] [--database-url URL]")
    assert "init [-h] [options] init" not in usage
    assert "--demo" in usage


def test_server_init_demo_refuses_another_time_zone(
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(
            [
                "server",
                "init",
                "--demo",
                "--timezone",
                "Europe/Paris",
                "--database-url",
                database_url,
            ]
        )
        == 1
    )
    assert "leave --timezone out with --demo" in capsys.readouterr().err
