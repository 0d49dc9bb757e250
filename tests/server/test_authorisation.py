"""Every endpoint x every role (and anonymous) -> 2xx, 401 or 403.

The table is checked against ``app.routes``: an endpoint added without a row here fails
``test_every_route_has_a_row``, so each new endpoint must declare who may call it. Each row also
says how to make a request that succeeds for an allowed role, so "allowed" is proven by a 2xx,
not merely by the absence of a 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import (
    ApiKey,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    Plan,
    Role,
    User,
    utcnow,
)
from agentdesk.models.db import session_scope
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings
from tests.server.helpers import NY_CALENDAR, PASSWORD, Login, TestClient, World

ALL = frozenset(Role)
LEADS = frozenset({Role.LEAD, Role.ADMIN})
ORG_EDITORS = frozenset({Role.COORDINATOR, Role.LEAD, Role.ADMIN})
PUBLIC = None  # no token needed


@dataclass
class Ctx:
    world: World
    sessions: sessionmaker[Session]
    role: Role | None
    n: int

    @property
    def tag(self) -> str:
        return f"{self.role.value if self.role else 'anon'}{self.n}"

    def fresh_plan(self) -> uuid.UUID:
        with session_scope(self.sessions) as s:
            plan = Plan(
                tenant_id=self.world.tenant,
                key=f"tmp-{uuid.uuid4().hex[:8]}",
                name="Temporary",
                rank=0,
                channels=["portal"],
                response_targets={},
            )
            s.add(plan)
            s.flush()
            return plan.id

    def failed_delivery(self) -> uuid.UUID:
        with session_scope(self.sessions) as s:
            note = Notification(
                tenant_id=self.world.tenant,
                kind=NotificationKind.REPLY,
                subject="s",
                body_text="t",
                body_html="h",
                cause="",
            )
            s.add(note)
            s.flush()
            delivery = NotificationDelivery(
                notification_id=note.id,
                tenant_id=self.world.tenant,
                email="a@b.test",
                name="",
                message_id=f"<{uuid.uuid4().hex}@t>",
                status=DeliveryStatus.FAILED,
                attempts=8,
                last_error="550",
            )
            s.add(delivery)
            s.flush()
            return delivery.id

    def fresh_member(self) -> uuid.UUID:
        """An agent of the tenant whose sign-ins no other row relies on."""
        with session_scope(self.sessions) as s:
            member = User(
                tenant_id=self.world.tenant,
                username=f"m-{self.tag}",
                display_name="Member",
                role=Role.AGENT,
                created_at=utcnow(),
            )
            s.add(member)
            s.flush()
            return member.id

    def fresh_key(self) -> uuid.UUID:
        with session_scope(self.sessions) as s:
            key = ApiKey(
                tenant_id=self.world.tenant,
                name=f"key-{self.tag}",
                prefix="adk_",
                key_hash=uuid.uuid4().hex,
                settings={},
            )
            s.add(key)
            s.flush()
            return key.id


#: (method, path template) -> (who may call it, how to build a request that should succeed).
Build = Callable[[Ctx], tuple[str, Any]]


def _plan_body(ctx: Ctx) -> dict[str, Any]:
    return {
        "key": f"plan-{ctx.tag}",
        "name": "Gold",
        "rank": 5,
        "channels": ["portal", "chat"],
        "calendar_id": str(ctx.world.calendar),
        "response_targets": {"1": {"minutes": 20}},
    }


TABLE: dict[tuple[str, str], tuple[frozenset[Role] | None, Build]] = {
    ("GET", "/healthz"): (PUBLIC, lambda c: ("/healthz", None)),
    ("GET", "/metrics"): (PUBLIC, lambda c: ("/metrics", None)),
    ("POST", "/api/v1/login"): (
        PUBLIC,
        lambda c: ("/api/v1/login", {"username": "lead", "password": PASSWORD}),
    ),
    ("POST", "/api/v1/logout"): (ALL, lambda c: ("/api/v1/logout", None)),
    ("GET", "/api/v1/me"): (ALL, lambda c: ("/api/v1/me", None)),
    ("GET", "/api/v1/users"): (ALL, lambda c: ("/api/v1/users", None)),
    ("POST", "/api/v1/users"): (
        LEADS,
        lambda c: (
            "/api/v1/users",
            {
                "username": f"new-{c.tag}",
                "display_name": "New Person",
                "email": "new@support.test",
                "role": "agent",
                "password": "a long enough password",
            },
        ),
    ),
    ("PATCH", "/api/v1/users/{user_id}"): (
        LEADS,
        lambda c: (
            f"/api/v1/users/{c.world.users[Role.CONSULTANT]}",
            {"display_name": f"C {c.tag}"},
        ),
    ),
    ("POST", "/api/v1/users/{user_id}/password"): (
        LEADS,
        lambda c: (
            f"/api/v1/users/{c.fresh_member()}/password",
            {"password": "a long enough password"},
        ),
    ),
    ("GET", "/api/v1/calendars"): (ALL, lambda c: ("/api/v1/calendars", None)),
    ("GET", "/api/v1/calendars/{calendar_id}"): (
        ALL,
        lambda c: (f"/api/v1/calendars/{c.world.calendar}", None),
    ),
    ("POST", "/api/v1/calendars"): (
        LEADS,
        lambda c: ("/api/v1/calendars", {"name": f"Cal {c.tag}", **NY_CALENDAR}),
    ),
    ("PUT", "/api/v1/calendars/{calendar_id}"): (
        LEADS,
        lambda c: (f"/api/v1/calendars/{c.world.calendar}", {"name": "New York", **NY_CALENDAR}),
    ),
    ("GET", "/api/v1/plans"): (ALL, lambda c: ("/api/v1/plans", None)),
    ("GET", "/api/v1/plans/{plan_id}"): (ALL, lambda c: (f"/api/v1/plans/{c.world.basic}", None)),
    ("POST", "/api/v1/plans"): (LEADS, lambda c: ("/api/v1/plans", _plan_body(c))),
    ("PUT", "/api/v1/plans/{plan_id}"): (
        LEADS,
        lambda c: (f"/api/v1/plans/{c.world.premium}", {**_plan_body(c), "key": "premium"}),
    ),
    ("DELETE", "/api/v1/plans/{plan_id}"): (
        LEADS,
        lambda c: (f"/api/v1/plans/{c.fresh_plan()}", None),
    ),
    ("GET", "/api/v1/organisations"): (
        ALL,
        lambda c: ("/api/v1/organisations?query=globex&limit=5", None),
    ),
    ("GET", "/api/v1/organisations/{organisation_id}"): (
        ALL,
        lambda c: (f"/api/v1/organisations/{c.world.org}", None),
    ),
    ("POST", "/api/v1/organisations"): (
        ORG_EDITORS,
        lambda c: (
            "/api/v1/organisations",
            {"name": f"Org {c.tag}", "plan_id": str(c.world.basic)},
        ),
    ),
    ("PATCH", "/api/v1/organisations/{organisation_id}"): (
        ORG_EDITORS,
        lambda c: (f"/api/v1/organisations/{c.world.org}", {"recent_reviews": c.n}),
    ),
    ("POST", "/api/v1/organisations/{organisation_id}/contacts"): (
        ORG_EDITORS,
        lambda c: (
            f"/api/v1/organisations/{c.world.org}/contacts",
            {"name": "Bob Roe", "email": f"bob-{c.tag}@globex.test"},
        ),
    ),
    ("PATCH", "/api/v1/contacts/{contact_id}"): (
        ORG_EDITORS,
        lambda c: (f"/api/v1/contacts/{c.world.contact}", {"phone": f"+1 555 {c.n:04d}"}),
    ),
    # The customer's statement: for those who see prices and balances (not agents).
    ("GET", "/api/v1/reports/time"): (
        frozenset({Role.CONSULTANT, Role.LEAD, Role.ADMIN}),
        (
            lambda c: (
                "/api/v1/reports/time?org=globex+corporation&from=2026-10-01&to=2026-10-31"
                "&format=csv",
                None,
            )
        ),
    ),
    # Sync: every team member's desktop syncs (the sync tests cover what each role may mutate).
    ("POST", "/api/v1/sync/pull"): (
        ALL,
        lambda c: ("/api/v1/sync/pull", {"client_id": str(uuid.uuid4()), "cursor": 0, "limit": 10}),
    ),
    ("POST", "/api/v1/sync/push"): (
        ALL,
        lambda c: (
            "/api/v1/sync/push",
            {
                "client_id": str(uuid.uuid4()),
                "mutations": [{"id": 1, "name": "no_such_mutation", "args": {}}],
            },
        ),
    ),
    ("GET", "/api/v1/sync/poke"): (ALL, lambda c: ("/api/v1/sync/poke?cursor=0&wait=0", None)),
    # Integrations: leads manage the keys; a request is filed with a key, never a user's token
    # (tests/intake/test_api.py files them with a key).
    ("GET", "/api/v1/api-keys"): (LEADS, lambda c: ("/api/v1/api-keys", None)),
    ("POST", "/api/v1/api-keys"): (LEADS, lambda c: ("/api/v1/api-keys", {"name": c.tag})),
    ("DELETE", "/api/v1/api-keys/{key_id}"): (
        LEADS,
        lambda c: (f"/api/v1/api-keys/{c.fresh_key()}", None),
    ),
    ("GET", "/api/v1/notifications"): (LEADS, lambda c: ("/api/v1/notifications", None)),
    ("POST", "/api/v1/notifications/deliveries/{delivery_id}/retry"): (
        LEADS,
        lambda c: (f"/api/v1/notifications/deliveries/{c.failed_delivery()}/retry", None),
    ),
    # Notification templates: leads only (tests/notifications/test_templates_api.py).
    ("GET", "/api/v1/notifications/templates"): (
        LEADS,
        lambda c: ("/api/v1/notifications/templates", None),
    ),
    ("GET", "/api/v1/notifications/templates/{kind}"): (
        LEADS,
        lambda c: ("/api/v1/notifications/templates/reply", None),
    ),
    ("PUT", "/api/v1/notifications/templates/{kind}"): (
        LEADS,
        lambda c: (
            "/api/v1/notifications/templates/reply",
            {
                "subject": "Re: {{ subject }}",
                "body_text": "Hello {{ name }}, {{ body }}",
                "body_html": "<p>Hello {{ name }}</p><p>{{ body }}</p>",
            },
        ),
    ),
    ("DELETE", "/api/v1/notifications/templates/{kind}"): (
        LEADS,
        lambda c: ("/api/v1/notifications/templates/reply", None),
    ),
    ("POST", "/api/v1/notifications/templates/{kind}/preview"): (
        LEADS,
        lambda c: ("/api/v1/notifications/templates/reply/preview", None),
    ),
    ("POST", "/api/v1/requests"): (
        frozenset(),
        lambda c: (
            "/api/v1/requests",
            {"email": "ann@globex.test", "organisation": "Globex", "subject": "Hi", "urgency": 4},
        ),
    ),
}


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves through its own routes (not FastAPI's docs pages).

    Newer FastAPI keeps included routers as lazy groups in ``app.routes``;
    ``iter_route_contexts`` flattens them into routes with their full paths.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        flat: list[Any] = list(app.routes)
    else:
        flat = [
            ctx
            for ctx in iter_route_contexts(app.routes)
            if isinstance(ctx.original_route, APIRoute)
        ]
    found: set[tuple[str, str]] = set()
    for route in flat:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            found.update((method, route.path) for method in set(route.methods) - {"HEAD"})
    return found


def test_every_route_has_a_row(tmp_path: Any) -> None:
    app = create_app(ServerSettings(database_url=f"sqlite+pysqlite:///{tmp_path}/routes.db"))
    try:
        routes = api_routes(app)
    finally:
        app.state.engine.dispose()
    missing = routes - set(TABLE)
    stale = set(TABLE) - routes
    assert not missing, f"endpoints without a row in the authorisation table: {sorted(missing)}"
    assert not stale, f"rows for endpoints that no longer exist: {sorted(stale)}"


def _expected(allowed: frozenset[Role] | None, role: Role | None) -> int:
    """The expected status class: 2 (2xx), 401 or 403."""
    if allowed is PUBLIC:
        return 2
    if role is None or not allowed:  # no role at all: an integration's key is needed
        return 401
    return 2 if role in allowed else 403


def test_role_matrix(
    app: FastAPI, client: TestClient, world: World, sessions: sessionmaker[Session], login: Login
) -> None:
    """Every row, every role: one test per database so the whole matrix costs one setup."""
    assert set(TABLE) <= api_routes(app)
    tokens = {role: login(role.value) for role in Role}
    wrong: list[str] = []
    n = 0
    for method, path in sorted(TABLE):
        allowed, build = TABLE[(method, path)]
        for role in [None, *Role]:
            n += 1
            url, body = build(Ctx(world, sessions, role, n))
            headers = {}
            if role is not None:
                # Signing out spends the token; the other rows keep theirs.
                headers = login(role.value) if path == "/api/v1/logout" else tokens[role]
            response = client.request(method, url, json=body, headers=headers)
            expected = _expected(allowed, role)
            got = response.status_code // 100 if expected == 2 else response.status_code
            code_ok = (
                got != expected
                or expected == 2
                or response.json()["error"]["code"]
                == ("unauthorized" if expected == 401 else "forbidden")
            )
            if got != expected or not code_ok:
                wrong.append(
                    f"{method} {path} as {role.value if role else 'anonymous'}: "
                    f"expected {'2xx' if expected == 2 else expected}, got "
                    f"{response.status_code} {response.text[:200]}"
                )
    assert not wrong, "\n".join(wrong)


def test_lead_cannot_grant_admin(client: TestClient, world: World, login: Login) -> None:
    lead = login("lead")
    create = client.post(
        "/api/v1/users",
        headers=lead,
        json={
            "username": "sneaky",
            "display_name": "Sneaky",
            "role": "admin",
            "password": "a long enough password",
        },
    )
    assert create.status_code == 403
    assert create.json()["error"]["field"] == "role"
    promote = client.patch(
        f"/api/v1/users/{world.users[Role.AGENT]}", headers=lead, json={"role": "admin"}
    )
    assert promote.status_code == 403
    touch_admin = client.patch(
        f"/api/v1/users/{world.users[Role.ADMIN]}", headers=lead, json={"display_name": "Renamed"}
    )
    assert touch_admin.status_code == 403
    admin = login("admin")
    assert (
        client.patch(
            f"/api/v1/users/{world.users[Role.AGENT]}", headers=admin, json={"role": "admin"}
        ).status_code
        == 200
    )
