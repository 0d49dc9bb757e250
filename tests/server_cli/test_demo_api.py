"""``generate_demo`` and ``agentdesk demo-data``: deterministic, never duplicated, usable."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agentdesk.cli import main
from agentdesk.models import Base, Role, Tenant, TenantCounter, Ticket, TicketStatus, User
from agentdesk.models.db import make_engine, make_session_factory
from agentdesk.server.app import create_app
from agentdesk.server.demo import (
    DEMO_TEAM_NAME,
    DEMO_USERS,
    DemoConflict,
    generate_demo,
)
from agentdesk.server.settings import ServerSettings
from tests.databases import drop_database, new_database_url
from tests.plugins.demo_data import NOW, billing_overview, load_rows

SYNCED = (
    "users",
    "calendars",
    "plans",
    "organisations",
    "contacts",
    "tickets",
    "ticket_events",
    "waiting_periods",
    "hour_blocks",
    "appointments",
    "time_entries",
)
#: Differ between runs by design: fresh ids, salted password hashes.
NOT_CONTENT = {"id", "tenant_id", "password_hash"}


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) == 36:
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def _canon(value: Any, labels: dict[uuid.UUID, str]) -> Any:
    """``value`` with every id (also inside JSON) replaced by its content-derived label."""
    if isinstance(value, dict):
        return {k: _canon(v, labels) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_canon(v, labels) for v in value]
    as_id = _as_uuid(value)
    if as_id is not None:
        return labels.get(as_id, "<unknown id>")
    return value


def snapshot(url: str) -> dict[str, list[str]]:
    """The database's content with ids replaced by labels derived from content, so two runs
    that made the same data with different ids compare equal. Tables are labelled in
    dependency order: a row's label depends on its content and on its parents' labels."""
    engine = make_engine(url)
    labels: dict[uuid.UUID, str] = {}
    out: dict[str, list[str]] = {}
    try:
        with engine.connect() as conn:
            for name in SYNCED:
                table = Base.metadata.tables[name]
                rows = [dict(r._mapping) for r in conn.execute(select(table))]
                keyed = sorted(
                    (
                        json.dumps(
                            {k: _canon(v, labels) for k, v in row.items() if k not in NOT_CONTENT},
                            default=str,
                            sort_keys=True,
                        ),
                        row["id"],
                    )
                    for row in rows
                )
                for i, (_, row_id) in enumerate(keyed):
                    labels[row_id] = f"{name}#{i}"
                # Second pass: self-references (a correction voiding an entry) now resolve.
                out[name] = sorted(
                    json.dumps(
                        {k: _canon(v, labels) for k, v in row.items() if k not in NOT_CONTENT},
                        default=str,
                        sort_keys=True,
                    )
                    for row in rows
                )
    finally:
        engine.dispose()
    return out


def _demo(url: str, **kwargs: Any) -> Any:
    engine = make_engine(url)
    try:
        return generate_demo(engine, **kwargs)
    finally:
        engine.dispose()


def test_same_seed_same_data_other_seed_other_data(
    database_url: str, db_kind: str, tmp_path: Path
) -> None:
    second = new_database_url(db_kind, tmp_path / "second")
    third = new_database_url(db_kind, tmp_path / "third")
    try:
        _demo(database_url, seed=5, tickets=100, now=NOW)
        _demo(second, seed=5, tickets=100, now=NOW)
        _demo(third, seed=6, tickets=100, now=NOW)
        first_snap = snapshot(database_url)
        assert first_snap == snapshot(second)
        assert first_snap["tickets"] != snapshot(third)["tickets"]
        assert "<unknown id>" not in json.dumps(first_snap)
    finally:
        drop_database(second)
        drop_database(third)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 7, 5, 3, 0, tzinfo=UTC),  # a holiday weekend, in the night
        datetime(2025, 12, 31, 22, 0, tzinfo=UTC),  # New Year's Eve: two calendar years of tickets
        datetime(2026, 11, 2, 13, 0, tzinfo=UTC),  # Monday morning after the clocks went back
    ],
)
def test_every_state_at_any_moment(database_url: str, now: datetime) -> None:
    summary = _demo(database_url, seed=2, tickets=150, now=now)
    assert summary.counts["tickets"] == 150
    assert set(summary.ticket_statuses) == {s.value for s in TicketStatus}
    engine = make_engine(database_url)
    overview = billing_overview(load_rows(engine), now)
    engine.dispose()
    assert overview.expiring_soon >= 1
    assert overview.forfeited >= 1


def test_second_run_changes_nothing(database_url: str) -> None:
    first = _demo(database_url, seed=1, tickets=200, now=NOW)
    again = _demo(database_url, seed=9, tickets=500)
    assert first.created
    assert not again.created
    assert again.tenant_id == first.tenant_id
    assert again.counts == first.counts
    assert again.ticket_statuses == first.ticket_statuses
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 1
        assert session.scalar(select(func.count()).select_from(Ticket)) == 200
    engine.dispose()


def test_refuses_when_a_demo_username_belongs_to_another_team(database_url: str) -> None:
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        team = Tenant(name="Acme Support")
        session.add(team)
        session.flush()
        session.add(
            User(tenant_id=team.id, username="lead", display_name="Real Lead", role=Role.LEAD)
        )
    with pytest.raises(DemoConflict, match="lead"):
        generate_demo(engine, tickets=50, now=NOW)
    with Session(engine) as session:
        assert session.scalars(select(Tenant.name)).all() == ["Acme Support"]
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
    engine.dispose()


def test_rejects_bad_arguments(database_url: str) -> None:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with pytest.raises(ValueError, match="tickets"):
        generate_demo(factory, tickets=-1)
    with pytest.raises(ValueError, match="aware"):
        generate_demo(factory, now=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    assert generate_demo(factory, tickets=0, now=NOW).counts["tickets"] == 0
    engine.dispose()


def test_demo_data_command(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo-data", "--database-url", database_url, "--tickets", "120", "--seed", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"Created the demo team {DEMO_TEAM_NAME!r}" in out
    assert "120 tickets (" in out
    for user in DEMO_USERS:
        assert re.search(
            rf"^  {re.escape(user.username)} +/ {re.escape(user.password)} ", out, re.MULTILINE
        ), user.username
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "already exists" in again
    assert "nothing was changed" in again
    engine = make_engine(database_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 1
        assert Counter(session.scalars(select(User.role))) == Counter(u.role for u in DEMO_USERS)
    engine.dispose()


def test_demo_data_command_reports_a_conflict(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["server", "init", "--database-url", database_url]) == 0
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        team = session.scalars(select(Tenant)).one()
        session.add(
            User(tenant_id=team.id, username="admin", display_name="Admin", role=Role.ADMIN)
        )
    engine.dispose()
    capsys.readouterr()
    assert main(["demo-data", "--database-url", database_url, "--tickets", "10"]) == 1
    err = capsys.readouterr().err
    # Another team is there: the demo would be a second team its people never see (issue 15).
    assert "already holds the team 'Support team'" in err
    assert "Nothing was changed" in err


def test_demo_data_rejects_a_bad_ticket_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo-data", "--tickets", "-5"])
    assert exc.value.code == 2
    assert "--tickets" in capsys.readouterr().err


def test_a_sync_pull_pages_through_the_whole_demo(database_url: str) -> None:
    """A desktop's first pull receives every demo row, in pages, parents before children."""
    summary = _demo(database_url, tickets=300, now=NOW)
    expected = sum(summary.counts.values())
    engine = make_engine(database_url)
    with Session(engine) as session:
        head = session.scalars(select(TenantCounter.version)).one()
    engine.dispose()
    app = create_app(ServerSettings(database_url=database_url))
    try:
        with TestClient(app) as client:
            login = client.post(
                "/api/v1/login", json={"username": "agent", "password": "demo-agent-pass"}
            )
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            client_id, cursor, pages = str(uuid.uuid4()), 0, 0
            seen: set[str] = set()
            while True:
                response = client.post(
                    "/api/v1/sync/pull",
                    headers=headers,
                    json={"client_id": client_id, "cursor": cursor, "limit": 1000},
                )
                assert response.status_code == 200, response.text
                body = response.json()
                pages += 1
                seen.update(change["id"] for change in body["changes"])
                for change in body["changes"]:
                    if change["table"] == "ticket_events":
                        assert change["values"]["ticket_id"] in seen
                cursor = body["cursor"]
                if not body["has_more"]:
                    break
    finally:
        app.state.engine.dispose()
    assert len(seen) == expected
    assert cursor == head
    assert pages > 1
