"""A real server (uvicorn on a loopback port) over a seeded team, a lead's token and an
integration key, for the intake API and the portal."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
from sqlalchemy import update

from agentdesk.models import AuthToken, User, utcnow
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.server.security import token_hash
from tests.plugins.live_team import LiveServer
from tests.sync.world import World, build_world


@dataclass
class Door:
    url: str
    world: World
    http: requests.Session
    tokens: dict[str, str]
    key: str

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def file(self, key: str | None = None, **body: object) -> requests.Response:
        payload: dict[str, object] = {
            "email": "ann@globex.test",
            "organisation": "Globex",
            "subject": "Checkout is down",
            "description": "Customers see an error.",
            "urgency": 1,
        }
        payload.update(body)
        headers = {"X-API-Key": key if key is not None else self.key}
        # The payload is JSON by construction; requests' JsonType is invariant over object.
        return self.http.post(
            f"{self.url}/api/v1/requests",
            json=payload,  # type: ignore[arg-type]
            headers=headers,
            timeout=30,
        )


@pytest.fixture
def door(database_url: str) -> Iterator[Door]:
    engine = make_engine(database_url)
    world = build_world(make_session_factory(engine))
    tokens: dict[str, str] = {}
    with session_scope(world.sessions) as s:
        s.execute(
            update(User)
            .where(User.id == world.users["coordinator"])
            .values(email="coordinator@support.test")
        )
        for who, user_id in world.users.items():
            token = f"tok-{who}-{uuid.uuid4().hex}"
            s.add(
                AuthToken(
                    user_id=user_id,
                    token_hash=token_hash(token),
                    expires_at=utcnow() + timedelta(hours=1),
                )
            )
            tokens[who] = token
    server = LiveServer(database_url)
    server.start()
    http = requests.Session()
    try:
        r = http.post(
            f"{server.url}/api/v1/api-keys",
            json={"name": "Website"},
            headers={"Authorization": f"Bearer {tokens['lead']}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        yield Door(server.url, world, http, tokens, r.json()["key"])
    finally:
        http.close()
        server.stop()
        engine.dispose()
