"""The test server's apps are freed once it stops (the soak restarts it ~10 times a seed).

FastAPI's callable caches kept every app the harness built (see tests/plugins/app_caches.py):
a soak process grew by ~20 MB a seed, to 5 GB over 500 seeds."""

from __future__ import annotations

import gc
import weakref

import requests
from fastapi.dependencies import models

from tests.plugins.app_caches import CACHES
from tests.plugins.live_team import LiveServer


def cached_callables() -> int:
    caches = (getattr(models, name, None) for name in CACHES)
    return sum(c.cache_info().currsize for c in caches if c is not None)


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
        # (A FastAPI without these caches keeps nothing there: the check below still holds.)
        assert cached_callables() > 0 or not any(hasattr(models, n) for n in CACHES)
    finally:
        server.stop()
    assert server.app is not None
    app = weakref.ref(server.app)
    server.app = None
    gc.collect()
    assert app() is None, "nothing keeps a stopped test server's app"
