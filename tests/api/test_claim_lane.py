"""The REST claim lane (service/api/claim_lane.py) answers exactly as the route does.

The same script of claims, well-formed and not, is sent to an app with the lane and to
one without it, each on the same freshly seeded database at the same instant: every
answer must be the same, status, headers and body byte for byte. A spy outside the
middleware stack records which of the two answered each call, so the script is known
to exercise the lane for every well-formed claim and the route for the rest.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.claim_lane import ClaimLane
from service.commands.admin import mint_token
from service.domain.actors import SYSTEM, Role
from service.executor import Executor
from service.main import create_app
from service.settings import Settings
from tests.support import FakeClock, World, seed_world, wipe

API = "/api/v1"
LANE, ROUTE = "lane", "route"
VARYING = {"date", "x-request-id"}


class _Spy:
    """Outermost middleware: which answered each HTTP call, the lane or the router."""

    def __init__(self, app: ASGIApp, served: list[str]) -> None:
        self.app = app
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "POST" and "/claims" in scope["path"]:
            self.served.append(LANE if scope.get("endpoint") is ClaimLane else ROUTE)


def _script(client: TestClient, world: World, executor: Executor) -> list[tuple[str, Any]]:
    """Send every call of the script; return (who is expected to answer, response)."""

    def token(role: str, city: str | None = None, **kw: Any) -> dict[str, str]:
        if not kw:
            return world.headers(role, city)
        city_id = world.city_ids[city] if city else None
        command = functools.partial(mint_token, **kw)
        (_, secret), _ = executor.run_sync(SYSTEM, command, Role(role), city_id, "scoped")
        return {"Authorization": f"Bearer {secret}"}

    manager = world.headers("manager", "nairobi")
    incident = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "Athi"}, headers=manager
    ).json()
    pumps = client.post(
        f"{API}/incidents/{incident['id']}/requests",
        json={"resource": "high-capacity-pump", "quantity": 5},
        headers=manager,
    ).json()
    cots = client.post(
        f"{API}/incidents/{incident['id']}/requests",
        json={"resource": "cots", "quantity": 10},
        headers=manager,
    ).json()
    thika = world.headers("responder", "thika")
    read_only = token("responder", "thika", scopes=["read"])
    claims_only = token("responder", "thika", scopes=["claims"])
    observer, munich = world.headers("observer", "nairobi"), world.headers("responder", "munich")
    at = f"{API}/requests/{pumps['id']}/claims"
    full = f"{API}/requests/{cots['id']}/claims"

    def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
        return {**headers, "Idempotency-Key": key}

    one = {"quantity": 1}
    calls: list[tuple[str, str, dict[str, str], Any]] = [
        # Well-formed: the lane answers, refusals included.
        (LANE, at, keyed(thika, "k1"), {"quantity": 2, "note": "two trucks"}),
        (LANE, at, keyed(thika, "k1"), {"quantity": 2, "note": "two trucks"}),
        (LANE, at, keyed(thika, "k1"), {"quantity": 3}),
        (LANE, at, keyed(thika, "k2"), {"quantity": 4}),
        (LANE, at, keyed(claims_only, "k3"), one),
        (LANE, at, keyed(read_only, "k4"), one),
        (LANE, at, keyed(observer, "k5"), one),
        (LANE, at, keyed(manager, "k6"), one),
        (LANE, at, keyed(munich, "k7"), one),
        (LANE, f"{API}/requests/999999/claims", keyed(thika, "k8"), one),
        (LANE, at, keyed(world.headers("admin"), "k9"), one),
        # Not the contract's shapes: the route answers, in its words.
        (ROUTE, at, thika, one),
        (ROUTE, at, keyed(thika, "has space"), one),
        (ROUTE, at, keyed(thika, "k" * 201), one),
        (ROUTE, at, keyed(thika, "k10"), {"quantity": 1, "colour": "red"}),
        (ROUTE, at, keyed(thika, "k11"), {"quantity": "1"}),
        (ROUTE, at, keyed(thika, "k12"), {"quantity": 0}),
        (ROUTE, at, keyed(thika, "k13"), [1]),
        (ROUTE, at, keyed(thika, "k14"), {"quantity": 1, "note": 7}),
        (ROUTE, f"{API}/requests/0/claims", keyed(thika, "k15"), one),
        (ROUTE, f"{API}/requests/0{pumps['id']}/claims", keyed(thika, "k16"), one),
        (ROUTE, f"{API}/requests/99999999999/claims", keyed(thika, "k17"), one),
        # A request claimed in full, then one of a closed incident.
        (LANE, full, keyed(thika, "c1"), {"quantity": 10}),
        (LANE, full, keyed(thika, "c2"), one),
    ]
    answers = [(who, client.post(path, headers=h, json=body)) for who, path, h, body in calls]
    client.post(f"{API}/incidents/{incident['id']}/close", headers=manager)
    answers.append(
        (LANE, client.post(at, headers={**thika, "Idempotency-Key": "c3"}, json={"quantity": 1}))
    )
    return answers


def _run(settings: Settings, executor: Executor) -> tuple[list[Any], list[str], list[str]]:
    wipe(executor.db)
    world = seed_world(executor)
    served: list[str] = []
    app = create_app(settings, clock=FakeClock())
    app.add_middleware(_Spy, served=served)
    with TestClient(app) as client:
        script = _script(client, world, executor)
    answers = [
        (
            r.status_code,
            sorted((k, v) for k, v in r.headers.items() if k not in VARYING),
            r.content,
        )
        for _, r in script
    ]
    return answers, [who for who, _ in script], served


@pytest.fixture
def both(settings: Settings, executor: Executor) -> Iterator[tuple[Any, Any]]:
    lane = _run(settings, executor)
    route = _run(settings.model_copy(update={"rest_claim_lane": False}), executor)
    yield lane, route


def test_the_lane_answers_every_claim_as_the_route_does(both: tuple[Any, Any]) -> None:
    (lane_answers, expected, lane_served), (route_answers, _, route_served) = both
    assert lane_served == expected  # the lane took every well-formed claim
    assert set(route_served) == {ROUTE}  # without the lane, the route took them all
    for i, (a, b) in enumerate(zip(lane_answers, route_answers, strict=True)):
        assert a == b, f"call {i}: lane {a!r} != route {b!r}"
    statuses = [status for status, _, _ in lane_answers]
    # The script covers what it says: made, replayed, refused for each reason, malformed.
    assert statuses[:11] == [201, 201, 409, 409, 201, 403, 403, 403, 403, 404, 403]
    assert dict(lane_answers[1][1])["idempotent-replayed"] == "true"
    assert set(statuses[11:22]) == {422}
    assert statuses[22:] == [201, 409, 409]
