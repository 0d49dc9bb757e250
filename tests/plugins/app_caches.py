"""FastAPI's module-level caches, emptied between tests and after each test server stops.

FastAPI (0.16x) classifies every endpoint and dependency callable (coroutine? generator?) once
and keeps the answer in three LRU caches of 4,096 entries each in ``fastapi.dependencies.models``,
keyed by the callable itself. An entry keeps its callable alive, so its closure, so the app that
defined it (our routes are closures over the server's state). A server process builds its app
once, so there this is a few hundred entries for good. The suite builds an app for almost
every test, and the soak restarts its server several times a seed: a cache full of callables
kept about 1,300 apps alive, ~10 MB each, in one soak process (5 GB after 500 seeds).
:func:`forget_endpoint_callables` empties the caches; it costs the next request a few
classifications.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

#: The caches by name; a FastAPI without one of them simply has less to forget.
CACHES = (
    "_is_gen_callable_cached",
    "_is_async_gen_callable_cached",
    "_is_coroutine_callable_cached",
)


def forget_endpoint_callables() -> int:
    """Empties FastAPI's callable caches; returns how many entries they held."""
    from fastapi.dependencies import models

    held = 0
    for name in CACHES:
        cached = getattr(models, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            held += cached.cache_info().currsize
            cached.cache_clear()
    return held


@pytest.fixture(autouse=True)
def forgotten_endpoint_callables() -> Iterator[None]:
    """Each test's apps can be freed once the test is over."""
    yield
    forget_endpoint_callables()
