"""Upgrading either side without losing data.

* The server refuses a database newer than itself, naming both versions, and changes nothing.
* It migrates an older database, with the data in it, after a backup when asked.
* A desktop too old (or too new) for the server says so and keeps its outbox.
* A desktop whose replica was migrated drains its outbox before reloading from the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, create_engine, select, text

from agentdesk import __version__
from agentdesk.models import Ticket, TicketEvent
from agentdesk.models.db import make_engine
from agentdesk.models.migrate import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    reload_needed,
)
from agentdesk.server.demo import generate_demo
from agentdesk.sync.client import IncompatibleVersion, Offline
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION, PushRequest, PushResponse
from agentdesk.sync.replica import Replica
from tests.plugins.live_team import Team, free_port, ticket_args


def previous_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_revision("head")
    assert head is not None
    assert isinstance(head.down_revision, str)
    return head.down_revision


def before_last_reload() -> str:
    """The revision before the newest one whose rows a replica must reload (a migration that
    adds columns): a replica written there reloads after the update."""
    script = ScriptDirectory.from_config(alembic_config())
    for rev in script.walk_revisions():
        if getattr(rev.module, "REPLICA_RELOAD", True):
            assert isinstance(rev.down_revision, str)
            return rev.down_revision
    raise AssertionError("no revision needs a reload")


def test_index_only_revisions_spare_the_replica_a_reload() -> None:
    head = head_revision()
    assert head is not None
    assert not reload_needed(head, head)
    assert not reload_needed(None, head)  # a new replica has nothing to reload
    assert not reload_needed("0010", "0013")  # 0011, 0012 and 0013 add indexes only
    assert reload_needed("0009", "0012")  # 0010 adds columns
    assert reload_needed(before_last_reload(), head)


def raw_snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table as the database holds it (reflected, so it works at any
    revision), keyed by column name, in primary-key order."""
    meta = MetaData()
    meta.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [
                dict(r._mapping) for r in conn.execute(select(table).order_by(*order))
            ]
    return out


def start_server(url: str, *extra: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {**os.environ, "AGENTDESK_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentdesk", "server", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


def wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    """Until /healthz answers; on failure the process is stopped and its pipes closed."""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.communicate()[1]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become healthy")
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        raise


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


# --------------------------------------------------------------------------- the server


def test_server_refuses_a_database_newer_than_itself(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    before = raw_snapshot(engine)
    proc, _port = start_server(database_url)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "schema revision 9999" in err
    assert f"AgentDesk {__version__}" in err
    assert f"up to {head_revision()}" in err
    assert "did not start" in err
    assert "Traceback" not in err
    assert current_revision(engine) == "9999"
    assert raw_snapshot(engine) == before
    engine.dispose()


def test_server_migrates_an_older_database_with_its_data_after_a_backup(
    database_url: str, tmp_path: Path
) -> None:
    """A database at the previous schema revision, holding a demo team, is upgraded by
    ``agentdesk server --backup-first DIR``: the backup holds the old revision and every row,
    and after the upgrade every row is still there."""
    engine = make_engine(database_url)
    generate_demo(engine, seed=5, tickets=120)
    previous = previous_revision()
    downgrade(engine, previous)
    assert current_revision(engine) == previous
    old = raw_snapshot(engine)
    assert len(old["tickets"]) == 120
    assert old["time_entries"]

    backups = tmp_path / "backups"
    backups.mkdir()
    proc, port = start_server(database_url, "--backup-first", str(backups))
    wait_healthy(proc, port)
    err = stop(proc)
    assert current_revision(engine) == head_revision()
    new = raw_snapshot(engine)
    # The started server queues what it owes at once (prepaid-hours expiry warnings for the
    # demo's blocks): rows added there, none changed or lost; every other table is as it was.
    queued_at_start = {"notifications", "notification_deliveries"}
    for table, rows in old.items():
        columns = set(rows[0]) if rows else set()
        kept = [{k: r[k] for k in columns} for r in new[table]]
        if table in queued_at_start:
            assert all(r in kept for r in rows), table
        else:
            assert kept == rows, table
    made = list(backups.iterdir())
    assert len(made) == 1
    assert f"from-{previous}" in made[0].name
    assert "Backed up the database" in err
    backup_engine = create_engine(f"sqlite+pysqlite:///{made[0]}")
    assert current_revision(backup_engine) == previous
    with backup_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tickets")).scalar_one() == 120
    backup_engine.dispose()

    # Started again, there is nothing to upgrade and so no second backup.
    proc, port = start_server(database_url, "--backup-first", str(backups))
    wait_healthy(proc, port)
    stop(proc)
    assert len(list(backups.iterdir())) == 1
    engine.dispose()


# --------------------------------------------------------------------------- the desktop


@pytest.mark.parametrize(
    ("declared", "code", "says"),
    [
        (PROTOCOL_VERSION - 1, "client_too_old", "too old for the server"),
        (PROTOCOL_VERSION + 1, "server_too_old", "ask whoever runs it to upgrade"),
    ],
)
def test_a_desktop_the_server_cannot_serve_says_so_and_keeps_its_outbox(
    team: Team, declared: int, code: str, says: str
) -> None:
    desk = team.desk("agent")
    desk.sync()
    # The server was upgraded (or this desktop was, ahead of the server) since that sync.
    desk.client.headers[PROTOCOL_HEADER] = str(declared)
    args = ticket_args(team.world)
    desk.replica.mutate("create_ticket", args)
    with pytest.raises(IncompatibleVersion) as caught:
        desk.sync()
    assert caught.value.status == 426
    assert caught.value.code == code
    assert says in caught.value.message
    assert "stays on" in caught.value.message
    assert desk.engine.status.state == "offline"
    assert says in (desk.engine.status.last_error or "")
    assert desk.replica.pending_count() == 1
    with team.db() as s:
        assert s.get(Ticket, uuid.UUID(args["ticket_id"])) is None
    # The same desktop, updated: its work goes through, once.
    desk.client.headers[PROTOCOL_HEADER] = str(PROTOCOL_VERSION)
    desk.sync()
    assert desk.replica.pending_count() == 0
    with team.db() as s:
        assert s.get(Ticket, uuid.UUID(args["ticket_id"])) is not None
    assert desk.engine.status.state == "online"  # type: ignore[comparison-overlap]  # it changed


def test_a_request_with_a_garbled_protocol_header_is_a_clear_400(team: Team) -> None:
    desk = team.desk("agent")
    desk.client.headers[PROTOCOL_HEADER] = "banana"
    response = desk.client.post(
        f"{team.url}/api/v1/sync/pull",
        json={"client_id": str(desk.replica.state.client_id), "cursor": 0},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == PROTOCOL_HEADER
    ok = requests.get(f"{team.url}/healthz", timeout=5)
    assert ok.headers[PROTOCOL_HEADER] == str(PROTOCOL_VERSION)


def test_after_a_schema_change_the_desktop_drains_its_outbox_before_reloading(team: Team) -> None:
    desk = team.desk("agent")
    desk.sync()
    first = ticket_args(team.world, subject="Before the update")
    desk.replica.mutate("create_ticket", first)
    desk.sync()
    # Offline, the agent keeps working: two unsent mutations.
    team.server.stop()
    tid = first["ticket_id"]
    desk.replica.mutate("add_note", {"ticket_id": tid, "body": "written offline"})
    second = ticket_args(team.world, subject="Written offline")
    desk.replica.mutate("create_ticket", second)
    assert desk.replica.pending_count() == 2
    path = desk.replica.path
    desk.replica.close()

    # The desktop is updated: its replica was written before a revision that adds columns.
    previous = before_last_reload()
    old = make_engine(f"sqlite+pysqlite:///{path}")
    downgrade(old, previous)
    old.dispose()
    replica = Replica(path)
    assert replica.schema_reset_pending() == f"{previous}->{head_revision()}"
    assert replica.pending_count() == 2
    events: list[str] = []
    engine = SyncEngine(replica, desk.client, backoff_base=0.05, backoff_cap=0.2)
    push = desk.client.push

    def counted_push(request: PushRequest) -> PushResponse:
        events.append("push")
        return push(request)

    desk.client.push = counted_push  # type: ignore[method-assign]
    engine.add_page_observer(lambda page: events.append("reset" if page.reset else "pull"))

    # Still offline: no reload, nothing lost, the old rows still show.
    with pytest.raises(Offline):
        engine.sync_once()
    assert replica.pending_count() == 2
    assert replica.schema_reset_pending() is not None
    with replica.session() as s:
        subject = s.scalar(
            select(Ticket.subject).where(Ticket.id == uuid.UUID(second["ticket_id"]))
        )
    assert subject == "Written offline"

    team.server.start()
    engine.sync_once()
    assert events.index("push") < events.index("reset"), events
    assert replica.pending_count() == 0
    assert replica.schema_reset_pending() is None
    with team.db() as s:
        assert s.get(Ticket, uuid.UUID(second["ticket_id"])) is not None
        server_tickets = set(s.scalars(select(Ticket.id)))
        server_events = set(s.scalars(select(TicketEvent.id)))
    with replica.session() as s:
        assert set(s.scalars(select(Ticket.id))) == server_tickets
        assert set(s.scalars(select(TicketEvent.id))) == server_events
    events.clear()
    engine.sync_once()
    assert "reset" not in events  # reloaded once, not on every sync
    replica.close()


def test_a_replica_migrated_across_new_indexes_only_keeps_its_rows(team: Team) -> None:
    """0011 to 0013 add indexes only: the desktop's replica is migrated in place and is not
    reloaded from the server (a reload of a large team's history takes minutes)."""
    desk = team.desk("agent")
    desk.sync()
    desk.replica.mutate("create_ticket", ticket_args(team.world, subject="Kept"))
    desk.sync()
    assert desk.replica.pending_count() == 0
    path = desk.replica.path
    with desk.replica.session() as s:
        tickets = set(s.scalars(select(Ticket.id)))
    assert tickets
    desk.replica.close()
    old = make_engine(f"sqlite+pysqlite:///{path}")
    downgrade(old, "0010")
    old.dispose()
    replica = Replica(path)
    try:
        assert current_revision(replica.engine) == head_revision()
        assert replica.schema_reset_pending() is None
        with replica.session() as s:
            assert set(s.scalars(select(Ticket.id))) == tickets
    finally:
        replica.close()
