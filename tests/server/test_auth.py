"""Sign-in, sign-out, token expiry and revocation, disabled users, rate limits, token storage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import AuthToken, LoginFailure, Role, User, utcnow
from agentdesk.models.db import session_scope
from agentdesk.server.security import token_hash
from tests.server.helpers import PASSWORD, Login, TestClient, World, client_for, db_snapshot

ME = "/api/v1/me"


def _login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, object]:
    response = client.post("/api/v1/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_me_logout(client: TestClient, world: World) -> None:
    body = _login(client, "lead")
    assert body["token_type"] == "bearer"
    user = body["user"]
    assert isinstance(user, dict)
    assert user["username"] == "lead"
    assert user["role"] == "lead"
    assert "password_hash" not in user
    headers = _bearer(body["token"])
    me = client.get(ME, headers=headers)
    assert me.status_code == 200
    assert me.json()["id"] == str(world.users[Role.LEAD])
    assert me.json()["tenant_id"] == str(world.tenant)

    assert client.post("/api/v1/logout", headers=headers).status_code == 204
    after = client.get(ME, headers=headers)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "unauthorized"
    assert "revoked" in after.json()["error"]["message"]
    assert after.headers["www-authenticate"] == "Bearer"


def test_logout_revokes_only_that_token(client: TestClient, world: World, login: Login) -> None:
    first, second = login("agent"), login("agent")
    assert client.post("/api/v1/logout", headers=first).status_code == 204
    assert client.get(ME, headers=first).status_code == 401
    assert client.get(ME, headers=second).status_code == 200


def test_token_ttl_is_honoured(make_app: Callable[..., FastAPI], world: World) -> None:
    app = make_app(token_ttl=timedelta(minutes=5))
    with client_for(app) as client:
        before = utcnow()
        body = _login(client, "agent")
        expires = datetime.fromisoformat(str(body["expires_at"]))
        assert before + timedelta(minutes=5) <= expires <= utcnow() + timedelta(minutes=5)


def test_expired_token_is_refused(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    token = _login(client, "agent")["token"]
    assert client.get(ME, headers=_bearer(token)).status_code == 200
    with session_scope(sessions) as s:
        s.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == token_hash(str(token)))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = client.get(ME, headers=_bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_zero_ttl_token_is_dead_on_arrival(make_app: Callable[..., FastAPI], world: World) -> None:
    with client_for(make_app(token_ttl=timedelta(0))) as client:
        token = _login(client, "agent")["token"]
        assert client.get(ME, headers=_bearer(token)).status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-real-token",
        "Token abc",
    ],
)
def test_missing_or_bogus_token_is_401(client: TestClient, world: World, header: str) -> None:
    response = client.get(ME, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_disabled_user_loses_access_and_cannot_sign_in(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    token = _login(client, "consultant")["token"]
    with session_scope(sessions) as s:
        s.execute(update(User).where(User.id == world.users[Role.CONSULTANT]).values(active=False))
    response = client.get(ME, headers=_bearer(token))
    assert response.status_code == 401
    assert "disabled" in response.json()["error"]["message"]
    refused = client.post("/api/v1/login", json={"username": "consultant", "password": PASSWORD})
    assert refused.status_code == 401
    # A disabled account is refused exactly like a wrong password: no hint that it exists.
    assert refused.json()["error"] == {
        "code": "bad_credentials",
        "message": "wrong username or password",
        "field": None,
    }


def test_bad_credentials_give_no_hint(client: TestClient, world: World) -> None:
    wrong_password = client.post(
        "/api/v1/login", json={"username": "lead", "password": "not the password"}
    )
    no_such_user = client.post(
        "/api/v1/login", json={"username": "nobody", "password": "not the password"}
    )
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json()
    assert wrong_password.json()["error"]["message"] == "wrong username or password"


@pytest.fixture
def frozen_sign_in_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Sign-in's clock stands still, so a Retry-After is exact however slow the machine is (a
    loaded CI once took over a second between a failure and the next try and read 29, not 30)."""
    now = utcnow()
    monkeypatch.setattr("agentdesk.server.routes.auth.utcnow", lambda: now)
    return now


def test_failures_slow_down_that_username_from_that_address_only(
    make_app: Callable[..., FastAPI], world: World, frozen_sign_in_clock: datetime
) -> None:
    """Finding 5 of issue 9: five wrong passwords used to lock the username for everyone,
    the owner's right password included, so anyone could lock a teammate out."""
    app = make_app(
        login_failures_per_user=3,
        login_failures_per_address=100,
        login_failure_window=timedelta(minutes=10),
        login_delay=timedelta(seconds=30),
    )
    with client_for(app) as attacker:
        for _ in range(3):
            bad = attacker.post("/api/v1/login", json={"username": "agent", "password": "wrong!!"})
            assert bad.status_code == 401
        # From the failing address, even the right password waits now.
        held = attacker.post("/api/v1/login", json={"username": "agent", "password": PASSWORD})
        assert held.status_code == 429
        assert held.headers["retry-after"] == "30"
        assert held.json()["error"]["code"] == "rate_limited"
        # Other users are not affected.
        _login(attacker, "lead")
    # The owner, from an address that has not been failing, gets in at once.
    owner = TestClient(app, raise_server_exceptions=False, client=("192.0.2.7", 40000))
    try:
        assert (
            owner.post(
                "/api/v1/login", json={"username": "agent", "password": PASSWORD}
            ).status_code
            == 200
        )
    finally:
        owner.close()


def test_the_delay_grows_with_every_further_failure(
    make_app: Callable[..., FastAPI],
    world: World,
    sessions: sessionmaker[Session],
    frozen_sign_in_clock: datetime,
) -> None:
    app = make_app(
        login_failures_per_user=2,
        login_failures_per_address=100,
        login_failure_window=timedelta(minutes=10),
        login_delay=timedelta(seconds=30),
    )
    waits = []
    with client_for(app) as client:
        for _ in range(2):
            client.post("/api/v1/login", json={"username": "agent", "password": "wrong!!"})
        for _ in range(4):
            held = client.post("/api/v1/login", json={"username": "agent", "password": "x" * 9})
            assert held.status_code == 429
            waits.append(int(held.headers["retry-after"]))
            with session_scope(sessions) as s:  # the wait passes; the next guess is wrong too
                for failure in s.scalars(select(LoginFailure)):
                    failure.at -= timedelta(seconds=waits[-1])
            bad = client.post("/api/v1/login", json={"username": "agent", "password": "wrong!!"})
            assert bad.status_code == 401
        assert waits == [30, 60, 120, 240]
        # Capped at the window, and gone with it.
        with session_scope(sessions) as s:
            s.execute(update(LoginFailure).values(at=utcnow() - timedelta(minutes=11)))
        _login(client, "agent")
        with session_scope(sessions) as s:
            # A success clears that address's failures for the user.
            assert (
                s.scalars(select(LoginFailure).where(LoginFailure.username == "agent")).all() == []
            )


def test_rate_limit_per_address(make_app: Callable[..., FastAPI], world: World) -> None:
    app = make_app(login_failures_per_user=100, login_failures_per_address=4)
    with client_for(app) as client:
        for i in range(4):
            bad = client.post(
                "/api/v1/login", json={"username": f"guess{i}", "password": "wrong!!"}
            )
            assert bad.status_code == 401
        # The address is locked for every username, real ones included.
        locked = client.post("/api/v1/login", json={"username": "lead", "password": PASSWORD})
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0


def test_tokens_are_stored_only_as_hashes(
    client: TestClient, world: World, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    token = str(_login(client, "admin")["token"])
    dump = repr(db_snapshot(engine))
    assert token not in dump
    assert token_hash(token) in dump
    with session_scope(sessions) as s:
        stored = s.scalars(select(AuthToken.token_hash)).all()
    assert stored == [token_hash(token)]


def test_passwords_are_stored_as_argon2_hashes(
    client: TestClient, world: World, engine: Engine
) -> None:
    with engine.connect() as conn:
        hashes = conn.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert hashes
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert PASSWORD not in repr(db_snapshot(engine))


def test_login_never_lists_other_fields(client: TestClient, world: World) -> None:
    response = client.post(
        "/api/v1/login", json={"username": "lead", "password": PASSWORD, "tenant": "x"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "tenant"
