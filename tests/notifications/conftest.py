"""A server over a seeded world (tests/sync/world.py) and a push helper per role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agentdesk.models import AuthToken, Notification, NotificationDelivery, utcnow
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.server.app import create_app
from agentdesk.server.security import token_hash
from agentdesk.server.settings import ServerSettings
from tests.server.helpers import TestClient, client_for
from tests.sync.world import World, build_world


class Api:
    def __init__(self, client: TestClient, world: World) -> None:
        self.client = client
        self.world = world
        self.tokens: dict[str, str] = {}
        self.clients: dict[str, tuple[uuid.UUID, int]] = {}
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

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def push(self, who: str, *mutations: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Push ``mutations`` from ``who``'s desktop; returns their results."""
        client_id, last = self.clients.get(who, (uuid.uuid4(), 0))
        body = {
            "client_id": str(client_id),
            "mutations": [
                {"id": last + i, "name": n, "args": a} for i, (n, a) in enumerate(mutations, 1)
            ],
        }
        r = self.client.post("/api/v1/sync/push", json=body, headers=self.headers(who))
        assert r.status_code == 200, r.text
        self.clients[who] = (client_id, last + len(mutations))
        return list(r.json()["results"])

    def outbox(self) -> list[tuple[Notification, list[NotificationDelivery]]]:
        with session_scope(self.world.sessions) as s:
            return _outbox(s)


def _outbox(s: Session) -> list[tuple[Notification, list[NotificationDelivery]]]:
    notes = s.scalars(select(Notification).order_by(Notification.created_at, Notification.id))
    out = []
    for n in notes:
        deliveries = list(
            s.scalars(
                select(NotificationDelivery)
                .where(NotificationDelivery.notification_id == n.id)
                .order_by(NotificationDelivery.email)
            )
        )
        s.expunge(n)
        for d in deliveries:
            s.expunge(d)
        out.append((n, deliveries))
    return out


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    app = create_app(ServerSettings(database_url=database_url))
    engine = make_engine(database_url)
    world = build_world(make_session_factory(engine))
    with client_for(app) as client:
        yield Api(client, world)
    engine.dispose()


def ticket_args(world: World, who: str = "ann", org: str = "globex", **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        ticket_id=str(uuid.uuid4()),
        subject="Checkout is down",
        description="Customers see an error at checkout.",
        channel="portal",
        organisation_id=str(world.orgs[org]),
        requester_id=str(world.contacts[who]),
        stated_urgency=1,
    )
    args.update(kw)
    return args
