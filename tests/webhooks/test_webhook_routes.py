"""Who may do what with webhook endpoints (every route x own manager, another city's
manager, responder, observer, admin, no token), the secret shown once, rotation, and bad
input: generated bodies never cause a 5xx."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from service.commands import webhooks
from service.domain.actors import SYSTEM
from service.domain.webhooks import IpAddress
from service.main import create_app
from service.persistence.tables import WebhookAttempt
from service.settings import Settings
from service.webhooks.models import WebhookCreate
from tests.support import World

API = "/api/v1"
PUBLIC = "https://eoc.nairobi.example/hooks"


class PublicResolver:
    """Every name resolves to one public address (nothing is sent: delivery is off)."""

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        return [ipaddress.ip_address("93.184.216.34")]


@pytest.fixture
def api(settings: Settings, world: World) -> Iterator[TestClient]:
    quiet = settings.model_copy(update={"webhooks_enabled": False, "rate_limit_per_s": 0.0})
    with TestClient(create_app(quiet, resolver=PublicResolver())) as client:
        yield client


CALLERS: dict[str, tuple[str, str | None] | None] = {
    "own manager": ("manager", "nairobi"),
    "other city's manager": ("manager", "thika"),
    "responder": ("responder", "nairobi"),
    "observer": ("observer", "nairobi"),
    "admin": ("admin", None),
    "no token": None,
}

# route -> (method, path template, body, status for the endpoint's own manager and admin)
ROUTES: dict[str, tuple[str, str, dict[str, Any] | None, int]] = {
    "get": ("GET", "/webhooks/{id}", None, 200),
    "update": ("PATCH", "/webhooks/{id}", {"description": "EOC board"}, 200),
    "delete": ("DELETE", "/webhooks/{id}", None, 204),
    "pause": ("POST", "/webhooks/{id}/pause", None, 200),
    "resume": ("POST", "/webhooks/{id}/resume", None, 200),
    "rotate": ("POST", "/webhooks/{id}/rotate-secret", {"overlap_s": 60}, 200),
    "ping": ("POST", "/webhooks/{id}/ping", None, 202),
    "attempts": ("GET", "/webhooks/{id}/attempts", None, 200),
    "redeliver": ("POST", "/webhooks/{id}/attempts/{attempt}/redeliver", None, 202),
    "redeliver failed": ("POST", "/webhooks/{id}/redeliver-failed", None, 202),
}


def _headers(world: World, caller: str) -> dict[str, str]:
    who = CALLERS[caller]
    return {} if who is None else world.headers(who[0], who[1])


def _endpoint(world: World) -> tuple[int, int]:
    """A fresh endpoint of Nairobi with one logged attempt."""
    executor = world.executor
    body = WebhookCreate(url=PUBLIC, city_id=world.city_ids["nairobi"])
    issued, _ = executor.run_sync(SYSTEM, webhooks.register_endpoint, body)
    with executor.db.write() as session:
        attempt = WebhookAttempt(
            endpoint_id=issued.id,
            event_id="00000000-0000-0000-0000-000000000001",
            event_type="incident.declared",
            source="stream",
            attempt=1,
            attempted_at=datetime.now(UTC),
            status_code=500,
            latency_ms=3.0,
            outcome="failed",
        )
        session.add(attempt)
        session.flush()
        attempt_id = attempt.id
    assert attempt_id is not None
    return issued.id, attempt_id


def _expected(caller: str, allowed: int) -> int:
    return {
        "own manager": allowed,
        "admin": allowed,
        "other city's manager": 404,
        "responder": 403,
        "observer": 403,
        "no token": 401,
    }[caller]


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("route", list(ROUTES))
def test_endpoint_routes_answer_each_caller_as_its_role_and_city_allow(
    api: TestClient, world: World, route: str, caller: str
) -> None:
    method, template, body, allowed = ROUTES[route]
    endpoint_id, attempt_id = _endpoint(world)
    path = API + template.format(id=endpoint_id, attempt=attempt_id)
    response = api.request(method, path, json=body, headers=_headers(world, caller))
    assert response.status_code == _expected(caller, allowed), response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["detail"], str)
        # A refused write leaves the endpoint as it was.
        still = api.get(f"{API}/webhooks/{endpoint_id}", headers=world.headers("admin"))
        assert still.status_code == 200 and still.json()["status"] == "active"


@pytest.mark.parametrize("caller", list(CALLERS))
def test_registering_is_for_the_city_manager_and_the_admin(
    api: TestClient, world: World, caller: str
) -> None:
    body = {"url": PUBLIC, "city_id": world.city_ids["nairobi"]}
    response = api.post(f"{API}/webhooks", json=body, headers=_headers(world, caller))
    expected = {"other city's manager": 403}.get(caller, _expected(caller, 201))
    assert response.status_code == expected, response.text
    if expected == 201:
        assert response.json()["secret"].startswith("whsec_")


@pytest.mark.parametrize("caller", list(CALLERS))
def test_listing_shows_only_the_callers_city(api: TestClient, world: World, caller: str) -> None:
    endpoint_id, _ = _endpoint(world)
    response = api.get(f"{API}/webhooks", headers=_headers(world, caller))
    expected = 200 if caller == "other city's manager" else _expected(caller, 200)
    assert response.status_code == expected
    if response.status_code == 200:
        ids = [e["id"] for e in response.json()["data"]]
        assert (endpoint_id in ids) == (caller in ("own manager", "admin"))
        assert all("secret" not in e for e in response.json()["data"])


def test_the_secret_is_shown_once_and_a_rotation_overlaps(api: TestClient, world: World) -> None:
    manager = world.headers("manager", "nairobi")
    created = api.post(f"{API}/webhooks", json={"url": PUBLIC}, headers=manager).json()
    endpoint_id = created["id"]
    assert "secret" not in api.get(f"{API}/webhooks/{endpoint_id}", headers=manager).json()
    rotated = api.post(
        f"{API}/webhooks/{endpoint_id}/rotate-secret", json={"overlap_s": 3600}, headers=manager
    ).json()
    assert rotated["secret"] != created["secret"] and rotated["previous_secret_until"]
    paused = api.post(f"{API}/webhooks/{endpoint_id}/pause", headers=manager).json()
    assert paused["status"] == "paused"
    resumed = api.post(f"{API}/webhooks/{endpoint_id}/resume", headers=manager).json()
    assert resumed["status"] == "active"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "url": JSON | st.sampled_from([PUBLIC, "https://", "https://[::1]/", "x" * 3000]),
        "event_types": JSON | st.lists(st.sampled_from(["claim.made", "nope"]), max_size=3),
        "description": JSON,
        "city_id": JSON | st.integers(),
        "overlap_s": JSON | st.integers(),
    },
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSON | FIELDS, route=st.sampled_from(["create", "update", "rotate"]))
def test_generated_bodies_never_cause_a_server_error(
    api: TestClient, world: World, body: Any, route: str
) -> None:
    manager = world.headers("manager", "nairobi")
    if route == "create":
        response = api.post(f"{API}/webhooks", json=body, headers=manager)
    else:
        listed = api.get(f"{API}/webhooks", headers=manager).json()["data"]
        endpoint_id = listed[0]["id"] if listed else 1
        path = f"{API}/webhooks/{endpoint_id}" + ("/rotate-secret" if route == "rotate" else "")
        response = api.request(
            "POST" if route == "rotate" else "PATCH", path, json=body, headers=manager
        )
    assert response.status_code < 500, response.text
    assert "detail" in response.json() or response.status_code < 300
