"""Fixtures: a database per backend (SQLite always, PostgreSQL when DATABASE_URL names one)."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.executor import Executor
from service.main import create_app
from service.settings import Settings
from tests.support import (
    FakeClock,
    World,
    app_settings,
    backends,
    make_executor,
    scratch_database,
    seed_world,
    wipe,
)

if os.environ.get("CI") == "true" and not os.environ.get("DATABASE_URL"):
    raise RuntimeError("CI must export DATABASE_URL (see .ci/run)")


def pytest_configure(config: pytest.Config) -> None:
    # Each test builds an app, an engine and a world, and leaves them as cyclic garbage:
    # with the interpreter's default thresholds (700, 10, 10) the suite ran 13,000
    # collections per 150 tests. Rarer, larger young collections halve the time spent
    # collecting (21 s to 9 s on the matrix and bad-input tests). Servers started by the
    # tests are their own processes and keep the defaults.
    gc.set_threshold(50_000, 20, 20)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends(), scope="session")


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database(backend, tmp_path_factory.mktemp(backend)) as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return app_settings(database_url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor(settings: Settings, clock: FakeClock) -> Iterator[Executor]:
    executor = make_executor(settings, clock)
    wipe(executor.db)
    yield executor
    executor.db.dispose()


@pytest.fixture
def world(executor: Executor) -> World:
    return seed_world(executor)


@pytest.fixture
def client(settings: Settings, world: World, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock)
    with TestClient(app) as test_client:
        yield test_client
