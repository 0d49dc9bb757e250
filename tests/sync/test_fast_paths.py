"""The sync hot paths tuned for throughput must say exactly what the straightforward code said.

* Pull pages are built from Core rows and encoded once (``sync_service.pull_body``): the JSON must
  be a valid ``PullResponse`` byte for byte, and each change the wire form ``row_to_wire`` gives
  for the ORM object.
* The replica writes pulled rows through the driver's executemany with SQLAlchemy's own bind
  processors (``replica_upsert.replace_rows``): the stored bytes must equal
  ``conn.execute(insert)``'s.
* A push runs each mutation of a group in a savepoint and undoes a refusal by rolling back to
  it: a refused mutation must leave no trace (nor a version number), and a retry arriving
  meanwhile must wait for the group and be answered as a duplicate.
* The version counter is taken with a Core UPDATE: a counter object already loaded in the
  session must not go stale.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine, insert, select
from sqlalchemy.event import listen
from sqlalchemy.orm import Session

from agentdesk.models import (
    AuthToken,
    EventKind,
    MutationRecord,
    SyncClient,
    TenantCounter,
    Ticket,
    TicketEvent,
    User,
    utcnow,
)
from agentdesk.models.base import UTCDateTime
from agentdesk.models.db import make_engine, make_session_factory, session_scope, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.models.versioning import current_version, enable_stamping
from agentdesk.server import sync_service
from agentdesk.server.app import create_app
from agentdesk.server.deps import ServerState
from agentdesk.server.errors import ApiError
from agentdesk.server.security import token_hash
from agentdesk.server.settings import ServerSettings
from agentdesk.sync import replica as replica_module
from agentdesk.sync import replica_upsert
from agentdesk.sync.mutators import MUTATORS, MutationContext, MutationRejected, Mutator
from agentdesk.sync.protocol import Mutation, PullRequest, PullResponse, PushRequest
from agentdesk.sync.replica import BULK_WAL_PAGES, REPLICA_CACHE_KIB, WAL_PAGES, Replica
from agentdesk.sync.rows import (
    MODELS_BY_TABLE,
    SYNCED_MODELS,
    TABLE_ORDER,
    mapping_to_wire,
    row_to_wire,
    wire_select,
    wire_to_values,
)
from tests.sync.world import World, build_world


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def busy_world(engine: Engine) -> World:
    """The sync world with a bit of everything: tickets with history, a triage, a note, a
    stopped timer (a tombstone and a time entry), an hour purchase (a Decimal)."""
    w = build_world(make_session_factory(engine))
    for n in range(3):
        tid = uuid.uuid4()
        w.run(
            "agent",
            "create_ticket",
            ticket_id=str(tid),
            subject=f"Checkout broken {n}",
            channel="portal",
            organisation_id=str(w.orgs["globex"]),
            requester_id=str(w.contacts["ann"]),
            stated_urgency=2,
        )
        w.run("coordinator", "triage_ticket", ticket_id=str(tid), tier=2, level="L2")
        w.run("agent", "add_note", ticket_id=str(tid), body="Looked at the logs: ünïcode ✓")
    timer = uuid.uuid4()
    w.run(
        "consultant",
        "start_timer",
        timer_id=str(timer),
        organisation_id=str(w.orgs["globex"]),
        started_at=(w.now - timedelta(minutes=30)).isoformat(),
    )
    w.run(
        "consultant",
        "stop_timer",
        timer_id=str(timer),
        entry_id=str(uuid.uuid4()),
        ended_at=w.now.isoformat(),
    )
    w.run(
        "lead",
        "record_hour_purchase",
        block_id=str(uuid.uuid4()),
        organisation_id=str(w.orgs["globex"]),
        minutes=600,
        purchased_at=w.now.isoformat(),
        price="1500.50",
    )
    return w


def _all_synced(session: Session, tenant: uuid.UUID) -> list[Any]:
    rows: list[Any] = []
    for model in SYNCED_MODELS:
        rows.extend(session.scalars(select(model).where(model.tenant_id == tenant)))
    return rows


# --------------------------------------------------------------------------- pull


def test_core_rows_give_the_same_wire_form_as_orm_objects(
    engine: Engine, busy_world: World
) -> None:
    with Session(engine) as s:
        expected = {
            (w["table"], w["id"]): w for w in map(row_to_wire, _all_synced(s, busy_world.tenant))
        }
        got = {}
        for model in SYNCED_MODELS:
            table = model.__table__  # type: ignore[attr-defined]
            for row in s.execute(
                wire_select(model).where(table.c.tenant_id == busy_world.tenant)
            ).mappings():
                wire = mapping_to_wire(model, row)
                got[(wire["table"], wire["id"])] = wire
    assert got == expected
    assert {t for t, _ in got} >= {
        "tickets",
        "ticket_events",
        "running_timers",
        "time_entries",
        "hour_blocks",
        "users",
        "plans",
        "calendars",
    }
    assert all("password_hash" not in w["values"] for (t, _), w in got.items() if t == "users")


def test_wire_to_values_restores_every_column(engine: Engine, busy_world: World) -> None:
    with Session(engine) as s:
        for obj in _all_synced(s, busy_world.tenant):
            wire = row_to_wire(obj)
            values = wire_to_values(wire["table"], wire)
            assert values == {key: getattr(obj, key) for key in values}, wire["table"]
            # The same from a parsed Change (ids already UUIDs), as the replica passes it.
            change = PullResponse.model_validate(
                {
                    "cursor": 1,
                    "has_more": False,
                    "changes": [wire],
                    "last_mutation_id": 0,
                    "rejections": [],
                }
            ).changes[0]
            assert (
                wire_to_values(
                    change.table,
                    {
                        "id": change.id,
                        "version": change.version,
                        "deleted": change.deleted,
                        "values": change.values,
                    },
                )
                == values
            )


class _Api:
    def __init__(self, client: TestClient, world: World) -> None:
        self.client = client
        token = f"tok-{uuid.uuid4().hex}"
        with session_scope(world.sessions) as s:
            s.add(
                AuthToken(
                    user_id=world.users["agent"],
                    token_hash=token_hash(token),
                    expires_at=utcnow() + timedelta(hours=1),
                )
            )
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = self.client.post(f"/api/v1/sync/{path}", json=body, headers=self.headers)
        assert r.status_code == 200, r.text
        return r


def test_the_pull_route_sends_a_pull_response_exactly(
    database_url: str, engine: Engine, busy_world: World
) -> None:
    app = create_app(ServerSettings(database_url=database_url))
    cid = uuid.uuid4()
    with TestClient(app) as client:
        api = _Api(client, busy_world)
        push = {
            "client_id": str(cid),
            "mutations": [
                {
                    "id": 1,
                    "name": "triage_ticket",
                    "args": {"ticket_id": str(uuid.uuid4()), "tier": 1},
                }
            ],
        }
        api.post("push", push)  # refused (agents do not triage): a rejection to report
        pages, cursor = [], 0
        while True:
            raw = api.post("pull", {"client_id": str(cid), "cursor": cursor, "limit": 7}).content
            page = PullResponse.model_validate_json(raw)
            # Byte for byte what FastAPI's response_model serialisation of the model gives.
            assert raw == page.model_dump_json().encode()
            pages.append(page)
            cursor = page.cursor
            if not page.has_more:
                break
        reset = api.post("pull", {"client_id": str(cid), "cursor": 10**9}).content
        assert reset == PullResponse.model_validate_json(reset).model_dump_json().encode()
        assert PullResponse.model_validate_json(reset).reset is True
    assert len(pages) > 3
    assert [(r.mutation_id, r.code) for r in pages[0].rejections] == [(1, "forbidden")]
    with Session(engine) as s:
        expected = sorted(
            map(row_to_wire, _all_synced(s, busy_world.tenant)),
            key=lambda w: (w["version"], TABLE_ORDER[w["table"]], w["id"]),
        )
    for wire in expected:  # the puller is an agent, and agents see no prices (issue 11)
        if wire["table"] == "hour_blocks":
            assert wire["values"]["price"] is not None
            wire["values"]["price"] = None
    assert [c.model_dump(mode="json") for p in pages for c in p.changes] == expected


def test_pull_in_process_is_the_validated_body(engine: Engine, busy_world: World) -> None:
    state = _state(engine)
    user = _user(engine, busy_world, "agent")
    request = PullRequest(client_id=uuid.uuid4(), cursor=0, limit=5)
    assert sync_service.pull(state, user, request) == PullResponse.model_validate(
        sync_service.pull_body(state, user, request)
    )


# --------------------------------------------------------------------------- replica writes


def _stored(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()


def test_bulk_replace_stores_what_sqlalchemy_stores(
    tmp_path: Path, engine: Engine, busy_world: World
) -> None:
    with Session(engine) as s:
        wires = [row_to_wire(o) for o in _all_synced(s, busy_world.tenant)]
    # As the replica gets them: ids parsed by the protocol model; and some UUID text that is
    # not canonical (upper case), which must be stored in canonical form all the same.
    for n, wire in enumerate(wires):
        if n % 2:
            wire["id"] = uuid.UUID(wire["id"])
        if wire["table"] == "tickets" and n % 3 == 0:
            wire["values"]["organisation_id"] = wire["values"]["organisation_id"].upper()
        if wire["table"] == "tickets" and n % 3 == 1:  # an instant given in New York time
            arrived = datetime.fromisoformat(wire["values"]["arrived_at"])
            wire["values"]["arrived_at"] = arrived.astimezone(
                timezone(-timedelta(hours=5))
            ).isoformat()
    fast, slow = tmp_path / "fast.sqlite3", tmp_path / "slow.sqlite3"
    tables = sorted({w["table"] for w in wires})
    for path, fast_path in ((fast, True), (slow, False)):
        e = make_engine(sqlite_url(path))
        upgrade(e)
        with e.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA foreign_keys=OFF")  # pages are not cut at foreign keys
            with conn.begin():
                for name in tables:
                    table = MODELS_BY_TABLE[name].__table__  # type: ignore[attr-defined]
                    rows = [w for w in wires if w["table"] == name]
                    # Twice: the second round replaces every row with itself.
                    for _ in range(2):
                        if fast_path:
                            replica_upsert.replace_rows(conn, name, rows)
                        else:
                            conn.execute(
                                insert(table).prefix_with("OR REPLACE"),
                                [wire_to_values(name, w) for w in rows],
                            )
        e.dispose()
    for name in tables:
        assert _stored(fast, name) == _stored(slow, name), name
        assert len(_stored(fast, name)) == sum(w["table"] == name for w in wires)
    # users keep their password hash column to its default: that table takes the plain path.
    assert replica_upsert._REPLACE_PLANS["users"] is None
    assert replica_upsert._REPLACE_PLANS["tickets"] is not None


def test_the_stored_instant_shortcut_agrees_with_sqlalchemy() -> None:
    dialect = make_engine("sqlite://").dialect
    slow = replica_upsert._composed_or_none(
        datetime.fromisoformat, UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    )
    assert replica_upsert._utc_text_agrees(slow)
    convert = replica_upsert._utc_text_or(slow)
    for text in (
        "2026-03-03T15:00:00+00:00",
        "2026-03-03T15:00:00.000001+00:00",
        "2026-03-03T10:00:00-05:00",
        "2026-03-03T15:00:00.5+00:00",
        None,
    ):
        assert convert(text) == slow(text)
    with pytest.raises(ValueError, match="day is out of range"):
        convert("2026-02-30T15:00:00+00:00")  # no such day: refused as on the slow path
    # A processor storing instants some other way is used as it is, never the shortcut.
    assert not replica_upsert._utc_text_agrees(lambda v: None if v is None else f"<{v}>")


# --------------------------------------------------------------------------- push


def _state(engine: Engine) -> ServerState:
    app = create_app(
        ServerSettings(
            database_url=engine.url.render_as_string(hide_password=False), migrate_on_start=False
        )
    )
    state: ServerState = app.state.agentdesk
    return state


def _user(engine: Engine, world: World, who: str) -> User:
    with Session(engine) as s:
        user = s.get_one(User, world.users[who])
        s.expunge(user)
    return user


class _NoteArgs(BaseModel):
    ticket_id: uuid.UUID


def _ticket_id(engine: Engine, world: World) -> uuid.UUID:
    with Session(engine) as s:
        return s.scalars(select(Ticket.id).where(Ticket.tenant_id == world.tenant)).first()  # type: ignore[return-value]


def _flaky(refusals: int) -> Mutator:
    """A mutator that writes (and flushes) an event, then refuses if the mutation is one of
    the first ``refusals`` it met; applies normally otherwise. Like the real rules it decides
    the same every time a mutation runs (a fast group that meets the refusal runs it again)."""
    seen: set[tuple[uuid.UUID, int]] = set()
    refused: set[tuple[uuid.UUID, int]] = set()

    def apply(ctx: MutationContext, a: _NoteArgs) -> None:
        key = (ctx.client_id, ctx.mutation_id)
        if key not in seen:
            seen.add(key)
            if len(refused) < refusals:
                refused.add(key)
        ticket = ctx.session.get_one(Ticket, a.ticket_id)
        ctx.session.add(
            TicketEvent(
                id=ctx.derived_id(),
                tenant_id=ctx.tenant_id,
                ticket_id=ticket.id,
                kind=EventKind.NOTE,
                body="half done",
            )
        )
        ticket.subject = "changed by a refused mutation"
        ctx.session.flush()
        if key in refused:
            raise MutationRejected("invalid", "refused after writing")

    return Mutator("test_flaky", _NoteArgs, frozenset(MUTATORS["add_note"].roles), apply)


def test_a_refused_mutation_leaves_no_trace(
    engine: Engine, busy_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(MUTATORS, "test_flaky", _flaky(1))
    state, user = _state(engine), _user(engine, busy_world, "agent")
    tid, cid = _ticket_id(engine, busy_world), uuid.uuid4()
    with Session(engine) as s:
        before = (
            current_version(s, busy_world.tenant),
            s.get_one(Ticket, tid).subject,
            len(s.scalars(select(TicketEvent.id)).all()),
        )
    resp = sync_service.push(
        state,
        user,
        PushRequest(
            client_id=cid,
            mutations=[
                Mutation(id=1, name="test_flaky", args={"ticket_id": str(tid)}),
                Mutation(id=2, name="test_flaky", args={"ticket_id": str(tid)}),
            ],
        ),
    )
    assert [(r.status, r.code) for r in resp.results] == [
        ("rejected", "invalid"),
        ("applied", None),
    ]
    assert resp.last_mutation_id == 2
    with Session(engine) as s:
        records = {r.mutation_id: r for r in s.scalars(select(MutationRecord))}
        assert (records[1].status, records[1].version) == ("rejected", 0)
        assert records[2].status == "applied"
        assert records[2].version == current_version(s, busy_world.tenant) == before[0] + 1
        assert len(s.scalars(select(TicketEvent.id)).all()) == before[2] + 1  # mutation 2's
        assert s.get_one(SyncClient, cid).last_mutation_id == 2
    # The refusal is still reported by a pull, and a resend repeats it.
    body = sync_service.pull_body(state, user, PullRequest(client_id=cid, cursor=before[0]))
    assert [r["mutation_id"] for r in body["rejections"]] == [1]
    again = sync_service.push(
        state,
        user,
        PushRequest(
            client_id=cid,
            mutations=[Mutation(id=1, name="test_flaky", args={"ticket_id": str(tid)})],
        ),
    )
    assert (again.results[0].status, again.results[0].code) == ("duplicate", "invalid")


def test_a_retry_during_a_refusal_waits_for_the_group_and_is_a_duplicate(
    engine: Engine, busy_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal rolls back to its savepoint only: the client row stays locked, so the
    desktop's retry of the same push (on its own connection) cannot slip in between the
    refusal and its record; it waits for the group's commit and gets the recorded refusal."""
    state, user = _state(engine), _user(engine, busy_world, "agent")
    tid, cid = _ticket_id(engine, busy_world), uuid.uuid4()
    request = PushRequest(
        client_id=cid, mutations=[Mutation(id=1, name="test_flaky", args={"ticket_id": str(tid)})]
    )
    flaky = _flaky(1)
    retried: list[Any] = []
    retry = threading.Thread(target=lambda: retried.append(sync_service.push(state, user, request)))

    def refuse_while_a_retry_arrives(ctx: MutationContext, a: _NoteArgs) -> None:
        if not retry.is_alive():
            retry.start()
            retry.join(timeout=0.5)
            assert retry.is_alive(), "the retry did not wait for the client lock"
        flaky.apply(ctx, a)

    monkeypatch.setitem(
        MUTATORS,
        "test_flaky",
        Mutator("test_flaky", _NoteArgs, flaky.roles, refuse_while_a_retry_arrives),
    )
    resp = sync_service.push(state, user, request)
    retry.join(timeout=30)
    assert [(r.status, r.code) for r in resp.results] == [("rejected", "invalid")]
    assert [(r.status, r.code) for r in retried[0].results] == [("duplicate", "invalid")]
    assert retried[0].last_mutation_id == 1
    with Session(engine) as s:
        records = list(s.scalars(select(MutationRecord).where(MutationRecord.client_id == cid)))
        assert [(r.mutation_id, r.status) for r in records] == [(1, "rejected")]


def test_a_push_of_another_users_client_id_changes_nothing(
    engine: Engine, busy_world: World
) -> None:
    state, cid = _state(engine), uuid.uuid4()
    agent, agent2 = _user(engine, busy_world, "agent"), _user(engine, busy_world, "agent2")
    tid = _ticket_id(engine, busy_world)
    note = {"ticket_id": str(tid), "body": "mine"}
    sync_service.push(
        state,
        agent,
        PushRequest(client_id=cid, mutations=[Mutation(id=1, name="add_note", args=note)]),
    )
    with Session(engine) as s:
        seen = s.get_one(SyncClient, cid).last_seen_at
    with pytest.raises(ApiError) as refused:
        sync_service.push(
            state,
            agent2,
            PushRequest(client_id=cid, mutations=[Mutation(id=2, name="add_note", args=note)]),
        )
    assert refused.value.status == 403
    with Session(engine) as s:
        client = s.get_one(SyncClient, cid)
        assert (client.last_mutation_id, client.last_seen_at) == (1, seen)


# --------------------------------------------------------------------------- versions


def test_a_counter_loaded_in_the_session_does_not_go_stale(
    engine: Engine, busy_world: World
) -> None:
    tid = _ticket_id(engine, busy_world)
    with session_scope(busy_world.sessions) as s:
        enable_stamping(s, busy_world.tenant)
        counter = s.get_one(TenantCounter, busy_world.tenant)  # loaded, and held
        before = counter.version
        s.get_one(Ticket, tid).subject = "Renamed"
        s.flush()
        assert counter.version == current_version(s, busy_world.tenant) == before + 1
        assert s.get_one(Ticket, tid).version == before + 1


def test_replica_connections_get_the_larger_page_cache(tmp_path: Path) -> None:
    with Replica(tmp_path / "replica.sqlite3") as replica, replica.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == (-REPLICA_CACHE_KIB)
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # the rest kept


def test_a_bulk_page_lets_the_log_grow_then_checkpoints_it(
    tmp_path: Path, engine: Engine, busy_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replica_module, "BULK_PAGE_ROWS", 5)
    with Session(engine) as s:
        wires = sorted(
            map(row_to_wire, _all_synced(s, busy_world.tenant)),
            key=lambda w: (w["version"], TABLE_ORDER[w["table"]], w["id"]),
        )
        agent = s.get_one(User, busy_world.users["agent"])
    at_commit: list[int] = []
    checkpoints: list[int] = []
    with Replica(tmp_path / "replica.sqlite3") as replica:
        replica.configure(
            server_url="http://127.0.0.1:1",
            tenant_id=busy_world.tenant,
            user_id=agent.id,
            username="agent",
            role=agent.role,
        )
        listen(
            replica.engine,
            "commit",
            lambda conn: at_commit.append(
                conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            ),
        )
        real_checkpoint = replica._checkpoint

        def counted() -> None:
            checkpoints.append(len(at_commit))
            real_checkpoint()

        monkeypatch.setattr(replica, "_checkpoint", counted)

        def page(changes: list[dict[str, Any]], cursor: int, more: bool) -> PullResponse:
            return PullResponse.model_validate(
                {
                    "cursor": cursor,
                    "has_more": more,
                    "changes": changes,
                    "last_mutation_id": 0,
                    "rejections": [],
                }
            )

        half, head = len(wires) // 2, wires[-1]["version"]
        replica.apply_pull(page(wires[:half], wires[half - 1]["version"], True), since=0)
        assert checkpoints == []  # mid-pull: the log is left to grow
        replica.apply_pull(page(wires[half:], head, False), since=wires[half - 1]["version"])
        assert checkpoints == [len(at_commit)]  # once, after the pull's last commit
        replica.apply_pull(page([], head, False), since=head)  # a small page: neither
        assert len(checkpoints) == 1
        with replica.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
            assert raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0] == 0
    assert at_commit[-3:] == [BULK_WAL_PAGES, BULK_WAL_PAGES, WAL_PAGES]
