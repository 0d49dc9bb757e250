"""Prometheus metrics: requests by route and status, latency, database pool.

Per process, as Prometheus expects from a horizontally scaled service: each server process is
its own scrape target.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
        self._routes: tuple[list[BaseRoute], int, Sequence[Any]] | None = None
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

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Plain ASGI middleware counting each request by route template and status and
        timing it until its response is sent (a ``BaseHTTPMiddleware`` cost more per request
        than a small route's own work)."""

        async def measure(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            route = self._route_template(scope)
            start = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                method = str(scope.get("method", ""))
                self.requests.labels(method, route, str(status)).inc()
                self.latency.labels(method, route).observe(time.perf_counter() - start)

        return measure

    def _route_template(self, scope: Scope) -> str:
        """The route's path template (``/api/v1/organisations/{org_id}``), never the raw path,
        so label cardinality stays bounded whatever clients send."""
        routes = scope["app"].router.routes
        if self._routes is None or self._routes[0] is not routes or self._routes[1] != len(routes):
            # Flattened once, not per request, and again only if routes were added since.
            self._routes = (routes, len(routes), _flat_routes(routes))
        for route in self._routes[2]:
            match, _ = route.matches(scope)
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
