"""Nobody reads or changes another tenant's data, and a 404 never tells whether an id exists."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from tests.server.helpers import NY_CALENDAR, Login, TestClient, World, db_snapshot

API = "/api/v1"


def test_other_tenants_rows_are_not_found(
    client: TestClient, world: World, other_world: World, login: Login, engine: Engine
) -> None:
    intruder = login("b-lead")
    admin = login("b-admin")
    before = db_snapshot(engine)
    a = world
    plan = {"key": "basic", "name": "Hijacked", "rank": 9}
    attempts = [
        ("GET", f"/plans/{a.basic}", None),
        ("PUT", f"/plans/{a.basic}", plan),
        ("DELETE", f"/plans/{a.unused_plan}", None),
        ("GET", f"/calendars/{a.calendar}", None),
        ("PUT", f"/calendars/{a.calendar}", {"name": "Hijacked", **NY_CALENDAR}),
        ("GET", f"/organisations/{a.org}", None),
        ("PATCH", f"/organisations/{a.org}", {"name": "Hijacked"}),
        ("POST", f"/organisations/{a.org}/contacts", {"name": "Mole", "email": "m@x.test"}),
        *[("PATCH", f"/users/{uid}", {"display_name": "Hijacked"}) for uid in a.users.values()],
    ]
    for headers in (intruder, admin):
        for method, path, body in attempts:
            response = client.request(method, API + path, json=body, headers=headers)
            assert response.status_code == 404, (method, path, response.text)
            # Exactly what an id that exists nowhere gets: nothing to learn from the answer.
            unknown_path = path.replace(path.split("/")[2], str(uuid.uuid4()))
            unknown = client.request(method, API + unknown_path, json=body, headers=headers)
            assert (unknown.status_code, unknown.json()) == (404, response.json())
    assert db_snapshot(engine) == before


def test_lists_hold_only_the_callers_tenant(
    client: TestClient, world: World, other_world: World, login: Login
) -> None:
    for username, mine, theirs in (("lead", world, other_world), ("b-agent", other_world, world)):
        headers = login(username)
        users = {u["id"] for u in client.get(f"{API}/users", headers=headers).json()}
        assert users == {str(u) for u in mine.users.values()}
        plans = {p["id"] for p in client.get(f"{API}/plans", headers=headers).json()}
        assert plans == {str(mine.basic), str(mine.premium), str(mine.unused_plan)}
        calendars = [c["id"] for c in client.get(f"{API}/calendars", headers=headers).json()]
        assert calendars == [str(mine.calendar)]
        # Both tenants have a "Globex Corporation"; each sees only its own.
        orgs = client.get(
            f"{API}/organisations", headers=headers, params={"query": "globex"}
        ).json()
        assert [o["id"] for o in orgs] == [str(mine.org)]
        assert str(theirs.org) not in client.get(f"{API}/organisations", headers=headers).text


def test_cannot_reference_another_tenants_rows(
    client: TestClient, world: World, other_world: World, login: Login, engine: Engine
) -> None:
    intruder = login("b-lead")
    before = db_snapshot(engine)
    org = client.post(
        f"{API}/organisations",
        headers=intruder,
        json={"name": "Sneaky", "plan_id": str(world.basic)},
    )
    assert org.status_code == 422
    assert org.json()["error"]["field"] == "plan_id"
    moved = client.patch(
        f"{API}/organisations/{other_world.org}",
        headers=intruder,
        json={"plan_id": str(world.premium)},
    )
    assert moved.status_code == 422
    assert moved.json()["error"]["field"] == "plan_id"
    plan = client.post(
        f"{API}/plans",
        headers=intruder,
        json={"key": "sneaky", "name": "Sneaky", "rank": 1, "calendar_id": str(world.calendar)},
    )
    assert plan.status_code == 422
    assert plan.json()["error"]["field"] == "calendar_id"
    assert db_snapshot(engine) == before


def test_same_names_in_two_tenants_do_not_clash(
    client: TestClient, world: World, other_world: World, login: Login
) -> None:
    """Plan keys and calendar names are unique per tenant, not per server."""
    intruder = login("b-lead")
    plan = client.post(
        f"{API}/plans", headers=intruder, json={"key": "gold", "name": "Gold", "rank": 4}
    )
    assert plan.status_code == 201
    mine = client.post(
        f"{API}/plans", headers=login("lead"), json={"key": "gold", "name": "Gold", "rank": 4}
    )
    assert mine.status_code == 201
    assert mine.json()["id"] != plan.json()["id"]
