"""An app whose webhook worker runs on the real clock with short retries, and receivers it
may call: their loopback address is allowed through the setting, as an on-premises
deployment would allow its own systems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.support import World
from tests.webhooks.receiver import Receiver, running

API = "/api/v1"

FAST = {
    "webhook_allow_http": True,
    "webhook_allowed_private": ["127.0.0.1/32"],
    "webhook_retry_base_s": 0.2,
    "webhook_retry_cap_s": 1.0,
    "webhook_retry_window_s": 60.0,
    "webhook_timeout_s": 0.5,
    "webhook_poll_interval_s": 0.2,
    "rate_limit_per_s": 0.0,
}


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver()) as started:
        yield started


@pytest.fixture
def hook_client(hook_settings: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings)) as client:
        yield client


def register(
    client: TestClient, world: World, url: str, city: str = "nairobi", **extra: Any
) -> dict[str, Any]:
    response = client.post(
        f"{API}/webhooks", json={"url": url, **extra}, headers=world.headers("manager", city)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def declare(client: TestClient, world: World, title: str, requests: int) -> int:
    """An incident of Nairobi with `requests` requests: 1 + requests events."""
    headers = world.headers("manager", "nairobi")
    response = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": title, "severity": "severe"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    incident_id: int = response.json()["id"]
    for n in range(requests):
        raised = client.post(
            f"{API}/incidents/{incident_id}/requests",
            json={"resource": "high-capacity-pump", "quantity": n + 1, "priority": "high"},
            headers=headers,
        )
        assert raised.status_code == 201, raised.text
    return incident_id
