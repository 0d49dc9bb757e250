"""A lead resets a member's password; organisation editors change a contact's details."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import Contact, Role, User
from agentdesk.models.db import session_scope
from agentdesk.server.security import verify_password
from tests.server.helpers import PASSWORD, Login, TestClient, World

API = "/api/v1"
NEW = "a brand new passphrase"


def test_lead_resets_a_password_revoking_old_sign_ins_and_audited(
    client: TestClient,
    world: World,
    login: Login,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = login("agent")
    target, lead = world.users[Role.AGENT], world.users[Role.LEAD]
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            f"{API}/users/{target}/password", headers=login("lead"), json={"password": NEW}
        )
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert client.get(f"{API}/me", headers=agent).status_code == 401  # the old token is dead
    assert (
        client.post(f"{API}/login", json={"username": "agent", "password": PASSWORD}).status_code
        == 401
    )
    assert client.get(f"{API}/me", headers=login("agent", NEW)).json()["id"] == str(target)
    with session_scope(sessions) as s:
        stored = s.get_one(User, target).password_hash
        assert stored is not None
        assert verify_password(stored, NEW)
    audit = [r for r in caplog.records if r.name == "agentdesk.audit"]
    assert [r.getMessage() for r in audit] == [f"password of user {target} reset by user {lead}"]
    assert NEW not in caplog.text


def test_only_leads_reset_passwords_and_a_refusal_changes_nothing(
    client: TestClient,
    world: World,
    login: Login,
) -> None:
    target = world.users[Role.CONSULTANT]
    for role in ("agent", "coordinator", "consultant"):
        response = client.post(
            f"{API}/users/{target}/password", headers=login(role), json={"password": NEW}
        )
        assert response.status_code == 403, role
    # A lead cannot reset an admin's; an admin can.
    admin = world.users[Role.ADMIN]
    assert (
        client.post(
            f"{API}/users/{admin}/password", headers=login("lead"), json={"password": NEW}
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"{API}/users/{uuid.uuid4()}/password", headers=login("lead"), json={"password": NEW}
        ).status_code
        == 404
    )
    assert client.get(f"{API}/me", headers=login("consultant")).status_code == 200
    assert client.get(f"{API}/me", headers=login("admin")).status_code == 200
    assert (
        client.post(
            f"{API}/users/{world.users[Role.LEAD]}/password",
            headers=login("admin"),
            json={"password": NEW},
        ).status_code
        == 204
    )
    login("lead", NEW)


def test_contact_details_change_and_clashes_name_the_field(
    client: TestClient,
    world: World,
    login: Login,
    sessions: sessionmaker[Session],
) -> None:
    coordinator = login("coordinator")
    other = client.post(
        f"{API}/organisations/{world.org}/contacts",
        headers=coordinator,
        json={"name": "Bo Rand", "email": "bo@globex.test"},
    ).json()
    url = f"{API}/contacts/{other['id']}"
    changed = client.patch(
        url, headers=coordinator, json={"name": "Bö Ränd & Co", "phone": "+1 555 0101"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["email"], changed.json()["phone"]) == (
        "Bö Ränd & Co",
        "bo@globex.test",
        "+1 555 0101",
    )
    assert changed.json()["version"] > other["version"]
    with session_scope(sessions) as s:
        ann_email = s.get_one(Contact, world.contact).email
    clash = client.patch(url, headers=coordinator, json={"email": ann_email.upper()})
    assert clash.status_code == 409
    assert clash.json()["error"]["field"] == "email"
    # Keeping one's own address (in another case) is no clash.
    assert (
        client.patch(url, headers=coordinator, json={"email": "BO@globex.test"}).status_code == 200
    )
    assert client.patch(url, headers=login("agent"), json={"name": "X"}).status_code == 403
    assert (
        client.patch(
            f"{API}/contacts/{uuid.uuid4()}", headers=coordinator, json={"name": "X"}
        ).status_code
        == 404
    )
    with session_scope(sessions) as s:
        row = s.get_one(Contact, uuid.UUID(other["id"]))
        assert (row.name, row.email, row.validated) == ("Bö Ränd & Co", "BO@globex.test", False)
