"""The test server's apps are freed once it stops (the soak restarts it ~10 times a seed).

FastAPI's callable caches kept every app the harness built (see tests/plugins/app_caches.py):
a soak process grew by ~20 MB a seed, to 5 GB over 500 seeds."""

from __future__ import annotations

import gc
import weakref

import requests

from tests.plugins.app_caches import CACHES
from tests.plugins.live_team import LiveServer


def cached_callables() -> int:
    from fastapi.dependencies import models

    return sum(getattr(models, name).cache_info().currsize for name in CACHES)


def test_a_stopped_servers_app_is_freed_after_it_answered(database_url: str) -> None:
    server = LiveServer(database_url)
    server.start()
    try:
        with requests.Session() as http:
            answered = http.post(
                f"{server.url}/api/v1/login",
                json={"username": "nobody", "password": "wrong!!"},
                timeout=10,
            )
            assert answered.status_code == 401
            # An empty database: the portal answers 503 "no support team yet", after its
            # route's callables were classified.
            assert http.get(f"{server.url}/portal/", timeout=10).status_code == 503
        assert cached_callables() > 0, "FastAPI classified the routes' callables"
    finally:
        server.stop()
    assert server.app is not None
    app = weakref.ref(server.app)
    server.app = None
    gc.collect()
    assert app() is None, "nothing keeps a stopped test server's app"
