"""RELIABILITY S8: bursts far over the limit get 429 with Retry-After, and nothing is
served above the limit plus the burst."""

from __future__ import annotations

import time
from collections import Counter

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.support import FakeClock, World

RATE, BURST = 5.0, 10


def _client(settings: Settings, clock: FakeClock, **limits: float) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=limits), clock=clock))


def test_a_burst_over_the_limit_is_refused_with_429_and_retry_after(
    settings: Settings, world: World, clock: FakeClock
) -> None:
    with _client(settings, clock, rate_limit_per_s=RATE, rate_limit_burst=BURST) as client:
        observer = world.headers("observer", "thika")
        began = time.monotonic()
        answers = [client.get("/api/v1/incidents", headers=observer) for _ in range(60)]
        elapsed = time.monotonic() - began
        statuses = Counter(r.status_code for r in answers)
        refused = [r for r in answers if r.status_code == 429]
        print(f"\nS8 60 requests in {elapsed:.2f}s at {RATE:g}/s burst {BURST}: {dict(statuses)}")

        assert set(statuses) == {200, 429}
        assert BURST <= statuses[200] <= BURST + RATE * elapsed + 1
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        assert "at most 5 per second" in refused[0].json()["detail"]
        # Another token has its own bucket; pages and health checks are not limited.
        assert (
            client.get(
                "/api/v1/incidents", headers=world.headers("observer", "mombasa")
            ).status_code
            == 200
        )
        assert client.get("/healthz").status_code == 200
        # Once the wait it asked for has passed, the token is served again.
        time.sleep(int(refused[-1].headers["Retry-After"]))
        assert client.get("/api/v1/incidents", headers=observer).status_code == 200


def test_a_limit_of_zero_turns_it_off(settings: Settings, world: World, clock: FakeClock) -> None:
    with _client(settings, clock, rate_limit_per_s=0, rate_limit_burst=1) as client:
        headers = world.headers("observer", "thika")
        statuses = Counter(
            client.get("/api/v1/incidents", headers=headers).status_code for _ in range(30)
        )
    assert statuses == {200: 30}
