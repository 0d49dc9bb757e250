"""Intake's batcher: requests go out as one push, and a push's groups follow intake's own
bounds (``service.INTAKE_GROUPS``).

* A batch is one transaction whose round trips do not grow with its size: the counter is
  locked first and every organisation, contact and contact list is read in one query each; a
  request reads nothing back after its group (the answer comes from the group's rows, and says
  what reading the database would).
* The group bound is honoured; a refusal affects only its own request.
* An answer that could not be kept from the group is read back instead.
* A push that fails after a group committed answers that group's requests as recorded (never
  as a failure that a retry would file again), tells the others to try again, and the batcher
  goes on with the next batch; nothing is lost or recorded twice.
* A group whose requests are all refused leaves the team's version as it was and announces
  nothing.
* The contact lists read with the group follow the group's own changes to contacts.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from agentdesk.models import MutationRecord, Ticket, TicketStatus, User
from agentdesk.models.db import make_engine, make_session_factory
from agentdesk.models.versioning import LISTENER_KEY, current_version
from agentdesk.server import sync_service
from agentdesk.server.app import create_app
from agentdesk.server.deps import ServerState
from agentdesk.server.errors import ApiError
from agentdesk.server.intake import service
from agentdesk.server.settings import ServerSettings
from agentdesk.sync.mutators import MUTATORS, MutationContext, Mutator
from agentdesk.sync.protocol import Mutation, PushRequest
from tests.sync.world import World, build_world

#: When the requests "arrived": a Tuesday afternoon in New York, inside the plans' hours.
AT = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(make_session_factory(engine))


@pytest.fixture
def state(engine: Engine) -> Iterator[ServerState]:
    app = create_app(
        ServerSettings(
            database_url=engine.url.render_as_string(hide_password=False), migrate_on_start=False
        )
    )
    yield app.state.agentdesk
    app.state.engine.dispose()


@pytest.fixture
def batcher(state: ServerState, world: World) -> service._Batcher:
    """A batcher whose batches the test hands over itself (``_push``): its own thread only
    waits on an empty queue."""
    return service._Batcher(state, service.intake_user(state, world.tenant))


class _Statements:
    """The SQL sent on the server's engine from the test's thread (the batcher's work when the
    test calls ``_push``)."""

    def __init__(self, state: ServerState) -> None:
        self.sent: list[str] = []
        self.engine = state.read_sessions.kw["bind"]  # write sessions share its events
        self.thread = threading.get_ident()
        event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, _c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if threading.get_ident() == self.thread:
            self.sent.append(" ".join(statement.split()).upper())

    def count(self, prefix: str) -> int:
        return sum(1 for s in self.sent if s.startswith(prefix.upper()))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


@pytest.fixture
def statements(state: ServerState) -> Iterator[_Statements]:
    recorder = _Statements(state)
    yield recorder
    recorder.close()


def _request(
    world: World, who: str, org: str = "globex", channel: str = "portal"
) -> dict[str, Any]:
    return {
        "ticket_id": str(uuid.uuid4()),
        "subject": f"Request from {who}",
        "description": "It broke.",
        "channel": channel,
        "organisation_id": str(world.orgs[org]),
        "requester_id": str(world.contacts[who]),
        "stated_urgency": 2,
    }


def _items(requests: list[dict[str, Any]]) -> list[service._Item]:
    return [(args, AT, Future()) for args in requests]


def _mixed(world: World, count: int) -> list[dict[str, Any]]:
    """Validated and non-validated contacts of two organisations on two plans (plans with no
    yearly allowance: counting one is a query per request, by design)."""
    who = [("ann", "globex"), ("cy", "globex"), ("fay", "umbrella"), ("bo", "globex")]
    return [_request(world, *who[i % len(who)]) for i in range(count)]


def _tickets(engine: Engine, world: World) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).where(Ticket.tenant_id == world.tenant)) or 0


def test_a_batch_is_one_transaction_whose_round_trips_do_not_grow_with_it(
    engine: Engine,
    world: World,
    state: ServerState,
    batcher: service._Batcher,
    statements: _Statements,
) -> None:
    batcher._push(_items(_mixed(world, 4)))  # the first batch also records the batcher's client
    sent: list[int] = []
    for size in (4, 16):
        statements.sent.clear()
        items = _items(_mixed(world, size))
        batcher._push(items)
        sent.append(len(statements.sent))
        for _args, _at, future in items:
            result, recorded = future.result(timeout=0)
            assert result.status == "applied"
            assert recorded is not None  # the answer needs no reading back
        assert statements.count("INSERT INTO MUTATION_RECORDS") == 1  # one group
        assert statements.count("INSERT INTO TICKETS") == 1, "\n".join(
            x[:100] for x in statements.sent
        )
        assert statements.count("INSERT INTO SYNC_CLIENTS") == 0  # one client, not one a push
        # Contacts: every requester and each organisation's list in one query.
        assert statements.count("SELECT CONTACTS") == 1, statements.sent
        assert statements.count("UPDATE TENANT_COUNTERS") == 1  # the last version, once
        if engine.dialect.name == "postgresql":
            assert statements.count("SELECT PG_NOTIFY") == 1
    assert sent[0] == sent[1], "a larger batch costs more round trips"
    assert _tickets(engine, world) == 24


def test_the_answer_from_the_groups_rows_is_what_the_database_recorded(
    world: World, state: ServerState
) -> None:
    cases = {
        "accepted": service.IntakeRequest("ann@globex.test", "", "Globex", "Down", "", 1),
        "redirected": service.IntakeRequest("cy@globex.test", "", "Globex", "Down", "", 2),
        "flagged": service.IntakeRequest("ann@globex.test", "", "Globex", "Down", "", 3, "chat"),
        "unknown org": service.IntakeRequest("zed@nowhere.test", "Zed", "Nowhere", "Hi", "", 4),
    }
    statuses = []
    for name, req in cases.items():
        outcome = service.submit(state, world.tenant, req, client_time=AT)
        known = name != "unknown org"
        read = service._answer(
            service._read_recorded(state, outcome.ticket_id), outcome.ticket_id, known, known, req
        )
        assert outcome == read, name
        statuses.append(outcome.status)
    assert statuses == ["accepted", "redirected", "flagged", "redirected"]


def test_a_group_whose_answers_cannot_be_kept_answers_from_the_database(
    engine: Engine,
    world: World,
    state: ServerState,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keeping the answers is an optimisation: if it fails, the group still commits and the
    request reads its answer back."""

    def broken(*_args: Any) -> dict[int, service._Recorded]:
        raise RuntimeError("cannot keep the answers")

    monkeypatch.setattr(service, "_recorded", broken)
    req = service.IntakeRequest("cy@globex.test", "", "Globex", "Down", "", 2)
    with caplog.at_level("ERROR", logger="agentdesk.server.intake.service"):
        outcome = service.submit(state, world.tenant, req, client_time=AT)
    assert outcome.status == "redirected"
    assert "could not keep what a group recorded" in caplog.text
    with Session(engine) as s:
        assert s.get_one(Ticket, outcome.ticket_id).status is TicketStatus.REDIRECTED


def test_the_intake_bound_ends_a_group_and_a_refusal_affects_only_its_request(
    engine: Engine,
    world: World,
    batcher: service._Batcher,
    statements: _Statements,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "INTAKE_GROUPS", replace(service.INTAKE_GROUPS, mutations=3))
    requests = _mixed(world, 7)
    requests[4]["requester_id"] = str(uuid.uuid4())  # nobody we know: refused
    items = _items(requests)
    batcher._push(items)
    assert statements.count("INSERT INTO MUTATION_RECORDS") == 3  # groups of 3, 3 and 1
    results = [f.result(timeout=0)[0] for _a, _t, f in items]
    assert [(r.status, r.code) for r in results] == [
        *[("applied", None)] * 4,
        ("rejected", "not_found"),
        *[("applied", None)] * 2,
    ]
    assert _tickets(engine, world) == 6


class _Boom(SQLAlchemyError):
    """The database connection lost in the middle of a push."""


def test_a_push_failing_after_a_committed_group_loses_and_repeats_nothing(
    engine: Engine,
    world: World,
    batcher: service._Batcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "INTAKE_GROUPS", replace(service.INTAKE_GROUPS, mutations=3))
    real = MUTATORS["create_ticket"]
    fail = {"Request 5"}

    def create_or_crash(ctx: MutationContext, a: Any) -> None:
        if a.subject in fail:
            fail.clear()
            raise _Boom("the connection went away in the second group")
        real.apply(ctx, a)

    monkeypatch.setitem(
        MUTATORS,
        "create_ticket",
        replace(real, apply=create_or_crash),
    )
    requests = _mixed(world, 6)
    for i, r in enumerate(requests, 1):
        r["subject"] = f"Request {i}"
    first_client = batcher.client_id
    items = _items(requests)
    batcher._push(items)
    answered: list[str] = []
    for _args, _at, future in items:
        failed = future.exception(timeout=0)
        if failed is None:
            result, recorded = future.result(timeout=0)
            assert recorded is not None
            answered.append(result.status)
        else:
            assert isinstance(failed, ApiError)
            answered.append(f"{failed.status} {failed.headers}")
    # The first group (1-3) committed and is answered as recorded; the second rolled back.
    assert answered == ["applied"] * 3 + ["503 {'Retry-After': '60'}"] * 3
    assert _tickets(engine, world) == 3
    assert batcher.client_id != first_client

    # The three told to try again do; the batcher goes on, and nothing is filed twice.
    again = _items([{**r, "ticket_id": str(uuid.uuid4())} for r in requests[3:]])
    batcher._push(again)
    assert [f.result(timeout=0)[0].status for _a, _t, f in again] == ["applied"] * 3
    with Session(engine) as s:
        subjects = sorted(s.scalars(select(Ticket.subject).where(Ticket.tenant_id == world.tenant)))
        assert subjects == [f"Request {i}" for i in range(1, 7)]
        records = s.scalars(select(MutationRecord.client_id)).all()
        assert set(records) == {first_client, batcher.client_id}


def test_a_group_that_records_no_request_announces_nothing(
    engine: Engine, world: World, state: ServerState, batcher: service._Batcher
) -> None:
    announced: list[tuple[uuid.UUID, int]] = []
    state.write_sessions.kw["info"] = {
        LISTENER_KEY: lambda tenant, version: announced.append((tenant, version))
    }
    with Session(engine) as s:
        before = current_version(s, world.tenant)
    requests = _mixed(world, 3)
    for r in requests:
        r["organisation_id"] = str(uuid.uuid4())
    items = _items(requests)
    batcher._push(items)
    assert [f.result(timeout=0)[0].code for _a, _t, f in items] == ["not_found"] * 3
    with Session(engine) as s:
        assert current_version(s, world.tenant) == before
    assert announced == []


def test_contact_lists_read_with_the_group_follow_its_own_changes(
    engine: Engine, world: World, state: ServerState
) -> None:
    """A contact invalidated earlier in a group that read its organisation's contacts up
    front: the later request from that contact is redirected."""
    with Session(engine) as s:
        coordinator = s.get_one(User, world.users["coordinator"])
        s.expunge(coordinator)
    later = _request(world, "bo")
    results = sync_service.push_results(
        state,
        coordinator,
        PushRequest(
            client_id=uuid.uuid4(),
            mutations=[
                Mutation(id=1, name="create_ticket", args=_request(world, "bo")),
                Mutation(
                    id=2, name="invalidate_contact", args={"contact_id": str(world.contacts["bo"])}
                ),
                Mutation(id=3, name="create_ticket", args=later),
            ],
        ),
        service.INTAKE_GROUPS,
    )
    assert [r.status for r in results] == ["applied"] * 3
    with Session(engine) as s:
        assert s.get_one(Ticket, uuid.UUID(later["ticket_id"])).status is TicketStatus.REDIRECTED
        assert s.scalar(select(func.count(MutationRecord.mutation_id))) == 3


def test_the_mutator_registry_refuses_a_contacts_argument_it_does_not_have() -> None:
    real = MUTATORS["create_ticket"]
    assert real.contacts_of == "organisation_id"
    with pytest.raises(TypeError, match="contacts_of"):
        from agentdesk.sync.mutators import mutator

        mutator("not_registered", real.args, contacts_of="org")(lambda _c, _a: None)
    assert isinstance(real, Mutator)
