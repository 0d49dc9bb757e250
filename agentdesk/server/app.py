"""The ASGI app factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..models.db import make_engine, make_session_factory
from ..models.versioning import LISTENER_KEY
from ..sync.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION, UNDECLARED_PROTOCOL
from .admission import DatabaseGate
from .deps import ServerState
from .errors import error_body, install_error_handlers
from .logs import RequestIdMiddleware
from .metrics import Metrics
from .notify import PostgresListener, VersionNotifier
from .settings import ServerSettings
from .sla_backfill import upgrade_and_backfill

SYNC_PREFIX = "/api/v1/sync/"


def pool_options(settings: ServerSettings) -> dict[str, Any]:
    """A connection pool that never grows past ``settings.max_db_connections``.

    Push and pull are sync handlers on AnyIO's worker threads, each holding one pooled
    connection at a time for its whole batch or page. The pool used to be sized to 40 threads
    plus a quarter of overflow (about 51 connections with LISTEN), so three busy processes asked
    PostgreSQL's default ``max_connections`` of 100 for ~155 and the ones refused became 503s.
    Now the pool has no overflow, and the process admits as many requests at once as the pool
    holds connections and runs as many request threads (:func:`request_threads`,
    ``admission.DatabaseGate``): a burst queues inside the process, on the event loop, and an
    admitted request always finds a connection. An in-memory SQLite database keeps
    SQLAlchemy's single-connection pool.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {}
    return {"pool_size": request_threads(settings), "max_overflow": 0}


def request_threads(settings: ServerSettings) -> int:
    """Worker threads for sync handlers: one per pooled connection. On PostgreSQL one of the
    budget's connections is the change feed's LISTEN (``notify.PostgresListener``)."""
    listen = 1 if make_url(settings.database_url).get_backend_name() == "postgresql" else 0
    return settings.max_db_connections - listen


def create_app(settings: ServerSettings) -> FastAPI:
    engine = make_engine(settings.database_url, **pool_options(settings))
    if settings.migrate_on_start:
        upgrade_and_backfill(engine)
    notifier = VersionNotifier()
    listener = (
        PostgresListener(settings.database_url, notifier)
        if engine.dialect.name == "postgresql"
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The thread count the pool was sized for (``pool_options``), for this event loop.
        to_thread.current_default_thread_limiter().total_tokens = request_threads(settings)
        notifier.bind_loop(asyncio.get_running_loop())
        if listener is not None:
            listener.start()
        from .notifications.sender import start_sender

        # None without SMTP: the outbox just holds.
        sender = start_sender(write_sessions, settings.smtp)
        watch = None
        if settings.expiry_check_interval is not None:
            from .notifications.config import mail_domain
            from .notifications.expiry import ExpiryWatch

            watch = ExpiryWatch(
                write_sessions, mail_domain(settings.smtp), settings.expiry_check_interval
            )
            watch.start()
        try:
            yield
        finally:
            if watch is not None:
                watch.stop()
            if sender is not None:
                sender.stop()
            if listener is not None:
                listener.stop()
            engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="AgentDesk server",
        version=__version__,
        description="The shared backend of AgentDesk desktops: auth, plans, organisations, "
        "and the sync protocol.",
    )
    write_sessions = make_session_factory(engine, write=True)
    # In-process pokes hear of each commit directly; other processes hear through PostgreSQL.
    write_sessions.kw["info"] = {LISTENER_KEY: notifier.notify}
    gate = DatabaseGate(request_threads(settings))
    app.state.agentdesk = ServerState(
        settings=settings,
        write_sessions=write_sessions,
        read_sessions=make_session_factory(engine, write=False),
        notifier=notifier,
        gate=gate,
    )
    app.state.listener = listener
    app.state.engine = engine
    metrics = Metrics(engine, settings.max_db_connections)
    app.state.metrics = metrics
    install_error_handlers(app)
    # Added first, so innermost: refused bodies and protocols never take a slot.
    app.add_middleware(gate.middleware)
    app.add_middleware(_body_limit(settings.max_body_bytes))
    app.add_middleware(_protocol_check(settings.min_client_protocol))
    app.add_middleware(metrics.middleware)
    app.add_middleware(RequestIdMiddleware)  # last added, outermost: ids every line

    @app.get("/healthz", tags=["ops"], summary="Liveness: the database answers")
    def healthz() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any database failure means unhealthy
            return JSONResponse(
                {"status": "unavailable", "error": type(exc).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics (text format)",
        response_class=PlainTextResponse,
    )
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    from .routes import register_routes
    from .routes_sync import router as sync_router

    register_routes(app)
    app.include_router(sync_router, prefix="/api/v1")
    from .intake import register as register_intake

    register_intake(app)
    return app


def _protocol_check(oldest: int) -> Callable[[ASGIApp], ASGIApp]:
    """Refuse sync requests from desktops whose protocol this server does not serve (426), so
    an old desktop never misreads a newer schema's rows or pushes what the server would
    misapply; every response says the server's protocol.

    Plain ASGI, like the other middleware here: Starlette's ``BaseHTTPMiddleware`` (what
    ``app.middleware("http")`` adds) runs each request through a task group and memory
    streams, and three of them were most of the event loop's time per request
    (docs/performance.md, "Intake throughput").
    """
    ours = (PROTOCOL_HEADER.lower().encode(), str(PROTOCOL_VERSION).encode())
    header = {PROTOCOL_HEADER: str(PROTOCOL_VERSION)}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            refusal = _protocol_refusal(scope, oldest) if _is_sync(scope) else None
            if refusal is not None:
                await JSONResponse(refusal[1], refusal[0], headers=header)(scope, receive, send)
                return

            async def send_with_protocol(message: Message) -> None:
                if message["type"] == "http.response.start":
                    kept = [h for h in message.get("headers", []) if h[0].lower() != ours[0]]
                    message = {**message, "headers": [*kept, ours]}
                await send(message)

            await app(scope, receive, send_with_protocol)

        return middleware

    return wrap


def _is_sync(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith(SYNC_PREFIX)


def _protocol_refusal(scope: Scope, oldest: int) -> tuple[int, dict[str, Any]] | None:
    declared = Headers(scope=scope).get(PROTOCOL_HEADER)
    try:
        theirs = int(declared) if declared is not None else UNDECLARED_PROTOCOL
    except ValueError:
        return 400, error_body("invalid", f"bad {PROTOCOL_HEADER} header", PROTOCOL_HEADER)
    if theirs < oldest:
        return 426, error_body(
            "client_too_old",
            f"this AgentDesk is too old for the server (sync protocol {theirs}; the "
            f"server, AgentDesk {__version__}, needs {oldest} or newer): update "
            "AgentDesk on this computer. Work not sent yet stays on it until then.",
        )
    if theirs > PROTOCOL_VERSION:
        return 426, error_body(
            "server_too_old",
            f"the server (AgentDesk {__version__}, sync protocol {PROTOCOL_VERSION}) "
            f"is older than this AgentDesk (protocol {theirs}): ask whoever runs it to "
            "upgrade it. Work not sent yet stays on this computer until then.",
        )
    return None


def _body_limit(limit: int) -> Callable[[ASGIApp], ASGIApp]:
    """Refuse oversized bodies before anything parses them (413), whether or not the client
    declares a Content-Length."""

    def too_large() -> JSONResponse:
        return JSONResponse(
            error_body("too_large", f"request body is larger than {limit} bytes"), status_code=413
        )

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            declared = Headers(scope=scope).get("content-length")
            if declared is not None:
                try:
                    size = int(declared)
                except ValueError:
                    bad = JSONResponse(error_body("invalid", "bad Content-Length header"), 400)
                    await bad(scope, receive, send)
                    return
                if size > limit:
                    await too_large()(scope, receive, send)
                    return
                await app(scope, receive, send)
                return
            if scope.get("method") not in ("POST", "PUT", "PATCH"):
                await app(scope, receive, send)
                return
            # No declared length: read the body here, within the limit, and hand it on.
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break  # the client went away: the app sees an empty body and the end
                body += message.get("body", b"")
                more = bool(message.get("more_body", False))
                if len(body) > limit:
                    await too_large()(scope, receive, send)
                    return
            handed = False

            async def replay() -> Message:
                nonlocal handed
                if not handed:
                    handed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            await app(scope, replay, send)

        return middleware

    return wrap
