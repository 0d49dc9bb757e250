"""Prometheus metrics: requests by route and status, latency, database pool.

Per process, as Prometheus expects from a horizontally scaled service: each server process is
its own scrape target.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match


class Metrics:
    def __init__(self, engine: Engine, max_db_connections: int) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agentdesk_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agentdesk_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        pool = Gauge(
            "agentdesk_db_pool_connections",
            "Database pool connections by state",
            ["state"],
            registry=self.registry,
        )
        # The ceiling the pool gauges are read against (``--max-db-connections`` or
        # AGENTDESK_MAX_DB_CONNECTIONS): an alert on checked_out / budget, and a way to see
        # which budget a running worker was given.
        Gauge(
            "agentdesk_db_connections_budget",
            "The most database connections this process opens (its pool and LISTEN)",
            registry=self.registry,
        ).set(max_db_connections)
        self._engine = engine
        pool.labels("checked_out").set_function(lambda: self._pool_stat("checkedout"))
        pool.labels("idle").set_function(lambda: self._pool_stat("checkedin"))
        pool.labels("overflow").set_function(lambda: self._pool_stat("overflow"))

    def _pool_stat(self, name: str) -> float:
        pool = self._engine.pool
        if isinstance(pool, QueuePool):
            # QueuePool counts overflow from -pool_size until the pool is full; clamp at 0.
            return float(max(getattr(pool, name)(), 0))
        return 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        route = _route_template(request)
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            self.requests.labels(request.method, route, str(status)).inc()
            self.latency.labels(request.method, route).observe(time.perf_counter() - start)


def _route_template(request: Request) -> str:
    """The route's path template (``/api/v1/organisations/{org_id}``), never the raw path, so
    label cardinality stays bounded whatever clients send."""
    for route in _flat_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


def _flat_routes(routes: Sequence[BaseRoute]) -> Sequence[Any]:
    """Routes with their full paths. Newer FastAPI keeps included routers as lazy groups
    (which have no ``path``); ``iter_route_contexts`` flattens them."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are already flat
        return routes
    return list(iter_route_contexts(routes))
