"""The ASGI app factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from .. import __version__
from ..models.db import make_engine, make_session_factory
from ..models.migrate import upgrade
from .deps import ServerState
from .errors import error_body, install_error_handlers
from .metrics import Metrics
from .settings import ServerSettings


def create_app(settings: ServerSettings) -> FastAPI:
    engine = make_engine(settings.database_url)
    if settings.migrate_on_start:
        upgrade(engine)
    app = FastAPI(
        title="AgentDesk server",
        version=__version__,
        description="The shared backend of AgentDesk desktops: auth, plans, organisations, "
        "and the sync protocol.",
    )
    app.state.agentdesk = ServerState(
        settings=settings,
        write_sessions=make_session_factory(engine, write=True),
        read_sessions=make_session_factory(engine, write=False),
    )
    app.state.engine = engine
    metrics = Metrics(engine)
    app.state.metrics = metrics
    install_error_handlers(app)
    app.middleware("http")(_body_limit(settings.max_body_bytes))
    app.middleware("http")(metrics.middleware)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the database answers")
    def healthz() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any database failure means unhealthy
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__},
                                status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (text format)")
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    from .routes import register_routes

    register_routes(app)
    return app


def _body_limit(
    limit: int,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Refuse oversized bodies before anything parses them (413), whether or not the client
    declares a Content-Length."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        declared = request.headers.get("content-length")
        too_large = JSONResponse(
            error_body("too_large", f"request body is larger than {limit} bytes"), status_code=413
        )
        if declared is not None:
            try:
                if int(declared) > limit:
                    return too_large
            except ValueError:
                return JSONResponse(error_body("invalid", "bad Content-Length header"), 400)
        elif request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return too_large
            request._body = body  # re-use the buffered body for the endpoint
        return await call_next(request)

    return middleware
