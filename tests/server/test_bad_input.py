"""Bad input gets a 4xx in the one error shape, naming the field, and changes nothing.

Each case snapshots every table before and after. Because every case must leave the database as
it found it, the cases share one seeded server per database engine (a case that did change
something fails its own snapshot check, so sharing cannot hide a bug).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import Engine

from agentdesk.models import Role
from agentdesk.server import security
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings
from tests.databases import ENGINES, drop_database, new_database_url
from tests.server.helpers import (
    NY_CALENDAR,
    PASSWORD,
    TestClient,
    World,
    client_for,
    db_snapshot,
    seed_tenant,
)

MAX_BODY = 64 * 1024


@dataclass
class Shared:
    app: FastAPI
    client: TestClient
    world: World
    tokens: dict[Role, dict[str, str]]

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine


@pytest.fixture(scope="module", params=ENGINES)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    url = new_database_url(str(request.param), tmp_path_factory.mktemp("bad-input"))
    with pytest.MonkeyPatch.context() as mp:
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        mp.setattr(security, "_hasher", hasher)
        mp.setattr(security, "_DUMMY_HASH", hasher.hash("not-a-real-password"))
        app = create_app(
            ServerSettings(database_url=url, migrate_on_start=False, max_body_bytes=MAX_BODY)
        )
        from agentdesk.models.db import make_session_factory

        world = seed_tenant(make_session_factory(app.state.engine))
        with client_for(app) as client:
            tokens = {}
            for role in (Role.LEAD, Role.ADMIN, Role.COORDINATOR):
                response = client.post(
                    "/api/v1/login", json={"username": role.value, "password": PASSWORD}
                )
                assert response.status_code == 200, response.text
                tokens[role] = {"Authorization": f"Bearer {response.json()['token']}"}
            yield Shared(app, client, world, tokens)
    app.state.engine.dispose()
    drop_database(url)


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    field: str | None
    json: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    role: Role = Role.LEAD


RANDOM = "2b1e6a58-5f0e-4c43-9d9e-5b8c1a3f0e11"
ORG = "/api/v1/organisations"
ORG_ONE = "/api/v1/organisations/{org}"
JSON = {"content-type": "application/json"}


def _org(**over: Any) -> dict[str, Any]:
    return {"name": "Initrode", "plan_id": "{basic}", **over}


def _plan(**over: Any) -> dict[str, Any]:
    return {"key": "gold", "name": "Gold", "rank": 3, "channels": ["portal"], **over}


def _cal(**over: Any) -> dict[str, Any]:
    return {"name": "Berlin", **NY_CALENDAR, "tz": "Europe/Berlin", **over}


def _user(**over: Any) -> dict[str, Any]:
    return {
        "username": "newbie",
        "display_name": "New Bie",
        "role": "agent",
        "password": "long enough secret",
        **over,
    }


CASES = [
    # Malformed bodies.
    Case("truncated-json", "POST", ORG, 422, "body", raw=b'{"name": ', headers=JSON),
    Case("not-json", "POST", "/api/v1/plans", 422, "body", raw=b"key=gold", headers=JSON),
    Case("json-array", "POST", ORG, 422, "body", json=[1, 2]),
    Case("json-string", "POST", ORG, 422, "body", json="Initrode"),
    Case("not-utf8", "POST", ORG, 422, "body", raw=b'{"name": "\xff\xfe"}', headers=JSON),
    Case(
        "lone-surrogate",
        "POST",
        ORG,
        422,
        "name",
        raw=b'{"name": "Glo\\ud800bex", "plan_id": "{basic}"}',
        headers=JSON,
    ),
    Case(
        "text-plain",
        "POST",
        ORG,
        422,
        "body",
        raw=b'{"name": "Initrode"}',
        headers={"content-type": "text/plain"},
    ),
    Case("empty-body", "POST", "/api/v1/users", 422, "body", raw=b"", headers=JSON),
    # Unknown fields.
    Case("unknown-field", "POST", ORG, 422, "colour", json=_org(colour="red")),
    Case(
        "patch-password",
        "PATCH",
        "/api/v1/users/{agent}",
        422,
        "password",
        json={"password": "new secret 123"},
    ),
    Case(
        "calendar-unknown-field",
        "PUT",
        "/api/v1/calendars/{calendar}",
        422,
        "owner",
        json=_cal(name="New York", owner="me"),
    ),
    Case(
        "target-unknown-field",
        "POST",
        "/api/v1/plans",
        422,
        "response_targets.1.hours",
        json=_plan(response_targets={"1": {"hours": 4}}),
    ),
    # Wrong types and out-of-range numbers.
    Case("count-as-string", "POST", ORG, 422, "verified_reviews", json=_org(verified_reviews="5")),
    Case("count-as-float", "POST", ORG, 422, "verified_reviews", json=_org(verified_reviews=2.5)),
    Case("negative-count", "PATCH", ORG_ONE, 422, "recent_reviews", json={"recent_reviews": -1}),
    Case("huge-count", "PATCH", ORG_ONE, 422, "recent_reviews", json={"recent_reviews": 2**31}),
    Case(
        "bool-as-string", "PATCH", "/api/v1/users/{agent}", 422, "active", json={"active": "false"}
    ),
    Case("rank-as-bool", "POST", "/api/v1/plans", 422, "rank", json=_plan(rank=True)),
    Case("rank-too-big", "POST", "/api/v1/plans", 422, "rank", json=_plan(rank=10**12)),
    Case("null-name", "PATCH", ORG_ONE, 422, "name", json={"name": None}),
    Case("unknown-role", "POST", "/api/v1/users", 422, "role", json=_user(role="superuser")),
    Case("unknown-membership", "PATCH", ORG_ONE, 422, "membership", json={"membership": "vip"}),
    Case("plan-id-not-uuid", "POST", ORG, 422, "plan_id", json=_org(plan_id="basic")),
    Case(
        "channels-not-list", "POST", "/api/v1/plans", 422, "channels", json=_plan(channels="portal")
    ),
    # Time-zone-less and out-of-range datetimes.
    Case(
        "naive-datetime",
        "POST",
        ORG,
        422,
        "member_since",
        json=_org(member_since="2026-01-05T09:00:00"),
    ),
    Case(
        "datetime-out-of-range",
        "PATCH",
        ORG_ONE,
        422,
        "member_since",
        json={"member_since": "0001-01-01T00:00:00+14:00"},
    ),
    # Unknown ids: in the path (404) and referenced from the body (422 naming the field).
    Case("unknown-plan", "GET", f"/api/v1/plans/{RANDOM}", 404, None),
    Case("unknown-calendar", "PUT", f"/api/v1/calendars/{RANDOM}", 404, None, json=_cal()),
    Case("unknown-org", "PATCH", f"{ORG}/{RANDOM}", 404, None, json={"name": "X"}),
    Case(
        "unknown-org-contacts",
        "POST",
        f"{ORG}/{RANDOM}/contacts",
        404,
        None,
        json={"name": "Ann", "email": "ann@x.test"},
    ),
    Case("unknown-user", "PATCH", f"/api/v1/users/{RANDOM}", 404, None, json={"display_name": "X"}),
    Case("delete-unknown-plan", "DELETE", f"/api/v1/plans/{RANDOM}", 404, None),
    Case("path-id-not-uuid", "GET", "/api/v1/plans/1%20OR%201=1", 422, "plan_id"),
    Case("body-plan-unknown", "POST", ORG, 422, "plan_id", json=_org(plan_id=RANDOM)),
    Case(
        "body-calendar-unknown",
        "POST",
        "/api/v1/plans",
        422,
        "calendar_id",
        json=_plan(calendar_id=RANDOM),
    ),
    # Control characters, empty and overlong strings.
    Case("nul-in-name", "POST", ORG, 422, "name", json=_org(name="Glo\x00bex")),
    Case("newline-in-name", "POST", ORG, 422, "name", json=_org(name="Glo\nbex")),
    Case(
        "escape-in-contact",
        "POST",
        f"{ORG_ONE}/contacts",
        422,
        "name",
        json={"name": "\x1b[31mEvil", "email": "evil@globex.test"},
    ),
    Case("nul-in-query", "GET", f"{ORG}?query=a%00b", 422, "query"),
    Case("empty-query", "GET", f"{ORG}?query=", 422, "query"),
    Case("empty-name", "POST", ORG, 422, "name", json=_org(name="")),
    Case("blank-name", "POST", ORG, 422, "name", json=_org(name="   ")),
    Case(
        "empty-display-name",
        "POST",
        "/api/v1/users",
        422,
        "display_name",
        json=_user(display_name=""),
    ),
    Case("empty-calendar-name", "POST", "/api/v1/calendars", 422, "name", json=_cal(name="")),
    Case("overlong-name", "POST", ORG, 422, "name", json=_org(name="x" * 201)),
    Case(
        "overlong-username", "POST", "/api/v1/users", 422, "username", json=_user(username="a" * 65)
    ),
    Case(
        "username-with-space",
        "POST",
        "/api/v1/users",
        422,
        "username",
        json=_user(username="new bie"),
    ),
    Case("overlong-plan-key", "POST", "/api/v1/plans", 422, "key", json=_plan(key="k" * 51)),
    Case(
        "bad-email",
        "POST",
        f"{ORG_ONE}/contacts",
        422,
        "email",
        json={"name": "Bob", "email": "not-an-email"},
    ),
    Case("short-password", "POST", "/api/v1/users", 422, "password", json=_user(password="short")),
    # Query parameters.
    Case("limit-zero", "GET", f"{ORG}?limit=0", 422, "limit"),
    Case("limit-too-big", "GET", f"{ORG}?limit=101", 422, "limit"),
    Case("limit-not-number", "GET", f"{ORG}?limit=ten", 422, "limit"),
    Case("unknown-query-param", "GET", f"{ORG}?qurey=globex", 422, "qurey"),
    # The rules engine's verdicts, with its field names.
    Case(
        "calendar-window-backwards",
        "POST",
        "/api/v1/calendars",
        422,
        "hours.mon[0]",
        json=_cal(hours={"mon": [["17:00", "08:00"]]}),
    ),
    Case(
        "calendar-bad-time",
        "POST",
        "/api/v1/calendars",
        422,
        "hours.tue[1]",
        json=_cal(hours={"tue": [["08:00", "12:00"], ["13:00", "25:00"]]}),
    ),
    Case(
        "calendar-overlap",
        "PUT",
        "/api/v1/calendars/{calendar}",
        422,
        "hours.wed[1]",
        json=_cal(hours={"wed": [["08:00", "12:00"], ["11:00", "13:00"]]}),
    ),
    Case(
        "calendar-unknown-weekday",
        "POST",
        "/api/v1/calendars",
        422,
        "hours.funday",
        json=_cal(hours={"funday": [["08:00", "17:00"]]}),
    ),
    Case("calendar-never-open", "POST", "/api/v1/calendars", 422, "hours", json=_cal(hours={})),
    Case(
        "calendar-unknown-tz",
        "POST",
        "/api/v1/calendars",
        422,
        "tz",
        json=_cal(tz="Mars/Olympus_Mons"),
    ),
    Case(
        "calendar-bad-holiday",
        "POST",
        "/api/v1/calendars",
        422,
        "holidays[1]",
        json=_cal(holidays=["2026-12-25", "2026-13-01"]),
    ),
    Case(
        "calendar-bad-country",
        "POST",
        "/api/v1/calendars",
        422,
        "holiday_country",
        json=_cal(holiday_country="XX"),
    ),
    Case(
        "plan-unknown-channel",
        "POST",
        "/api/v1/plans",
        422,
        "channels",
        json=_plan(channels=["portal", "fax"]),
    ),
    Case(
        "plan-unknown-tier",
        "PUT",
        "/api/v1/plans/{premium}",
        422,
        "response_targets",
        json=_plan(key="premium", response_targets={"7": {"minutes": 5}}),
    ),
    Case(
        "plan-target-both",
        "POST",
        "/api/v1/plans",
        422,
        "response_targets.1.target",
        json=_plan(response_targets={"1": {"minutes": 5, "business_days": 1}}),
    ),
    Case(
        "plan-target-zero",
        "POST",
        "/api/v1/plans",
        422,
        "response_targets.2.minutes",
        json=_plan(response_targets={"2": {"minutes": 0}}),
    ),
    # Conflicts.
    Case("username-taken", "POST", "/api/v1/users", 409, "username", json=_user(username="agent")),
    Case(
        "calendar-name-taken", "POST", "/api/v1/calendars", 409, "name", json=_cal(name="New York")
    ),
    Case("plan-key-taken", "POST", "/api/v1/plans", 409, "key", json=_plan(key="basic")),
    Case(
        "plan-key-taken-on-put",
        "PUT",
        "/api/v1/plans/{premium}",
        409,
        "key",
        json=_plan(key="basic"),
    ),
    Case("delete-plan-in-use", "DELETE", "/api/v1/plans/{basic}", 409, None),
    Case("demote-self", "PATCH", "/api/v1/users/{lead}", 409, "role", json={"role": "agent"}),
    Case(
        "deactivate-self",
        "PATCH",
        "/api/v1/users/{admin}",
        409,
        "active",
        json={"active": False},
        role=Role.ADMIN,
    ),
    Case(
        "duplicate-contact-email",
        "POST",
        f"{ORG_ONE}/contacts",
        409,
        "email",
        json={"name": "Ann Again", "email": "ANN@globex.test"},
        role=Role.COORDINATOR,
    ),
    Case(
        "reset-own-password",
        "POST",
        "/api/v1/users/{lead}/password",
        409,
        "user_id",
        json={"password": "a long enough secret"},
    ),
    Case(
        "reset-short-password",
        "POST",
        "/api/v1/users/{agent}/password",
        422,
        "password",
        json={"password": "short"},
    ),
    Case(
        "reset-admin-password-as-lead",
        "POST",
        "/api/v1/users/{admin}/password",
        403,
        "role",
        json={"password": "a long enough secret"},
    ),
    Case(
        "reset-password-null",
        "POST",
        "/api/v1/users/{agent}/password",
        422,
        "password",
        json={"password": None},
    ),
    Case(
        "contact-bad-email",
        "PATCH",
        "/api/v1/contacts/{contact}",
        422,
        "email",
        json={"email": "not an address"},
        role=Role.COORDINATOR,
    ),
    Case(
        "contact-blank-name",
        "PATCH",
        "/api/v1/contacts/{contact}",
        422,
        "name",
        json={"name": ""},
        role=Role.COORDINATOR,
    ),
    Case(
        "contact-null-email",
        "PATCH",
        "/api/v1/contacts/{contact}",
        422,
        "email",
        json={"email": None},
        role=Role.COORDINATOR,
    ),
    # Size limit, declared and undeclared (chunked).
    Case("body-too-large", "POST", ORG, 413, None, json=_org(name="x" * (MAX_BODY + 10))),
    Case("wrong-method", "DELETE", "/api/v1/users", 405, None),
]


def _fill(template: str, world: World) -> str:
    ids = {
        "basic": world.basic,
        "premium": world.premium,
        "calendar": world.calendar,
        "org": world.org,
        "contact": world.contact,
        **{role.value: uid for role, uid in world.users.items()},
    }
    for name, value in ids.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def _fill_json(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return _fill(value, world)
    if isinstance(value, list):
        return [_fill_json(v, world) for v in value]
    if isinstance(value, dict):
        return {k: _fill_json(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(shared: Shared, case: Case) -> None:
    world = shared.world
    before = db_snapshot(shared.engine)
    headers = {**shared.tokens[case.role], **case.headers}
    url = _fill(case.path, world)
    if case.raw is not None:
        response = shared.client.request(
            case.method,
            url,
            content=_fill(case.raw.decode("latin-1"), world).encode("latin-1"),
            headers=headers,
        )
    else:
        response = shared.client.request(
            case.method, url, json=_fill_json(case.json, world), headers=headers
        )
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}
    assert error["message"]
    assert error["field"] == case.field, error
    assert db_snapshot(shared.engine) == before


def test_chunked_body_over_the_limit_is_refused(shared: Shared) -> None:
    """No Content-Length: the limit still holds while the body streams in."""
    before = db_snapshot(shared.engine)

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"x" * 1024
        yield b'", "plan_id": "' + str(shared.world.basic).encode() + b'"}'

    response = shared.client.post(
        ORG, content=chunks(), headers={**shared.tokens[Role.LEAD], **JSON}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert db_snapshot(shared.engine) == before


def test_deeply_nested_json_is_a_client_error(shared: Shared) -> None:
    before = db_snapshot(shared.engine)
    body = b"[" * 20_000 + b"]" * 20_000
    response = shared.client.post(ORG, content=body, headers={**shared.tokens[Role.LEAD], **JSON})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body"
    assert db_snapshot(shared.engine) == before


def test_random_ids_never_500(shared: Shared) -> None:
    for _ in range(5):
        response = shared.client.get(
            f"/api/v1/organisations/{uuid.uuid4()}", headers=shared.tokens[Role.LEAD]
        )
        assert response.status_code == 404
