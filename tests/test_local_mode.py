"""Local mode: an embedded server on loopback, seeded once, reused on the next start."""

from __future__ import annotations

from pathlib import Path

import requests

from agentdesk.local_mode import start_local_mode


def _login(url: str, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/login", json={"username": username, "password": password}, timeout=10
    )


def test_first_start_seeds_and_second_start_reuses(tmp_path: Path) -> None:
    first = start_local_mode(tmp_path, demo_tickets=40)
    try:
        assert first.seeded_now is True
        assert first.url.startswith("http://127.0.0.1:")
        assert requests.get(f"{first.url}/healthz", timeout=5).json()["status"] == "ok"
        r = _login(first.url, first.username, first.password)
        assert r.status_code == 200
        assert r.json()["user"]["role"] == "lead"
        token = r.json()["token"]
        orgs = requests.get(
            f"{first.url}/api/v1/organisations",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert orgs.status_code == 200
    finally:
        first.stop()
    second = start_local_mode(tmp_path, demo_tickets=40)
    try:
        assert second.seeded_now is False
        assert second.database == first.database
        assert _login(second.url, second.username, second.password).status_code == 200
    finally:
        second.stop()
