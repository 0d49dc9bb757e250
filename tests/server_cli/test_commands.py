"""``agentdesk server init`` and ``agentdesk user add``: idempotent, strict, and silent about
passwords."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agentdesk.cli import main
from agentdesk.models import Role, Tenant, TenantCounter, User
from agentdesk.models.db import make_engine
from agentdesk.models.migrate import current_revision, head_revision
from agentdesk.server.app import create_app
from agentdesk.server.cli import ROLES
from agentdesk.server.security import verify_password
from agentdesk.server.settings import (
    MAX_DB_CONNECTIONS,
    MAX_DB_CONNECTIONS_VARIABLE,
    MIN_DB_CONNECTIONS,
    ServerSettings,
)
from tests.databases import drop_database, new_database_url

PASSWORD = "correct horse battery"


class FakeTerminal(io.StringIO):
    """Standard input attached to a terminal: the command must prompt, not read it."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]  # a text stream
        raise AssertionError("prompted input must go through getpass, never plain stdin")


def _users(url: str) -> list[User]:
    engine = make_engine(url)
    with Session(engine) as session:
        users = list(session.scalars(select(User).order_by(User.username)))
    engine.dispose()
    return users


def _tenants(url: str) -> list[Tenant]:
    engine = make_engine(url)
    with Session(engine) as session:
        tenants = list(session.scalars(select(Tenant)))
    engine.dispose()
    return tenants


@pytest.fixture
def team(database_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """A database with one team, ready for ``user add``."""
    assert main(["server", "init", "--database-url", database_url, "--team-name", "Acme"]) == 0
    capsys.readouterr()
    return database_url


def _add(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = PASSWORD + "\n",
) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["user", "add", *args, "--database-url", url])


# --- server init ---------------------------------------------------------------------------------


def test_init_is_idempotent(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "server",
        "init",
        "--database-url",
        database_url,
        "--team-name",
        "Acme Support",
        "--timezone",
        "America/Chicago",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Created team 'Acme Support'" in out
    assert main(argv) == 0
    assert main([*argv[:-4], "--team-name", "Another"]) == 0
    again = capsys.readouterr().out
    assert "already exists; nothing to create" in again
    (tenant,) = _tenants(database_url)
    assert tenant.name == "Acme Support"
    assert tenant.timezone == "America/Chicago"
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert session.get(TenantCounter, tenant.id) is not None
    engine.dispose()


def test_init_gives_a_new_team_the_seed_plans(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import select

    from agentdesk.models import Calendar, Plan
    from agentdesk.policy.calendar import BusinessCalendar

    assert main(["server", "init", "--database-url", database_url]) == 0
    assert "Basic/Free, Standard, Premium, Enterprise" in capsys.readouterr().out
    engine = make_engine(database_url)
    with Session(engine) as session:
        plans = {p.key: p for p in session.scalars(select(Plan))}
        calendars = {c.id: c for c in session.scalars(select(Calendar))}
        assert sorted(plans) == ["basic", "enterprise", "premium", "standard"]
        assert all(p.version > 0 for p in plans.values()), "stamped, so desktops pull them"
        for plan in plans.values():
            assert plan.calendar_id is not None
            assert plan.calendar_id in calendars
            BusinessCalendar.from_dict(calendars[plan.calendar_id].data)
            plan.to_policy()
        by_plan = {key: calendars[p.calendar_id] for key, p in plans.items() if p.calendar_id}
        assert by_plan["enterprise"].name == "24x7"
        assert by_plan["basic"].data["tz"] == "America/New_York"
    engine.dispose()


def test_init_without_default_plans(database_url: str) -> None:
    from sqlalchemy import func, select

    from agentdesk.models import Plan

    assert main(["server", "init", "--database-url", database_url, "--no-default-plans"]) == 0
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Plan)) == 0
    engine.dispose()


def test_init_creates_the_schema(
    db_kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = new_database_url(db_kind, tmp_path, migrated=False)
    try:
        assert main(["server", "init", "--database-url", url]) == 0
        assert f"to {head_revision()}" in capsys.readouterr().out
        engine = make_engine(url)
        assert current_revision(engine) == head_revision()
        engine.dispose()
        assert [t.name for t in _tenants(url)] == ["Support team"]
    finally:
        drop_database(url)


def test_init_refuses_an_unknown_time_zone(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["server", "init", "--database-url", database_url, "--timezone", "Mars/Olympus_Mons"])
        == 1
    )
    assert "unknown time zone 'Mars/Olympus_Mons'" in capsys.readouterr().err
    assert _tenants(database_url) == []


def test_database_defaults_to_env_then_local_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolated_dirs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AGENTDESK_DATABASE_URL", raising=False)
    assert main(["server", "init"]) == 0
    assert (isolated_dirs / "agentdesk" / "server.sqlite3").exists()
    env_file = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv("AGENTDESK_DATABASE_URL", f"sqlite+pysqlite:///{env_file}")
    assert main(["server", "init", "--team-name", "From env"]) == 0
    assert "Created team 'From env'" in capsys.readouterr().out
    assert env_file.exists()


def test_bad_database_urls_are_reported_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "hunter2-secret"
    assert (
        main(
            [
                "server",
                "init",
                "--database-url",
                f"postgresql+psycopg://someone:{secret}@127.0.0.1:1/nowhere",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "cannot use the database" in err
    assert main(["server", "init", "--database-url", "no-such-scheme"]) == 1
    err += capsys.readouterr().err
    assert "database URL is not valid" in err
    assert secret not in err


# --- user add ------------------------------------------------------------------------------------


def test_add_user_with_password_on_stdin(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _add(
            team,
            monkeypatch,
            "dana",
            "--role",
            "lead",
            "--display-name",
            "Dana Whitfield",
            "--email",
            "dana@example.com",
            "--password-stdin",
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "Added 'dana' (lead) to team 'Acme'" in out
    assert PASSWORD not in out + err
    (user,) = _users(team)
    assert (user.username, user.role, user.display_name, user.email) == (
        "dana",
        Role.LEAD,
        "Dana Whitfield",
        "dana@example.com",
    )
    assert user.active
    assert user.version > 0  # stamped, so desktops pull the new colleague
    assert user.password_hash is not None
    assert PASSWORD not in user.password_hash
    assert verify_password(user.password_hash, PASSWORD)
    app = create_app(ServerSettings(database_url=team))
    try:
        with TestClient(app) as client:
            response = client.post("/api/v1/login", json={"username": "dana", "password": PASSWORD})
            assert response.status_code == 200
            assert response.json()["user"]["role"] == "lead"
    finally:
        app.state.engine.dispose()


def test_stdin_that_is_not_a_terminal_is_read_without_the_flag(
    team: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _add(team, monkeypatch, "sam", "--role", "agent", stdin=PASSWORD + "\r\n") == 0
    (user,) = _users(team)
    assert user.display_name == "sam"
    assert verify_password(user.password_hash, PASSWORD)


def test_duplicate_username_changes_nothing(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add(team, monkeypatch, "dana", "--role", "lead") == 0
    (before,) = _users(team)
    assert _add(team, monkeypatch, "dana", "--role", "agent", stdin="another-password\n") == 1
    assert "username 'dana' is already taken" in capsys.readouterr().err
    (after,) = _users(team)
    assert (after.role, after.password_hash, after.version) == (
        before.role,
        before.password_hash,
        before.version,
    )


def test_unknown_role_is_refused(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        _add(team, monkeypatch, "dana", "--role", "boss")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'boss'" in err
    assert all(role in err for role in ROLES)
    assert _users(team) == []


def test_roles_match_the_model() -> None:
    assert tuple(r.value for r in Role) == ROLES


def test_short_password_is_refused(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add(team, monkeypatch, "dana", "--role", "lead", stdin="short\n") == 1
    err = capsys.readouterr().err
    assert "at least 8 characters" in err
    assert "short" not in err.replace("at least", "")
    assert _users(team) == []


def test_empty_stdin_is_refused(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add(team, monkeypatch, "dana", "--role", "lead", "--password-stdin", stdin="") == 1
    assert "no password on standard input" in capsys.readouterr().err
    assert _users(team) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "--role", "agent"], "the username must be"),
        (["dana", "--role", "agent", "--email", "not-an-address"], "not an email address"),
        (["dana", "--role", "agent", "--display-name", "Tab\there"], "control characters"),
        (["dana", "--role", "agent", "--team", "Nope"], "no team named 'Nope'"),
    ],
)
def test_bad_fields_are_refused(
    team: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert _add(team, monkeypatch, *args) == 1
    assert message in capsys.readouterr().err
    assert _users(team) == []


def _prompts(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    asked: list[str] = []
    replies: Iterator[str] = iter(answers)

    def fake_getpass(prompt: str = "Password: ", stream: object = None) -> str:
        asked.append(prompt)
        return next(replies)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    return asked


def test_prompted_passwords_must_match(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = _prompts(monkeypatch, [PASSWORD, PASSWORD + "x"])
    assert main(["user", "add", "dana", "--role", "lead", "--database-url", team]) == 1
    out, err = capsys.readouterr()
    assert len(asked) == 2
    assert "do not match" in err
    assert PASSWORD not in out + err
    assert _users(team) == []


def test_prompted_password_twice(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = _prompts(monkeypatch, [PASSWORD, PASSWORD])
    assert main(["user", "add", "dana", "--role", "consultant", "--database-url", team]) == 0
    out, err = capsys.readouterr()
    assert asked == ["Password for dana: ", "Repeat the password: "]
    assert PASSWORD not in out + err
    (user,) = _users(team)
    assert verify_password(user.password_hash, PASSWORD)


def test_cancelling_at_the_prompt_creates_nothing(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(prompt: str = "Password: ", stream: object = None) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("getpass.getpass", interrupted)
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    assert main(["user", "add", "dana", "--role", "lead", "--database-url", team]) == 130
    assert "cancelled; nothing was changed" in capsys.readouterr().err
    assert _users(team) == []


def test_user_add_needs_a_team(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add(database_url, monkeypatch, "dana", "--role", "lead") == 1
    assert "run 'agentdesk server init' first" in capsys.readouterr().err


def test_user_add_chooses_among_several_teams(
    team: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(team)
    with Session(engine) as session, session.begin():
        session.add(Tenant(name="Beta"))
    engine.dispose()
    assert _add(team, monkeypatch, "dana", "--role", "lead") == 1
    assert "choose one with --team" in capsys.readouterr().err
    assert _add(team, monkeypatch, "dana", "--role", "lead", "--team", "Beta") == 0
    (user,) = _users(team)
    beta = next(t for t in _tenants(team) if t.name == "Beta")
    assert user.tenant_id == beta.id
    engine = make_engine(team)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1
    engine.dispose()


# --- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["server"],
            [
                "--database-url",
                "--host",
                "--port",
                "--log-level",
                "init",
                "default: 8765",
                "example",
            ],
        ),
        (["server", "init"], ["--database-url", "--team-name", "--timezone", "example"]),
        (["user"], ["add"]),
        (
            ["user", "add"],
            [
                "--role",
                "--display-name",
                "--email",
                "--team",
                "--password-stdin",
                "--database-url",
                *ROLES,
                "example",
            ],
        ),
        (["demo-data"], ["--database-url", "--seed", "--tickets", "default: 3000", "example"]),
    ],
)
def test_help(argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in expected:
        assert word in out, word


def test_the_connection_budget_option_states_the_settings_default_and_refuses_too_few(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--max-db-connections`` (issue 14): the help quotes the default the settings apply,
    and a budget with no room for both a request and LISTEN is refused before anything runs."""
    with pytest.raises(SystemExit) as exc:
        main(["server", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "--max-db-connections N the most database connections this process opens "
        f"(default: ${MAX_DB_CONNECTIONS_VARIABLE}, else {ServerSettings.max_db_connections})"
    ) in out
    with pytest.raises(SystemExit) as exc:
        main(["server", "--max-db-connections", "1"])
    assert exc.value.code == 2
    assert (
        f"must be between {MIN_DB_CONNECTIONS} and {MAX_DB_CONNECTIONS}, got 1"
        in capsys.readouterr().err
    )


class _Started(Exception):
    """Raised in place of building the app: the settings it was given are what is checked."""


def test_the_server_command_takes_its_connection_budget_from_the_environment_unless_given(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The systemd unit and the ASGI entry point can share one variable
    (docs/deploy.md): ``--max-db-connections`` wins over it, and a value it cannot use stops
    the command before anything starts."""
    budgets: list[int] = []

    def create_app(settings: ServerSettings) -> None:
        budgets.append(settings.max_db_connections)
        raise _Started

    monkeypatch.setattr("agentdesk.server.app.create_app", create_app)
    args = ["server", "--database-url", database_url]
    with pytest.raises(_Started):
        main(args)
    monkeypatch.setenv(MAX_DB_CONNECTIONS_VARIABLE, "9")
    with pytest.raises(_Started):
        main(args)
    with pytest.raises(_Started):
        main([*args, "--max-db-connections", "5"])
    assert budgets == [ServerSettings.max_db_connections, 9, 5]

    capsys.readouterr()
    monkeypatch.setenv(MAX_DB_CONNECTIONS_VARIABLE, "lots")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "AGENTDESK_MAX_DB_CONNECTIONS must be a whole number from 2" in err
    assert "'lots'; the server did not start" in err
    assert budgets == [ServerSettings.max_db_connections, 9, 5]


def test_top_level_help_lists_the_commands_without_loading_frameworks() -> None:
    code = (
        "import sys; from agentdesk.cli import build_parser; "
        "h = build_parser().format_help(); "
        "print(all(c in h for c in ('server', 'user', 'demo-data'))); "
        "print(sorted(m for m in ('PySide6', 'fastapi', 'sqlalchemy', 'uvicorn', 'argon2') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["True", "[]"]
