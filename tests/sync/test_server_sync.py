"""The server's push/pull/poke: exactly-once pushes, gap refusal, paging at version
boundaries, tombstones, rejections reaching the client, and pokes woken by commits."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentdesk.models import AuthToken, Ticket, utcnow
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.server.app import create_app
from agentdesk.server.security import token_hash
from agentdesk.server.settings import ServerSettings
from tests.sync.world import World, build_world


class Api:
    def __init__(self, client: TestClient, world: World) -> None:
        self.client = client
        self.world = world
        self.tokens: dict[str, str] = {}
        with session_scope(world.sessions) as s:
            for who, user_id in world.users.items():
                token = f"tok-{who}-{uuid.uuid4().hex}"
                s.add(
                    AuthToken(
                        user_id=user_id,
                        token_hash=token_hash(token),
                        expires_at=utcnow() + timedelta(hours=1),
                    )
                )
                self.tokens[who] = token

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(
            f"/api/v1/sync/{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
        )

    def push(
        self,
        who: str,
        client_id: uuid.UUID,
        *mutations: tuple[int, str, dict[str, Any]],
        status: int = 200,
    ) -> dict[str, Any]:
        r = self.post(
            who,
            "push",
            {
                "client_id": str(client_id),
                "mutations": [{"id": i, "name": n, "args": a} for i, n, a in mutations],
            },
        )
        assert r.status_code == status, r.text
        return dict(r.json())

    def pull(self, who: str, client_id: uuid.UUID, cursor: int = 0, **kw: Any) -> dict[str, Any]:
        r = self.post(who, "pull", {"client_id": str(client_id), "cursor": cursor, **kw})
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    app = create_app(ServerSettings(database_url=database_url))
    engine = make_engine(database_url)
    world = build_world(make_session_factory(engine))
    with TestClient(app) as client:
        yield Api(client, world)
    engine.dispose()


def _ticket_args(w: World, **kw: Any) -> dict[str, Any]:
    args = dict(
        ticket_id=str(uuid.uuid4()),
        subject="Login broken",
        channel="portal",
        organisation_id=str(w.orgs["globex"]),
        requester_id=str(w.contacts["ann"]),
        stated_urgency=2,
    )
    args.update(kw)
    return args


def test_push_applies_once_and_acknowledges_duplicates(api: Api) -> None:
    cid = uuid.uuid4()
    m1 = (1, "create_ticket", _ticket_args(api.world))
    first = api.push("agent", cid, m1)
    assert first["last_mutation_id"] == 1
    assert first["results"] == [
        {"id": 1, "status": "applied", "code": None, "message": None, "field": None}
    ]
    again = api.push("agent", cid, m1)  # the response was lost; the desktop resends
    assert again["results"][0]["status"] == "duplicate"
    assert again["last_mutation_id"] == 1
    with session_scope(api.world.sessions) as s:
        assert s.query(Ticket).count() == 1


def test_rejections_are_acknowledged_and_reported_in_pull(api: Api) -> None:
    cid = uuid.uuid4()
    resp = api.push(
        "agent",
        cid,
        (1, "triage_ticket", {"ticket_id": str(uuid.uuid4()), "tier": 1}),
        (2, "create_ticket", _ticket_args(api.world)),
    )
    assert [r["status"] for r in resp["results"]] == ["rejected", "applied"]
    assert resp["results"][0]["code"] == "forbidden"
    assert resp["last_mutation_id"] == 2  # the outbox never jams
    pulled = api.pull("agent", cid)
    assert pulled["last_mutation_id"] == 2
    assert [(r["mutation_id"], r["code"]) for r in pulled["rejections"]] == [(1, "forbidden")]
    assert api.pull("agent", cid, rejections_after=1)["rejections"] == []
    # A duplicate of a rejected mutation repeats the reason.
    dup = api.push("agent", cid, (1, "triage_ticket", {"ticket_id": str(uuid.uuid4()), "tier": 1}))
    assert dup["results"][0]["status"] == "duplicate"
    assert dup["results"][0]["code"] == "forbidden"


def test_a_gap_is_refused_so_the_client_resends_from_it(api: Api) -> None:
    cid = uuid.uuid4()
    resp = api.push(
        "agent",
        cid,
        (1, "create_ticket", _ticket_args(api.world)),
        (3, "create_ticket", _ticket_args(api.world)),
    )
    assert resp["last_mutation_id"] == 1
    assert resp["expected_mutation_id"] == 2
    assert [r["id"] for r in resp["results"]] == [1]
    with session_scope(api.world.sessions) as s:
        assert s.query(Ticket).count() == 1


def test_client_ids_belong_to_one_user(api: Api) -> None:
    cid = uuid.uuid4()
    api.push("agent", cid, (1, "create_ticket", _ticket_args(api.world)))
    r = api.post(
        "agent2",
        "push",
        {
            "client_id": str(cid),
            "mutations": [{"id": 2, "name": "create_ticket", "args": _ticket_args(api.world)}],
        },
    )
    assert r.status_code == 403
    assert r.json()["error"]["field"] == "client_id"
    assert api.post("agent2", "pull", {"client_id": str(cid), "cursor": 0}).status_code == 403


def test_pull_returns_everything_in_version_order_then_nothing(api: Api) -> None:
    cid = uuid.uuid4()
    full = api.pull("agent", cid)
    assert full["has_more"] is False
    assert full["cursor"] > 0
    versions = [c["version"] for c in full["changes"]]
    assert versions == sorted(versions)
    tables = {c["table"] for c in full["changes"]}
    assert {"users", "plans", "organisations", "contacts", "calendars"} <= tables
    user_rows = [c for c in full["changes"] if c["table"] == "users"]
    assert all("password_hash" not in c["values"] for c in user_rows)
    assert api.pull("agent", cid, cursor=full["cursor"])["changes"] == []


def test_pull_pages_end_at_version_boundaries(api: Api) -> None:
    cid = uuid.uuid4()
    for i in range(1, 6):
        api.push("agent", cid, (i, "create_ticket", _ticket_args(api.world)))
    baseline = api.pull("agent", cid)
    by_version: dict[int, int] = {}
    for c in baseline["changes"]:
        by_version[c["version"]] = by_version.get(c["version"], 0) + 1
    seen: list[dict[str, Any]] = []
    cursor, pages = 0, 0
    while True:
        page = api.pull("agent", cid, cursor=cursor, limit=3)
        pages += 1
        seen.extend(page["changes"])
        page_versions = {c["version"] for c in page["changes"]}
        for v in page_versions:  # never half a transaction
            assert sum(1 for c in page["changes"] if c["version"] == v) == by_version[v]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
        assert pages < 100
    assert pages > 2
    assert sorted((c["table"], c["id"]) for c in seen) == sorted(
        (c["table"], c["id"]) for c in baseline["changes"]
    )


def test_tombstones_travel(api: Api) -> None:
    cid = uuid.uuid4()
    timer = uuid.uuid4()
    w = api.world
    api.push(
        "consultant",
        cid,
        (
            1,
            "start_timer",
            {
                "timer_id": str(timer),
                "organisation_id": str(w.orgs["globex"]),
                "started_at": (utcnow() - timedelta(minutes=5)).isoformat(),
            },
        ),
    )
    cursor = api.pull("consultant", cid)["cursor"]
    api.push(
        "consultant",
        cid,
        (
            2,
            "stop_timer",
            {
                "timer_id": str(timer),
                "entry_id": str(uuid.uuid4()),
                "ended_at": utcnow().isoformat(),
            },
        ),
    )
    changes = api.pull("consultant", cid, cursor=cursor)["changes"]
    timer_rows = [c for c in changes if c["table"] == "running_timers"]
    assert [(c["id"], c["deleted"]) for c in timer_rows] == [(str(timer), True)]
    assert any(c["table"] == "time_entries" for c in changes)


def test_a_cursor_from_the_future_asks_for_reset(api: Api) -> None:
    resp = api.pull("agent", uuid.uuid4(), cursor=10_000_000)
    assert resp["reset"] is True
    assert resp["cursor"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"client_id": "nope", "mutations": [{"id": 1, "name": "x", "args": {}}]}, "client_id"),
        ({"client_id": str(uuid.uuid4()), "mutations": []}, "mutations"),
        (
            {"client_id": str(uuid.uuid4()), "mutations": [{"id": 0, "name": "x", "args": {}}]},
            "mutations.0.id",
        ),
        (
            {
                "client_id": str(uuid.uuid4()),
                "mutations": [{"id": 1, "name": "x", "args": {}}],
                "extra": 1,
            },
            "extra",
        ),
    ],
)
def test_malformed_pushes_name_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    r = api.post("agent", "push", body)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field


def test_sync_needs_a_token(api: Api) -> None:
    r = api.client.post("/api/v1/sync/pull", json={"client_id": str(uuid.uuid4()), "cursor": 0})
    assert r.status_code == 401
    assert api.client.get("/api/v1/sync/poke?cursor=0&wait=0").status_code == 401


def test_poke_answers_at_once_when_behind_and_waits_otherwise(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.tokens['agent']}"}
    head = api.pull("agent", uuid.uuid4())["cursor"]
    r = api.client.get("/api/v1/sync/poke", params={"cursor": 0, "wait": 5}, headers=headers)
    assert r.json() == {"version": head, "changed": True}
    started = time.monotonic()
    r = api.client.get("/api/v1/sync/poke", params={"cursor": head, "wait": 0.3}, headers=headers)
    assert r.json() == {"version": head, "changed": False}
    assert time.monotonic() - started >= 0.25


def test_poke_is_woken_by_a_push(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.tokens['agent']}"}
    head = api.pull("agent", uuid.uuid4())["cursor"]
    result: dict[str, Any] = {}

    def wait() -> None:
        started = time.monotonic()
        r = api.client.get(
            "/api/v1/sync/poke", params={"cursor": head, "wait": 20}, headers=headers
        )
        result.update(r.json(), elapsed=time.monotonic() - started)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    api.push("agent2", uuid.uuid4(), (1, "create_ticket", _ticket_args(api.world)))
    waiter.join(timeout=10)
    assert result["changed"] is True
    assert result["version"] > head
    assert result["elapsed"] < 5  # woken by the commit, not by the 20 s timeout
