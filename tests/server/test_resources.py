"""What the REST endpoints read and write: contents, rules, tombstones, version stamps."""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import (
    Calendar,
    Contact,
    Plan,
    Role,
    Ticket,
    TicketStatus,
    User,
    utcnow,
)
from agentdesk.models.db import session_scope
from agentdesk.models.versioning import current_version
from agentdesk.server.security import verify_password
from tests.server.helpers import NY_CALENDAR, Login, TestClient, World

API = "/api/v1"


def _version(sessions: sessionmaker[Session], world: World) -> int:
    with session_scope(sessions) as s:
        return current_version(s, world.tenant)


# ------------------------------------------------------------------------------------- users


def test_users_lists_team_members_without_secrets(
    client: TestClient, world: World, login: Login
) -> None:
    response = client.get(f"{API}/users", headers=login("agent"))
    assert response.status_code == 200
    members = response.json()
    assert {m["id"] for m in members} == {str(u) for u in world.users.values()}
    for member in members:
        assert set(member) == {"id", "username", "display_name", "role", "active"}
    assert "argon2" not in response.text
    assert "@support.test" not in response.text  # emails stay with the leads


def test_create_user_hashes_password_and_can_sign_in(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    before = _version(sessions, world)
    response = client.post(
        f"{API}/users",
        headers=login("lead"),
        json={
            "username": "new.agent",
            "display_name": "New Agent",
            "email": "new@support.test",
            "role": "agent",
            "password": "a long enough secret",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["username"] == "new.agent"
    assert created["role"] == "agent"
    assert created["tenant_id"] == str(world.tenant)
    assert "password" not in response.text
    with session_scope(sessions) as s:
        user = s.get_one(User, uuid.UUID(created["id"]))
        assert user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, "a long enough secret")
        assert user.version == before + 1
    assert (
        client.get(f"{API}/me", headers=login("new.agent", "a long enough secret")).json()["id"]
        == created["id"]
    )


def test_patch_user_changes_only_what_is_sent(
    client: TestClient, world: World, login: Login
) -> None:
    lead = login("lead")
    target = world.users[Role.AGENT]
    response = client.patch(f"{API}/users/{target}", headers=lead, json={"role": "coordinator"})
    assert response.status_code == 200
    assert response.json()["role"] == "coordinator"
    assert response.json()["display_name"] == "Agent User"
    # A lead may rename themself; only role and active are protected against self-service.
    own = client.patch(
        f"{API}/users/{world.users[Role.LEAD]}",
        headers=lead,
        json={"display_name": "Lea D.", "role": "lead", "active": True},
    )
    assert own.status_code == 200
    assert own.json()["display_name"] == "Lea D."


def test_deactivated_user_is_locked_out(client: TestClient, world: World, login: Login) -> None:
    agent = login("agent")
    response = client.patch(
        f"{API}/users/{world.users[Role.AGENT]}", headers=login("admin"), json={"active": False}
    )
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert client.get(f"{API}/me", headers=agent).status_code == 401
    assert (
        client.post(f"{API}/login", json={"username": "agent", "password": "x" * 8}).status_code
        == 401
    )


def test_reactivation_does_not_revive_old_tokens(
    client: TestClient, world: World, login: Login
) -> None:
    agent, admin = login("agent"), login("admin")
    url = f"{API}/users/{world.users[Role.AGENT]}"
    assert client.patch(url, headers=admin, json={"active": False}).status_code == 200
    assert client.patch(url, headers=admin, json={"active": True}).status_code == 200
    response = client.get(f"{API}/me", headers=agent)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert client.get(f"{API}/me", headers=login("agent")).status_code == 200


def test_self_demotion_is_refused_with_a_clear_message(
    client: TestClient, world: World, login: Login
) -> None:
    response = client.patch(
        f"{API}/users/{world.users[Role.LEAD]}", headers=login("lead"), json={"role": "agent"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "you cannot change your own role; ask another lead or admin"
    )


# --------------------------------------------------------------------------------- calendars


def test_calendar_round_trip(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    lead = login("lead")
    body = {
        "name": "Pacific",
        "tz": "America/Los_Angeles",
        "hours": {"fri": [["06:00", "17:00"]], "mon": [["13:00", "17:00"], ["06:00", "12:00"]]},
        "holidays": ["2026-12-25", "2026-01-01"],
    }
    created = client.post(f"{API}/calendars", headers=lead, json=body)
    assert created.status_code == 201, created.text
    cal = created.json()
    # Stored in the rules engine's canonical form: every weekday, sorted windows and dates.
    assert cal["hours"]["mon"] == [["06:00", "12:00"], ["13:00", "17:00"]]
    assert cal["hours"]["sun"] == []
    assert cal["holidays"] == ["2026-01-01", "2026-12-25"]
    assert cal["version"] > 0
    assert client.get(f"{API}/calendars/{cal['id']}", headers=login("agent")).json() == cal

    replaced = client.put(
        f"{API}/calendars/{cal['id']}",
        headers=lead,
        json={**body, "name": "Pacific (US)", "holiday_country": "US"},
    )
    assert replaced.status_code == 200
    assert replaced.json()["holiday_country"] == "US"
    assert replaced.json()["version"] > cal["version"]
    with session_scope(sessions) as s:
        row = s.get_one(Calendar, uuid.UUID(cal["id"]))
        assert row.name == "Pacific (US)"
        assert row.to_policy().holiday_country == "US"
    names = [c["name"] for c in client.get(f"{API}/calendars", headers=lead).json()]
    assert names == ["New York", "Pacific (US)"]


# ------------------------------------------------------------------------------------- plans


def test_plans_list_and_get(client: TestClient, world: World, login: Login) -> None:
    agent = login("agent")
    plans = client.get(f"{API}/plans", headers=agent).json()
    assert [p["key"] for p in plans] == ["premium", "legacy", "basic"]  # highest rank first
    basic = client.get(f"{API}/plans/{world.basic}", headers=agent).json()
    assert basic["conversations_per_year"] == 5
    assert basic["calendar_id"] == str(world.calendar)
    assert basic["channels"] == ["portal"]


def test_create_and_replace_plan(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    lead = login("lead")
    created = client.post(
        f"{API}/plans",
        headers=lead,
        json={
            "key": "enterprise",
            "name": "Enterprise",
            "rank": 3,
            "channels": ["phone", "portal", "chat", "chat"],
            "contact_allotment": 8,
            "calendar_id": str(world.calendar),
            "response_targets": {"1": {"minutes": 15}, "3": {"business_days": 1}},
        },
    )
    assert created.status_code == 201, created.text
    plan = created.json()
    assert plan["channels"] == ["chat", "phone", "portal"]
    assert plan["conversations_per_year"] is None
    assert plan["response_targets"] == {"1": {"minutes": 15}, "3": {"business_days": 1}}
    with session_scope(sessions) as s:
        policy = s.get_one(Plan, uuid.UUID(plan["id"])).to_policy()
        assert policy.target_for(1).business_time == timedelta(minutes=15)
        assert policy.allows_channel("phone")

    replaced = client.put(
        f"{API}/plans/{plan['id']}",
        headers=lead,
        json={"key": "enterprise", "name": "Enterprise+", "rank": 4, "calendar_id": None},
    )
    assert replaced.status_code == 200
    body = replaced.json()
    # PUT replaces: what is left out takes its default again.
    assert (
        body["name"],
        body["rank"],
        body["channels"],
        body["calendar_id"],
        body["response_targets"],
    ) == ("Enterprise+", 4, ["portal"], None, {})


def test_delete_plan_is_a_tombstone(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    lead = login("lead")
    before = _version(sessions, world)
    response = client.delete(f"{API}/plans/{world.unused_plan}", headers=lead)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"{API}/plans/{world.unused_plan}", headers=lead).status_code == 404
    assert str(world.unused_plan) not in client.get(f"{API}/plans", headers=lead).text
    assert client.delete(f"{API}/plans/{world.unused_plan}", headers=lead).status_code == 404
    with session_scope(sessions) as s:
        row = s.get_one(Plan, world.unused_plan)
        assert row.deleted is True
        assert row.version == before + 1  # desktops learn of the delete through sync
    # A tombstoned plan can no longer be given to an organisation.
    refused = client.post(
        f"{API}/organisations",
        headers=lead,
        json={"name": "Late Co", "plan_id": str(world.unused_plan)},
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "plan_id"


def test_plan_in_use_is_kept(client: TestClient, world: World, login: Login) -> None:
    lead = login("lead")
    response = client.delete(f"{API}/plans/{world.basic}", headers=lead)
    assert response.status_code == 409
    assert response.json()["error"]["message"].startswith("1 organisation uses this plan")
    # Once the organisation moves, the plan can go.
    assert (
        client.patch(
            f"{API}/organisations/{world.org}", headers=lead, json={"plan_id": str(world.premium)}
        ).status_code
        == 200
    )
    assert client.delete(f"{API}/plans/{world.basic}", headers=lead).status_code == 204


# ----------------------------------------------------------------------------- organisations


def test_search_organisations(client: TestClient, world: World, login: Login) -> None:
    coordinator = login("coordinator")
    for name in ("Initech", "Initrode", "100% Pure", "Under_score Ltd", "Ünïcode GmbH"):
        response = client.post(
            f"{API}/organisations",
            headers=coordinator,
            json={"name": name, "plan_id": str(world.basic)},
        )
        assert response.status_code == 201, response.text
    agent = login("agent")

    def names(query: str | None = None, limit: int | None = None) -> list[str]:
        params: dict[str, str | int] = {}
        if query is not None:
            params["query"] = query
        if limit is not None:
            params["limit"] = limit
        response = client.get(f"{API}/organisations", headers=agent, params=params)
        assert response.status_code == 200, response.text
        return [o["name"] for o in response.json()]

    assert names("GLOBEX") == ["Globex Corporation"]
    assert names("init") == ["Initech", "Initrode"]
    assert names("%") == ["100% Pure"]  # LIKE wildcards match themselves
    assert names("_") == ["Under_score Ltd"]
    assert names("' OR '1'='1") == []
    # Case folding beyond ASCII, on both engines (SQLite's own lower() folds ASCII only).
    assert names("Ünï") == ["Ünïcode GmbH"]
    assert names("ünïCODE") == ["Ünïcode GmbH"]
    assert len(names()) == 6
    assert names(limit=2) == ["100% Pure", "Globex Corporation"]


def test_organisation_detail(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    now = utcnow()
    with session_scope(sessions) as s:
        s.add(
            Contact(
                tenant_id=world.tenant,
                organisation_id=world.org,
                name="Bo Ng",
                email="bo@globex.test",
            )
        )
        for arrived, status in (
            (now, TicketStatus.NEW),
            (now, TicketStatus.REDIRECTED),
            (now - timedelta(days=400), TicketStatus.CLOSED),
        ):
            s.add(
                Ticket(
                    tenant_id=world.tenant,
                    subject="Help",
                    channel="portal",
                    organisation_id=world.org,
                    requester_id=world.contact,
                    stated_urgency=3,
                    urgency=3,
                    arrived_at=arrived,
                    status=status,
                )
            )
    response = client.get(f"{API}/organisations/{world.org}", headers=login("agent"))
    assert response.status_code == 200
    detail = response.json()
    assert detail["name"] == "Globex Corporation"
    assert detail["plan"]["key"] == "basic"
    assert [c["name"] for c in detail["contacts"]] == ["Ann Lee", "Bo Ng"]
    assert detail["allotment"] == {
        "used": 1,
        "total": 1,
        "free": 0,
        "over_by": 0,
        "holders": [str(world.contact)],
    }
    # Basic: 5 a year, plus 5 for 30 verified / 12 recent reviews (seed 000). The redirected
    # request and last year's do not count.
    assert detail["conversations"] == {
        "year": now.astimezone(ZoneInfo("America/New_York")).year,  # the team's calendar year
        "allowance": 10,
        "used": 1,
        "remaining": 9,
        "bonus_applies": True,
    }


def test_organisation_detail_unlimited_plan(client: TestClient, world: World, login: Login) -> None:
    lead = login("lead")
    patched = client.patch(
        f"{API}/organisations/{world.org}",
        headers=lead,
        json={"plan_id": str(world.premium), "verified_reviews": 0},
    )
    assert patched.status_code == 200
    detail = client.get(f"{API}/organisations/{world.org}", headers=lead).json()
    assert detail["conversations"]["allowance"] is None
    assert detail["conversations"]["remaining"] is None
    assert detail["allotment"]["total"] == 4


def test_create_and_patch_organisation(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    coordinator = login("coordinator")
    created = client.post(
        f"{API}/organisations",
        headers=coordinator,
        json={
            "name": "Hooli",
            "plan_id": str(world.basic),
            "membership": "trial",
            "member_since": "2026-01-05T09:00:00-05:00",
            "verified_reviews": 3,
        },
    )
    assert created.status_code == 201, created.text
    org = created.json()
    assert org["member_since"] == "2026-01-05T14:00:00Z"  # stored and answered in UTC
    assert org["version"] > 0
    patched = client.patch(
        f"{API}/organisations/{org['id']}",
        headers=coordinator,
        json={"member_since": None, "recent_reviews": 11},
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (
        body["member_since"],
        body["recent_reviews"],
        body["verified_reviews"],
        body["membership"],
    ) == (None, 11, 3, "trial")
    assert (
        client.patch(f"{API}/organisations/{org['id']}", headers=coordinator, json={}).status_code
        == 200
    )


def test_sql_looking_strings_are_stored_verbatim(
    client: TestClient, world: World, login: Login, engine: Engine
) -> None:
    name = "Robert'); DROP TABLE organisations;--"
    lead = login("lead")
    created = client.post(
        f"{API}/organisations", headers=lead, json={"name": name, "plan_id": str(world.basic)}
    )
    assert created.status_code == 201
    contact = client.post(
        f"{API}/organisations/{created.json()['id']}/contacts",
        headers=lead,
        json={"name": "x' OR 1=1 --", "email": "o'brien@example.test"},
    )
    assert contact.status_code == 201
    assert contact.json()["email"] == "o'brien@example.test"
    found = client.get(f"{API}/organisations", headers=lead, params={"query": "drop table"}).json()
    assert [o["name"] for o in found] == [name]
    assert {"organisations", "contacts", "users"} <= set(inspect(engine).get_table_names())
    assert len(client.get(f"{API}/organisations", headers=lead).json()) == 2


def test_create_contact_is_unvalidated(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    response = client.post(
        f"{API}/organisations/{world.org}/contacts",
        headers=login("coordinator"),
        json={"name": "Cy Press", "email": "cy@globex.test", "phone": "+1 555 0100"},
    )
    assert response.status_code == 201, response.text
    contact = response.json()
    assert contact["validated"] is False
    assert contact["organisation_id"] == str(world.org)
    with session_scope(sessions) as s:
        row = s.get_one(Contact, uuid.UUID(contact["id"]))
        assert (row.tenant_id, row.validated, row.version) == (
            world.tenant,
            False,
            contact["version"],
        )
    detail = client.get(f"{API}/organisations/{world.org}", headers=login("agent")).json()
    assert detail["allotment"]["used"] == 1  # unvalidated contacts take no slot


def test_one_version_per_write(
    client: TestClient, world: World, login: Login, sessions: sessionmaker[Session]
) -> None:
    lead = login("lead")
    start = _version(sessions, world)
    client.post(f"{API}/calendars", headers=lead, json={"name": "Second", **NY_CALENDAR})
    client.patch(f"{API}/organisations/{world.org}", headers=lead, json={"recent_reviews": 1})
    assert _version(sessions, world) == start + 2
    # Reads and refused writes take no version.
    client.get(f"{API}/plans", headers=lead)
    client.patch(f"{API}/organisations/{world.org}", headers=lead, json={"recent_reviews": -1})
    assert _version(sessions, world) == start + 2
