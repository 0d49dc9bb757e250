"""Issue 9's findings, each reproduced against a real server over HTTP (SQLite and PostgreSQL):
unbounded time, voiding by the back door, cross-tenant references, the poisoned outbox and
unbounded protocol integers. Each test failed on the code before the fix."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from agentdesk.models import Appointment, AuthToken, TicketEvent, TimeEntry, utcnow
from agentdesk.models.db import make_session_factory
from agentdesk.server.security import token_hash
from agentdesk.sync import mutators
from agentdesk.sync.mutators import MUTATORS, MutationContext
from tests.plugins.live_team import Team, ticket_args
from tests.sync.world import World, build_world


class Http:
    """Raw pushes and pulls over HTTP with a token per user of either team."""

    def __init__(self, team: Team, rival: World) -> None:
        self.url = team.url
        self.http = requests.Session()
        self.tokens: dict[str, str] = {}
        self.clients: dict[str, uuid.UUID] = {}
        self.next_id: dict[str, int] = {}
        with team.db() as s:
            for prefix, world in (("", team.world), ("b-", rival)):
                for who, user_id in world.users.items():
                    token = f"tok-{prefix}{who}-{uuid.uuid4().hex}"
                    s.add(
                        AuthToken(
                            user_id=user_id,
                            token_hash=token_hash(token),
                            expires_at=utcnow() + timedelta(hours=1),
                        )
                    )
                    self.tokens[prefix + who] = token

    def post(self, who: str, path: str, body: dict[str, Any]) -> requests.Response:
        return self.http.post(
            f"{self.url}/api/v1/sync/{path}",
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
        )

    def push(self, who: str, name: str, **args: Any) -> dict[str, Any]:
        """One mutation from ``who``'s client; returns its result (the push must not fail)."""
        client = self.clients.setdefault(who, uuid.uuid4())
        mid = self.next_id.get(who, 1)
        r = self.post(
            who,
            "push",
            {"client_id": str(client), "mutations": [{"id": mid, "name": name, "args": args}]},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["expected_mutation_id"] is None, body
        assert body["last_mutation_id"] == mid, body
        self.next_id[who] = mid + 1
        return dict(body["results"][0])

    def applied(self, who: str, name: str, **args: Any) -> None:
        result = self.push(who, name, **args)
        assert result["status"] == "applied", result


@pytest.fixture
def rival(team: Team) -> World:
    """A second team on the same server."""
    return build_world(make_session_factory(team.engine), prefix="b-", name="Rival Support")


@pytest.fixture
def http(team: Team, rival: World) -> Iterator[Http]:
    h = Http(team, rival)
    yield h
    h.http.close()


def _entry(team: Team, **kw: Any) -> dict[str, Any]:
    now = utcnow()
    args: dict[str, Any] = dict(
        entry_id=str(uuid.uuid4()),
        organisation_id=str(team.world.orgs["globex"]),
        started_at=(now - timedelta(hours=2)).isoformat(),
        ended_at=(now - timedelta(hours=1)).isoformat(),
    )
    args.update(kw)
    return args


def _entries(team: Team) -> int:
    with team.db() as s:
        return int(s.scalar(select(func.count()).select_from(TimeEntry)) or 0)


# ------------------------------------------------------------------ 1. unbounded time


def test_time_outside_the_sane_range_or_longer_than_a_day_is_refused(
    team: Team, http: Http
) -> None:
    year_one = http.push(
        "consultant", "add_time_entry", **_entry(team, started_at="0001-01-01T00:00:00Z")
    )
    assert (year_one["status"], year_one["code"], year_one["field"]) == (
        "rejected",
        "invalid",
        "started_at",
    )
    assert "2000-01-01" in year_one["message"]
    too_long = http.push(
        "consultant",
        "add_time_entry",
        **_entry(team, started_at=(utcnow() - timedelta(hours=30)).isoformat()),
    )
    assert (too_long["status"], too_long["code"]) == ("rejected", "too_long")
    assert "split" in too_long["message"]
    appt = http.push(
        "consultant",
        "schedule_appointment",
        appointment_id=str(uuid.uuid4()),
        organisation_id=str(team.world.orgs["globex"]),
        starts_at="2030-01-01T09:00:00Z",
        ends_at="2030-01-03T09:00:00Z",
    )
    assert (appt["status"], appt["code"]) == ("rejected", "too_long")
    assert _entries(team) == 0
    http.applied("consultant", "add_time_entry", **_entry(team))  # a day's work still goes in


# ------------------------------------------------------------------ 2. void by the back door


def test_a_correction_needs_the_right_to_void_and_the_same_organisation(
    team: Team, http: Http
) -> None:
    theirs = _entry(team)
    http.applied("consultant", "add_time_entry", **theirs)
    sneaky = http.push("agent", "add_time_entry", **_entry(team, voids_id=theirs["entry_id"]))
    assert (sneaky["status"], sneaky["code"], sneaky["field"]) == (
        "rejected",
        "forbidden",
        "voids_id",
    )
    moved = http.push(
        "lead",
        "add_time_entry",
        **_entry(
            team, voids_id=theirs["entry_id"], organisation_id=str(team.world.orgs["initech"])
        ),
    )
    assert (moved["status"], moved["field"]) == ("rejected", "voids_id")
    # One rule for both ways of voiding: a second consultant may not void it either.
    other = http.push(
        "consultant2",
        "void_time_entry",
        entry_id=str(uuid.uuid4()),
        voids_id=theirs["entry_id"],
        note="not mine",
    )
    assert other["code"] == "forbidden"
    assert _entries(team) == 1
    http.applied("consultant", "add_time_entry", **_entry(team, voids_id=theirs["entry_id"]))
    http.applied(
        "lead",
        "void_time_entry",
        entry_id=str(uuid.uuid4()),
        voids_id=_only_live_entry(team),
        note="booked twice",
    )


def _only_live_entry(team: Team) -> str:
    with team.db() as s:
        entries = list(s.scalars(select(TimeEntry)))
    voided = {e.voids_id for e in entries}
    return str(next(e.id for e in entries if e.id not in voided))


# ------------------------------------------------------------------ 3. cross-tenant reference


def test_references_to_another_teams_rows_are_not_found(
    team: Team, http: Http, rival: World
) -> None:
    theirs = ticket_args(rival)
    http.applied("b-agent", "create_ticket", **theirs)
    appt = http.push(
        "consultant",
        "schedule_appointment",
        appointment_id=str(uuid.uuid4()),
        organisation_id=str(team.world.orgs["globex"]),
        ticket_id=theirs["ticket_id"],
        starts_at="2030-01-01T09:00:00Z",
        ends_at="2030-01-01T10:00:00Z",
    )
    assert (appt["status"], appt["code"], appt["field"]) == ("rejected", "not_found", "ticket_id")
    # The same answer for another team's contact and a made-up one.
    for requester in (rival.contacts["ann"], uuid.uuid4()):
        r = http.push(
            "agent", "create_ticket", **ticket_args(team.world, requester_id=str(requester))
        )
        assert (r["code"], r["message"], r["field"]) == (
            "not_found",
            "no such contact",
            "requester_id",
        )
    # An id taken in the other team is refused without saying whose it is.
    dup = http.push(
        "agent", "create_ticket", **ticket_args(team.world, ticket_id=theirs["ticket_id"])
    )
    own = ticket_args(team.world)
    http.applied("agent", "create_ticket", **own)
    dup_own = http.push(
        "agent", "create_ticket", **ticket_args(team.world, ticket_id=own["ticket_id"])
    )
    assert dup["code"] == dup_own["code"] == "duplicate"
    assert dup["message"] == dup_own["message"]
    with team.db() as s:
        assert s.scalar(select(func.count()).select_from(Appointment)) == 0


# ------------------------------------------------------------------ 4. poisoned outbox


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_instants_without_a_utc_equivalent_are_refusals_and_the_outbox_moves_on(
    team: Team, http: Http, instant: str
) -> None:
    org = str(team.world.orgs["globex"])
    refused = [
        http.push("lead", "add_time_entry", **_entry(team, started_at=instant)),
        http.push(
            "lead",
            "schedule_appointment",
            appointment_id=str(uuid.uuid4()),
            organisation_id=org,
            starts_at=instant,
            ends_at="2030-01-01T10:00:00Z",
        ),
        http.push(
            "lead",
            "record_hour_purchase",
            block_id=str(uuid.uuid4()),
            organisation_id=org,
            minutes=600,
            purchased_at=instant,
        ),
        http.push(
            "lead", "cancel_appointment", appointment_id=str(uuid.uuid4()), cancelled_at=instant
        ),
    ]
    assert [r["code"] for r in refused[:3]] == ["invalid"] * 3
    assert refused[3]["field"] in ("cancelled_at", "appointment_id")
    http.applied("lead", "add_time_entry", **_entry(team))  # the next mutation goes through


def test_an_unforeseen_failure_is_a_logged_refusal_and_the_desktop_drops_its_change(
    team: Team, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = MUTATORS["add_note"]

    def flaky(ctx: MutationContext, args: Any) -> None:
        original.apply(ctx, args)
        if ctx.authoritative:  # the desktop's optimistic run succeeds, the server's does not
            raise OverflowError("date value out of range")

    monkeypatch.setitem(MUTATORS, "add_note", dataclasses.replace(original, apply=flaky))
    desk = team.desk("agent")
    desk.sync()
    ticket = ticket_args(team.world)
    desk.replica.mutate("create_ticket", ticket)
    mid = desk.replica.mutate("add_note", {"ticket_id": ticket["ticket_id"], "body": "hello"})
    desk.replica.mutate("add_note", {"ticket_id": ticket["ticket_id"], "body": "again"})
    with caplog.at_level(logging.ERROR, logger=mutators.__name__):
        desk.sync()
        desk.sync()
    rejections = desk.replica.rejections()
    assert [(r.mutation_id, r.code) for r in rejections] == [
        (mid, "internal_error"),
        (mid + 1, "internal_error"),
    ]
    assert f"mutation {mid}" in rejections[0].message
    assert any(f"/{mid} (add_note)" in rec.getMessage() for rec in caplog.records)
    assert desk.replica.pending_count() == 0
    monkeypatch.setitem(MUTATORS, "add_note", original)
    later = desk.replica.mutate("add_note", {"ticket_id": ticket["ticket_id"], "body": "fine"})
    desk.sync()
    assert later == mid + 2
    with desk.replica.session() as s:
        bodies = [e.body for e in s.scalars(select(TicketEvent))]
    assert "fine" in bodies
    assert "hello" not in bodies
    assert "again" not in bodies


def test_protocol_integers_are_bounded(team: Team, http: Http) -> None:
    client = str(uuid.uuid4())
    for body in (
        {"cursor": 0, "rejections_after": 2**63},
        {"cursor": 2**63},
        {"cursor": 0, "rejections_after": -1},
    ):
        r = http.post("agent", "pull", {"client_id": client, **body})
        assert r.status_code == 422, r.text
    r = http.post(
        "agent",
        "push",
        {"client_id": client, "mutations": [{"id": 2**63, "name": "add_note", "args": {}}]},
    )
    assert r.status_code == 422, r.text
    r = http.http.get(
        f"{http.url}/api/v1/sync/poke",
        params={"cursor": 2**63, "wait": 0},
        headers={"Authorization": f"Bearer {http.tokens['agent']}"},
        timeout=30,
    )
    assert r.status_code == 422, r.text
    ok = http.post(
        "agent", "pull", {"client_id": client, "cursor": 0, "rejections_after": 2**53 - 1}
    )
    assert ok.status_code == 200, ok.text


def test_a_refusal_quoting_control_characters_is_stored_printably(team: Team, http: Http) -> None:
    """Found by the property test on PostgreSQL: pydantic's message quotes the NUL it refused,
    and PostgreSQL refuses NUL in text - the rejection record failed and the push answered 500."""
    bad_id = http.push("agent", "invalidate_contact", contact_id="\x00")
    assert (bad_id["code"], bad_id["field"]) == ("invalid", "contact_id")
    assert "\x00" not in bad_id["message"]
    odd_name = http.push(
        "agent", "add_note", ticket_id=str(uuid.uuid4()), body="x", **{"\x00" + "k" * 300: 1}
    )
    assert odd_name["code"] == "invalid"
    assert "\x00" not in odd_name["field"]
    assert len(odd_name["field"]) <= 200
