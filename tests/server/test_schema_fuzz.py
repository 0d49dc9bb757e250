"""The published OpenAPI schema, and generated requests against it (schemathesis).

Every operation gets schema-valid and schema-invalid requests from a signed-in lead, against
random ids and against real ones, and must answer without a 5xx, with a status code and content
type the schema declares and a body that matches the declared response schema; invalid requests
must be refused with a 4xx. Examples are bounded (and derandomised, so CI is reproducible) to
keep the whole run to seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from agentdesk.models import Role
from tests.databases import ENGINES
from tests.server.helpers import PASSWORD, TestClient, World

#: Per operation and variant (valid/invalid, random/real ids): each operation gets 20-30 requests
#: in all. ``AGENTDESK_FUZZ_EXAMPLES=200`` digs deeper locally.
MAX_EXAMPLES = int(os.environ.get("AGENTDESK_FUZZ_EXAMPLES", "10"))
DECLARED_ERRORS = {"401", "403", "404", "409", "413", "422", "429"}
#: The long-poll would wait up to its maximum on every example; the sync tests cover it.
SKIP = {("GET", "/api/v1/sync/poke")}
#: Ops endpoints answer outside the API's error contract (no auth, no request body).
OWN_ERRORS_EXEMPT = ("/healthz", "/metrics")


def test_every_api_operation_declares_the_error_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    error_schema = {"$ref": "#/components/schemas/ErrorOut"}
    missing: list[str] = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path.startswith(OWN_ERRORS_EXEMPT):
                continue
            declared = set(operation["responses"])
            if not declared >= DECLARED_ERRORS:
                missing.append(f"{method.upper()} {path}: {sorted(DECLARED_ERRORS - declared)}")
                continue
            body = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert body == error_schema, f"{method} {path} 422 is not the error shape"
    assert not missing, "\n".join(missing)
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.fixture(params=ENGINES[-1:])
def db_kind(request: pytest.FixtureRequest) -> str:
    """One engine only, the strictest available (PostgreSQL when configured): generation, not
    the database, is what costs time here, and PostgreSQL is where a too-long string, a NUL
    byte or an out-of-range integer would turn into a 500."""
    return str(request.param)


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """Sign-in limits out of the way: the generated logins fail by the hundred, and the lead
    must still be able to sign in (the limits have their own tests)."""
    return make_app(login_failures_per_user=10**9, login_failures_per_address=10**9)


def _real_ids(world: World) -> dict[str, str]:
    return {
        "plan_id": str(world.premium),
        "calendar_id": str(world.calendar),
        "organisation_id": str(world.org),
        "user_id": str(world.users[Role.AGENT]),
    }


def test_generated_requests_never_fail_the_server(app: FastAPI, world: World) -> None:
    # Signs in without entering the TestClient (which would start the app's lifespan a second
    # time: schemathesis starts its own).
    plain = TestClient(app)

    def login() -> dict[str, str]:
        response = plain.post("/api/v1/login", json={"username": "lead", "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    lead = login()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        failures, ran = _fuzz_all(schema, world, login, lead)
    finally:
        shutdown_lifespans()
    assert ran >= 30
    assert not failures, "\n\n".join(failures)


def _fuzz_all(
    schema: Any, world: World, login: Callable[[], dict[str, str]], lead: dict[str, str]
) -> tuple[list[str], int]:
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ]
    failures: list[str] = []
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        # Valid requests against random ids and against real ones; invalid ones need no real ids
        # (they are refused before any lookup).
        variants: list[tuple[GenerationMode, dict[str, str] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if any(p.name in _real_ids(world) for p in operation.path_parameters):
            variants.append((GenerationMode.POSITIVE, _real_ids(world)))
        for mode, ids in variants:
            path_parameters = (
                {p.name: ids[p.name] for p in operation.path_parameters} if ids else None
            )
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            # Signing out spends the token: that operation signs in afresh each time.
            headers: Callable[[], dict[str, str]] = (
                login if operation.path == "/api/v1/logout" else (lambda: lead)
            )
            try:
                _fuzz(strategy, headers, checks)
            except Unsatisfiable:
                # No parameters and no body: nothing to make invalid.
                assert mode == GenerationMode.NEGATIVE
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(
                    f"{operation.method.upper()} {operation.path} ({mode}, "
                    f"{'real' if ids else 'random'} ids): {exc}"
                )
            ran += 1
    return failures, ran


def _fuzz(strategy: Any, headers: Callable[[], dict[str, str]], checks: list[Any]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        response = case.call(headers=headers())
        case.validate_response(response, checks=checks)

    run()
