"""Stopping the server while desktops hold long-polls: the polls are answered at once with
"nothing new" instead of being cancelled by uvicorn's graceful-shutdown timeout (which
answered them 500 and logged a traceback), on both ways a server stops."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import uuid
from collections.abc import Callable

import pytest
import requests
from fastapi import FastAPI

from agentdesk.models import Role
from agentdesk.server.embedded import EmbeddedServer
from agentdesk.server.notify import VersionNotifier
from agentdesk.server.serving import AgentDeskServer
from agentdesk.server.settings import ServerSettings
from tests.server.helpers import PASSWORD, World


def test_closing_the_notifier_releases_waiters_and_later_waits() -> None:
    notifier = VersionNotifier()
    tenant = uuid.uuid4()

    async def scenario() -> tuple[int | None, int | None, int | None]:
        notifier.bind_loop(asyncio.get_running_loop())
        held = asyncio.ensure_future(notifier.wait_beyond(tenant, 0, 30))
        await asyncio.sleep(0)
        assert notifier.waiting == 1
        notifier.close()
        first = await asyncio.wait_for(held, 5)
        later = await asyncio.wait_for(notifier.wait_beyond(tenant, 0, 30), 5)
        # A version already known still answers: closing only stops the waiting.
        notifier.notify(tenant, 3)
        await asyncio.sleep(0)
        known = await notifier.wait_beyond(tenant, 0, 30)
        return first, later, known

    assert asyncio.run(scenario()) == (None, None, 3)
    assert notifier.waiting == 0


def test_stopping_the_embedded_server_answers_a_held_poke(
    database_url: str, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedServer(ServerSettings(database_url=database_url, migrate_on_start=False))
    server.start()
    answers: list[requests.Response | BaseException] = []
    try:
        token = requests.post(
            f"{server.url}/api/v1/login",
            timeout=10,
            json={"username": world.usernames[Role.AGENT], "password": PASSWORD},
        ).json()["token"]
        head = requests.get(
            f"{server.url}/api/v1/sync/poke?cursor=0&wait=0",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ).json()["version"]

        def poll() -> None:
            try:
                answers.append(
                    requests.get(
                        f"{server.url}/api/v1/sync/poke?cursor={head}&wait=25",
                        timeout=30,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                )
            except BaseException as exc:
                answers.append(exc)

        poller = threading.Thread(target=poll)
        poller.start()
        state = server.app.state.agentdesk
        for _ in range(500):
            if state.notifier.waiting:
                break
            threading.Event().wait(0.01)
        assert state.notifier.waiting == 1, "the poke never started waiting"
    finally:
        with caplog.at_level(logging.INFO, logger="uvicorn.error"):
            server.stop()
    poller.join(30)
    [answer] = answers
    assert isinstance(answer, requests.Response), answer
    assert answer.status_code == 200
    assert answer.json() == {"version": head, "changed": False}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_signal_closes_the_notifier_before_uvicorn_shuts_down(
    make_app: Callable[..., FastAPI],
) -> None:
    import uvicorn

    app = make_app()
    server = AgentDeskServer(uvicorn.Config(app), app)
    notifier = app.state.agentdesk.notifier
    assert not notifier.closed
    server.handle_exit(signal.SIGTERM, None)
    assert notifier.closed
    assert server.should_exit
