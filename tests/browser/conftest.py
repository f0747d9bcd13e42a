"""Fixtures of the browser tests: aidmesh as a real subprocess on SQLite, a seeded world,
and the system Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.executor import Executor
from service.settings import Settings
from tests.procs import end, free_port, scratch_sqlite, start, tail, wait_until_healthy
from tests.support import FakeClock, World, make_executor, missing, seed_world

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


class AidmeshProcess:
    """`python -m service.cli serve` on a fixed port; stopped and started again by PID."""

    def __init__(self, workdir: Path, database_url: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "aidmesh.log"
        self.proc: subprocess.Popen[bytes] | None = None
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            DATABASE_URL=database_url,
            AIDMESH_DATA_DIR=str(workdir / "data"),
            AIDMESH_LOG_LEVEL="warning",
            AIDMESH_GAP_POLL_INTERVAL_S="0.2",
            AIDMESH_SWEEP_INTERVAL_S="1",
        )
        self.env = env

    def start(self, timeout_s: float = 30.0) -> None:
        self.proc = start(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
            self.log_path,
            env=self.env,
            cwd=ROOT,
        )
        wait_until_healthy(
            self.proc, self.base_url, self.log_path, path="/readyz", timeout_s=timeout_s
        )

    def stop(self, grace_s: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        end(proc, grace_s=grace_s)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


@dataclass
class Site:
    """The running service, the seeded world and a test-side executor on the same database."""

    server: AidmeshProcess
    world: World
    executor: Executor
    clock: FakeClock

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def api(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        response = httpx.request(
            method, f"{self.base_url}/api/v1{path}", headers=headers, timeout=10.0, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def flood(self, title: str, **extra: Any) -> dict[str, Any]:
        """Nairobi's manager declares a flood titled `title` (with `extra` fields)."""
        manager = self.world.token("manager", "nairobi")
        incident: dict[str, Any] = self.api(
            "POST", "/incidents", manager, json={"incident_type": "flood", "title": title, **extra}
        )
        return incident

    def power_cut(self, title: str, generators: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Nairobi declares a power-grid failure and asks for `generators` generators:
        the incident and its request."""
        manager = self.world.token("manager", "nairobi")
        incident = self.api(
            "POST",
            "/incidents",
            manager,
            json={"incident_type": "power-grid-failure", "title": title},
        )
        request = self.api(
            "POST",
            f"/incidents/{incident['id']}/requests",
            manager,
            json={"resource": "generator-100kw", "quantity": generators, "priority": "high"},
        )
        return incident, request

    def event_seqs(self, incident_id: int, token: str) -> list[int]:
        page = self.api("GET", f"/incidents/{incident_id}/events?after=0&limit=1000", token)
        return [event["seq"] for event in page["data"]]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("browser")) as started:
        yield started


@contextmanager
def running_site(workdir: Path, env: dict[str, str] | None = None) -> Iterator[Site]:
    """A seeded aidmesh process of its own on SQLite in `workdir` (with `env` added to
    its environment), stopped afterwards."""
    database_url = scratch_sqlite(workdir, "aidmesh.db")
    settings = Settings(
        database_url=database_url,
        redis_url=None,
        embedded_redis=False,
        scheduler_enabled=False,
        data_dir=workdir / "data",
    )
    clock = FakeClock(datetime.now(UTC))
    executor = make_executor(settings, clock)
    world = seed_world(executor)
    server = AidmeshProcess(workdir, database_url, free_port())
    server.env.update(env or {})
    server.start()
    try:
        yield Site(server, world, executor, clock)
    finally:
        server.stop()
        executor.db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing(f"the browser tests need Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the browser tests need the playwright package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def copy_to_docs(paths: list[Path]) -> None:
    """Refresh the README's screenshots, when asked (AIDMESH_UPDATE_SCREENSHOTS=1): a plain
    test run leaves the working tree as it found it."""
    if os.environ.get("AIDMESH_UPDATE_SCREENSHOTS") != "1":
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
