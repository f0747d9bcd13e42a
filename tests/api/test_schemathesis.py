"""Generated requests over the OpenAPI schema (RELIABILITY S9): never a 5xx, never an
answer that contradicts the schema.

Schemathesis derives valid and invalid requests for every operation from the app's
own schema and sends them in-process, once with an admin token and once with a
manager's. Runs are bounded and derandomized, so CI sees the same cases every time.

The checks are those that judge what the service answers: no server error, every
status code documented, and every response's body, content type and headers as the
schema documents them. Left out: positive-data acceptance (the schema cannot say that a resource
must be in the catalogue, or that an integer must not be written `2.0`, so a domain 422
is not a rejected valid request), and the `Allow` header of a 405 (Starlette lists only
the methods of the first route that matches the path).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from starlette.types import ASGIApp, Receive, Scope, Send

from service.main import create_app
from service.settings import Settings
from tests.support import FakeClock, World, make_executor, seed_world, wipe


class Served:
    """The app schemathesis talks to: whichever one the current backend's fixture started.

    The schema is loaded when this module is imported, before any database exists, from
    an app that is never started: serving the schema needs nothing its lifespan builds.
    """

    def __init__(self) -> None:
        self.app: ASGIApp = create_app(Settings(database_url="sqlite://"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # the fixture's test client runs the started app's lifespan and ends it
        await self.app(scope, receive, send)


SERVED = Served()
schema = schemathesis.openapi.from_asgi("/openapi.json", SERVED)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    deterministic=True,
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
]

BOUNDED = settings(
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def live_world(database_url: str) -> Iterator[World]:
    """One seeded network and one started app per backend, shared by every generated case."""
    config = Settings(
        database_url=database_url,
        redis_url=None,
        embedded_redis=False,
        scheduler_enabled=False,
        data_dir=Path("var/test"),
    )
    clock = FakeClock()
    executor = make_executor(config, clock)
    wipe(executor.db)
    world = seed_world(executor)
    app = create_app(config, clock=clock)
    with TestClient(app):
        previous, SERVED.app = SERVED.app, app
        yield world
        SERVED.app = previous
    executor.db.dispose()


@pytest.fixture(scope="module")
def admin_headers(live_world: World) -> dict[str, str]:
    return live_world.headers("admin")


@pytest.fixture(scope="module")
def manager_headers(live_world: World) -> dict[str, str]:
    return live_world.headers("manager", "nairobi")


@schema.parametrize()
@BOUNDED
def test_admin_gets_no_5xx_and_answers_that_match_the_schema(
    case: schemathesis.Case, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=admin_headers, checks=CHECKS)


@schema.parametrize()
@BOUNDED
def test_manager_gets_no_5xx_and_answers_that_match_the_schema(
    case: schemathesis.Case, manager_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=manager_headers, checks=CHECKS)
