"""Tokens for machines: an expiry, a label, a last-used time, scopes and rotation; and a
city's manager who manages the city's tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from service.tokens import DatabaseTokens
from tests.support import FakeClock, World
from tests.webhooks.test_webhook_routes import PUBLIC, PublicResolver

API = "/api/v1"
# The service's own token lifetimes (the test settings give fixtures' tokens a century).
LIFETIMES = {
    name: Settings.model_fields[name].default for name in ("token_default_days", "token_max_days")
}


@pytest.fixture
def client(settings: Settings, world: World, clock: FakeClock) -> Iterator[TestClient]:
    quiet = settings.model_copy(update={**LIFETIMES, "webhooks_enabled": False})
    app = create_app(quiet, clock=clock, resolver=PublicResolver())
    with TestClient(app) as test_client:
        yield test_client


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _issue(
    client: TestClient, world: World, by: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    body = {"role": "responder", "city_id": world.city_ids["thika"], **body}
    r = client.post(f"{API}/tokens", json=body, headers=by or world.headers("admin"))
    assert r.status_code == 201, r.text
    issued: dict[str, Any] = r.json()
    return issued


def _listed(client: TestClient, world: World, token_id: int) -> dict[str, Any]:
    r = client.get(f"{API}/tokens", params={"limit": 500}, headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = next(t for t in r.json()["data"] if t["id"] == token_id)
    return found


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_new_token_expires_after_90_days_by_default_and_is_refused_from_then_on(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    issued = _issue(client, world, label="pump telemetry")
    assert _at(issued["expires_at"]) == clock.now + timedelta(days=90)
    assert issued["label"] == "pump telemetry" and issued["scopes"] == []
    mine = _bearer(issued["token"])
    assert client.get(f"{API}/me", headers=mine).status_code == 200

    clock.now += timedelta(days=90) - timedelta(seconds=1)
    assert client.get(f"{API}/me", headers=mine).status_code == 200
    clock.now += timedelta(seconds=1)
    r = client.get(f"{API}/me", headers=mine)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = client.post(f"{API}/ws-ticket", headers=mine)
    assert r.status_code == 401


def test_the_lifetime_is_chosen_up_to_the_configured_maximum(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    issued = _issue(client, world, expires_in_days=7)
    assert _at(issued["expires_at"]) == clock.now + timedelta(days=7)
    assert _issue(client, world, expires_in_days=365)["expires_at"]
    for days in (366, 0, -1, "30", 1.5, True):
        r = client.post(
            f"{API}/tokens",
            json={"role": "observer", "city_id": world.city_ids["thika"], "expires_in_days": days},
            headers=world.headers("admin"),
        )
        assert r.status_code == 422, (days, r.text)
    r = client.post(
        f"{API}/tokens",
        json={"role": "observer", "city_id": world.city_ids["thika"], "expires_in_days": 366},
        headers=world.headers("admin"),
    )
    assert "at most 365 days" in r.text


def test_scopes_are_known_names_and_read_only_stands_alone(
    client: TestClient, world: World
) -> None:
    for scopes in (["admin"], ["read", "claims"], "claims", [1], ["claims"] * 4):
        r = client.post(
            f"{API}/tokens",
            json={"role": "responder", "city_id": world.city_ids["thika"], "scopes": scopes},
            headers=world.headers("admin"),
        )
        assert r.status_code == 422, (scopes, r.text)
    both = _issue(client, world, scopes=["webhooks", "claims", "claims"])
    assert both["scopes"] == ["claims", "webhooks"]


def test_the_listing_shows_label_scopes_times_and_never_the_secret(
    client: TestClient, world: World
) -> None:
    issued = _issue(client, world, label="dispatch bot", scopes=["claims"])
    listed = _listed(client, world, issued["id"])
    assert "token" not in listed and issued["token"] not in str(listed)
    assert listed["label"] == "dispatch bot" and listed["scopes"] == ["claims"]
    assert listed["created_at"] and listed["expires_at"] and listed["last_used_at"] is None
    assert listed["rotated_at"] is None and listed["revoked_at"] is None


def test_the_last_use_is_recorded_at_most_once_a_minute(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    issued = _issue(client, world)
    mine = _bearer(issued["token"])
    first = clock.now
    assert client.get(f"{API}/me", headers=mine).status_code == 200
    assert _at(_listed(client, world, issued["id"])["last_used_at"]) == first

    clock.now += timedelta(seconds=59)
    assert client.get(f"{API}/me", headers=mine).status_code == 200
    assert _at(_listed(client, world, issued["id"])["last_used_at"]) == first

    clock.now += timedelta(seconds=1)
    assert client.get(f"{API}/me", headers=mine).status_code == 200
    assert _at(_listed(client, world, issued["id"])["last_used_at"]) == clock.now


def test_rotation_gives_a_new_secret_to_the_same_token_and_the_old_one_stops_at_once(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    issued = _issue(client, world, label="sensor", scopes=["read"], expires_in_days=30)
    old = _bearer(issued["token"])
    clock.now += timedelta(days=10)
    r = client.post(f"{API}/tokens/{issued['id']}/rotate", headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["token"] != issued["token"]
    same = ("id", "label", "role", "city_id", "scopes", "created_at")
    assert {k: rotated[k] for k in same} == {k: issued[k] for k in same}
    assert _at(rotated["rotated_at"]) == clock.now
    assert _at(rotated["expires_at"]) == clock.now + timedelta(days=30)

    assert client.get(f"{API}/me", headers=old).status_code == 401
    me = client.get(f"{API}/me", headers=_bearer(rotated["token"]))
    assert me.status_code == 200 and me.json()["token_id"] == issued["id"]

    client.post(f"{API}/tokens/{issued['id']}/revoke", headers=world.headers("admin"))
    r = client.post(f"{API}/tokens/{issued['id']}/rotate", headers=world.headers("admin"))
    assert r.status_code == 409, r.text
    assert client.get(f"{API}/me", headers=_bearer(rotated["token"])).status_code == 401


def test_an_expired_token_is_not_rotated(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    issued = _issue(client, world, expires_in_days=1)
    clock.now += timedelta(days=1)
    r = client.post(f"{API}/tokens/{issued['id']}/rotate", headers=world.headers("admin"))
    assert r.status_code == 409 and "expired" in r.json()["detail"]


def test_a_manager_manages_their_own_citys_tokens_only(client: TestClient, world: World) -> None:
    manager = world.headers("manager", "thika")
    # Without a city_id, the manager's own city; never an admin token.
    mine = _issue(client, world, by=manager, city_id=None, role="observer", label="board")
    assert mine["city_id"] == world.city_ids["thika"]
    for body in (
        {"role": "admin"},
        {"role": "observer", "city_id": world.city_ids["nairobi"]},
    ):
        r = client.post(f"{API}/tokens", json=body, headers=manager)
        assert r.status_code == 403, (body, r.text)

    listed = client.get(f"{API}/tokens", headers=manager).json()["data"]
    assert {t["city_id"] for t in listed} == {world.city_ids["thika"]}
    assert mine["id"] in [t["id"] for t in listed]

    r = client.post(f"{API}/tokens/{mine['id']}/rotate", headers=manager)
    assert r.status_code == 200, r.text
    assert client.get(f"{API}/me", headers=_bearer(r.json()["token"])).status_code == 200
    r = client.post(f"{API}/tokens/{mine['id']}/revoke", headers=manager)
    assert r.status_code == 200 and r.json()["revoked_at"]

    nairobi = _issue(client, world, city_id=world.city_ids["nairobi"])
    for verb in ("rotate", "revoke"):
        r = client.post(f"{API}/tokens/{nairobi['id']}/{verb}", headers=manager)
        assert r.status_code == 403, (verb, r.text)
        responder = world.headers("responder", "thika")
        r = client.post(f"{API}/tokens/{mine['id']}/{verb}", headers=responder)
        assert r.status_code == 403, (verb, r.text)
    assert client.get(f"{API}/me", headers=_bearer(nairobi["token"])).status_code == 200
    assert client.post(f"{API}/tokens/999999/revoke", headers=manager).status_code == 404


def _claimable_request(client: TestClient, world: World) -> int:
    manager = world.headers("manager", "nairobi")
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=manager
    )
    r = client.post(
        f"{API}/incidents/{r.json()['id']}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4},
        headers=manager,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_a_scoped_token_reads_as_its_role_does_and_writes_only_through_its_scopes(
    client: TestClient, world: World
) -> None:
    request_id = _claimable_request(client, world)
    read_only = _bearer(_issue(client, world, scopes=["read"])["token"])
    claims = _bearer(_issue(client, world, scopes=["claims"])["token"])
    for headers in (read_only, claims):
        assert client.get(f"{API}/requests/{request_id}", headers=headers).status_code == 200
        assert client.get(f"{API}/requests", headers=headers).status_code == 200
        assert client.post(f"{API}/ws-ticket", headers=headers).status_code == 200

    claim = {"quantity": 1}
    r = client.post(
        f"{API}/requests/{request_id}/claims",
        json=claim,
        headers={**read_only, "Idempotency-Key": "ro"},
    )
    assert r.status_code == 403 and "scopes (read)" in r.json()["detail"]
    r = client.post(f"{API}/requests/{request_id}/notes", json={"body": "hi"}, headers=claims)
    assert r.status_code == 403, r.text
    r = client.post(
        f"{API}/requests/{request_id}/claims",
        json=claim,
        headers={**claims, "Idempotency-Key": "c"},
    )
    assert r.status_code == 201, r.text


def test_a_webhooks_scoped_token_manages_webhooks_and_nothing_else(
    client: TestClient, world: World
) -> None:
    city = world.city_ids["nairobi"]
    webhooks = _bearer(
        _issue(client, world, role="manager", city_id=city, scopes=["webhooks"])["token"]
    )
    claims = _bearer(
        _issue(client, world, role="manager", city_id=city, scopes=["claims"])["token"]
    )
    body = {"url": PUBLIC}
    r = client.post(f"{API}/webhooks", json=body, headers=claims)
    assert r.status_code == 403, r.text
    r = client.post(f"{API}/webhooks", json=body, headers=webhooks)
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["id"]
    r = client.post(f"{API}/webhooks/{endpoint_id}/pause", headers=webhooks)
    assert r.status_code == 200, r.text
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=webhooks
    )
    assert r.status_code == 403, r.text


def test_the_revocation_sweep_counts_expired_tokens(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    short = _issue(client, world, expires_in_days=1)
    long = _issue(client, world, expires_in_days=2)
    lookup = DatabaseTokens(world.executor.db, clock)
    ids = {short["id"], long["id"]}
    assert client.portal.call(lookup.revoked_among, ids) == set()  # type: ignore[union-attr]
    clock.now += timedelta(days=1)
    assert client.portal.call(lookup.revoked_among, ids) == {short["id"]}  # type: ignore[union-attr]
