"""Each refusal a person meets on the respond and manage pages answers a stable `code`
and its `params` beside the English `detail`, over REST and over the websocket alike
(the websocket carries claims, claim moves, passes and offers; request edits and notes
are REST only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from service import edge
from service.domain import errors as de
from service.main import create_app
from service.settings import Settings
from tests.edge.test_edge_contract import _ask, _authed, request_id
from tests.support import FakeClock, World

API = "/api/v1"
__all__ = ["request_id"]  # the fixture, shared with the contract tests


def _refusal(answer: httpx.Response | dict[str, Any]) -> tuple[int, str, dict[str, Any], Any]:
    """(status, code, params, detail) of a REST answer or a websocket error frame."""
    if isinstance(answer, httpx.Response):
        body = answer.json()
        return answer.status_code, body["code"], body["params"], body["detail"]
    assert answer["type"] == "error", answer
    return answer["status"], answer["code"], answer["params"], answer["detail"]


def _alike(over_rest: httpx.Response, over_ws: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """The one refusal both transports gave: same status, code, params and detail."""
    rest, ws = _refusal(over_rest), _refusal(over_ws)
    assert rest == ws, (rest, ws)
    return rest[0], rest[1], rest[2]


def _claim_rest(client: TestClient, world: World, request_id: int, key: str, **body: Any) -> Any:
    headers = {**world.headers("responder", "thika"), "Idempotency-Key": key}
    return client.post(f"{API}/requests/{request_id}/claims", json=body, headers=headers)


def _claim_ws(client: TestClient, world: World, request_id: int, key: str, **body: Any) -> Any:
    with _authed(client, world.token("responder", "thika")) as ws:
        return _ask(ws, {"op": "claim", "request_id": request_id, "idempotency_key": key, **body})


def _incident_of(client: TestClient, world: World, request_id: int) -> int:
    r = client.get(f"{API}/requests/{request_id}", headers=world.headers("manager", "nairobi"))
    return int(r.json()["incident_id"])


# Claims ---------------------------------------------------------------------------------


def test_claiming_more_than_is_left_is_not_enough_remaining_with_the_numbers(
    client: TestClient, world: World, request_id: int
) -> None:
    over_rest = _claim_rest(client, world, request_id, "much-1", quantity=5)
    over_ws = _claim_ws(client, world, request_id, "much-2", quantity=5)
    assert _alike(over_rest, over_ws) == (
        409,
        "not_enough_remaining",
        {"asked": 5, "remaining": 4},
    )
    assert over_rest.json()["detail"] == "cannot claim 5: only 4 left unclaimed on this request"


def test_a_key_reused_with_another_body_is_idempotency_mismatch(
    client: TestClient, world: World, request_id: int
) -> None:
    assert _claim_rest(client, world, request_id, "same", quantity=1).status_code == 201
    over_rest = _claim_rest(client, world, request_id, "same", quantity=2)
    over_ws = _claim_ws(client, world, request_id, "same", quantity=2)
    assert _alike(over_rest, over_ws) == (409, "idempotency_mismatch", {})


def test_a_claim_out_of_reach_or_on_a_citys_own_request_names_why(
    client: TestClient, world: World, request_id: int
) -> None:
    for city, code in [("machakos", "not_aimed_at_city"), ("nairobi", "own_request")]:
        headers = {**world.headers("responder", city), "Idempotency-Key": f"reach-{city}"}
        over_rest = client.post(
            f"{API}/requests/{request_id}/claims", json={"quantity": 1}, headers=headers
        )
        with _authed(client, world.token("responder", city)) as ws:
            claim = {"op": "claim", "request_id": request_id, "quantity": 1}
            over_ws = _ask(ws, {**claim, "idempotency_key": f"reach-ws-{city}"})
        assert _alike(over_rest, over_ws) == (403, code, {})


def test_a_claim_on_a_request_with_nothing_left_is_request_not_open(
    client: TestClient, world: World, request_id: int
) -> None:
    assert _claim_rest(client, world, request_id, "all", quantity=4).status_code == 201
    over_rest = _claim_rest(client, world, request_id, "more-1", quantity=1)
    over_ws = _claim_ws(client, world, request_id, "more-2", quantity=1)
    assert _alike(over_rest, over_ws) == (
        409,
        "request_not_open",
        {"current": "claimed", "asked": "claimed"},
    )


def test_a_claim_in_a_closed_incident_is_incident_not_active(
    client: TestClient, world: World, request_id: int
) -> None:
    manager = world.headers("manager", "nairobi")
    cancelled = client.post(f"{API}/requests/{request_id}/cancel", headers=manager)
    assert cancelled.status_code == 200, cancelled.text
    incident_id = _incident_of(client, world, request_id)
    closed = client.post(f"{API}/incidents/{incident_id}/close", headers=manager)
    assert closed.status_code == 200, closed.text
    over_rest = _claim_rest(client, world, request_id, "late-1", quantity=1)
    over_ws = _claim_ws(client, world, request_id, "late-2", quantity=1)
    assert _alike(over_rest, over_ws) == (
        409,
        "incident_not_active",
        {"current": "closed", "action": "claim"},
    )


def test_an_observer_is_role_refused_with_the_roles_it_needs(
    client: TestClient, world: World, request_id: int
) -> None:
    headers = {**world.headers("observer", "thika"), "Idempotency-Key": "obs"}
    over_rest = client.post(
        f"{API}/requests/{request_id}/claims", json={"quantity": 1}, headers=headers
    )
    with _authed(client, world.token("observer", "thika")) as ws:
        over_ws = _ask(
            ws, {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "o"}
        )
    assert _alike(over_rest, over_ws) == (
        403,
        "role_refused",
        {"roles": ["manager", "responder"], "role": "observer"},
    )


def test_bad_fields_are_invalid_input_with_each_issues_type_and_limit(
    client: TestClient, world: World, request_id: int
) -> None:
    over_rest = _claim_rest(client, world, request_id, "zero", quantity=0)
    over_ws = _claim_ws(client, world, request_id, "zero", quantity=0)
    rest, ws = _refusal(over_rest), _refusal(over_ws)
    assert rest[:2] == ws[:2] == (422, "invalid_input")
    # Located in the body over REST, in the message over the socket.
    assert rest[2] == {
        "issues": [{"loc": ["body", "quantity"], "type": "greater_than_equal", "limit": 1}]
    }
    assert ws[2] == {"issues": [{"loc": ["quantity"], "type": "greater_than_equal", "limit": 1}]}
    missing = _claim_rest(client, world, request_id, "none")
    assert _refusal(missing)[2] == {"issues": [{"loc": ["body", "quantity"], "type": "missing"}]}
    extra = _claim_ws(client, world, request_id, "extra", quantity=1, priority="high")
    assert _refusal(extra)[:3] == (
        422,
        "invalid_input",
        {"issues": [{"loc": ["priority"], "type": "extra_forbidden"}]},
    )


# Claim moves ----------------------------------------------------------------------------


def _move_rest(
    client: TestClient, world: World, who: tuple[str, str], claim_id: int, to: str
) -> Any:
    return client.post(
        f"{API}/claims/{claim_id}/status", json={"status": to}, headers=world.headers(*who)
    )


def _move_ws(client: TestClient, world: World, who: tuple[str, str], claim_id: int, to: str) -> Any:
    with _authed(client, world.token(*who)) as ws:
        return _ask(ws, {"op": "claim_status", "claim_id": claim_id, "status": to})


def test_claim_moves_name_the_wrong_party_the_illegal_move_and_the_requesting_manager(
    client: TestClient, world: World, request_id: int
) -> None:
    made = _claim_rest(client, world, request_id, "mine", quantity=1)
    claim_id = int(made.json()["id"])
    thika = ("responder", "thika")
    for who, to, expected in [
        (
            thika,
            "accepted",
            (403, "wrong_party", {"what": "claim", "current": "claimed", "asked": "accepted"}),
        ),
        (
            thika,
            "on_site",
            (
                409,
                "illegal_transition",
                {"what": "claim", "current": "claimed", "asked": "on_site"},
            ),
        ),
        (("responder", "nairobi"), "withdrawn", (403, "requesting_manager_only", {})),
    ]:
        over_rest = _move_rest(client, world, who, claim_id, to)
        over_ws = _move_ws(client, world, who, claim_id, to)
        assert _alike(over_rest, over_ws) == expected
    over_rest = _move_rest(client, world, thika, 999_999, "withdrawn")
    over_ws = _move_ws(client, world, thika, 999_999, "withdrawn")
    assert _alike(over_rest, over_ws) == (404, "not_found", {})


# Passes and offers ----------------------------------------------------------------------


def test_a_second_pass_is_already_passed(client: TestClient, world: World, request_id: int) -> None:
    thika = world.headers("responder", "thika")
    assert (
        client.post(f"{API}/requests/{request_id}/passes", json={}, headers=thika).status_code
        == 201
    )
    over_rest = client.post(f"{API}/requests/{request_id}/passes", json={}, headers=thika)
    with _authed(client, world.token("responder", "thika")) as ws:
        over_ws = _ask(ws, {"op": "pass", "request_id": request_id})
    assert _alike(over_rest, over_ws) == (409, "already_passed", {})


def test_an_offer_to_a_citys_own_incident_and_one_expired_already_name_why(
    client: TestClient, world: World, request_id: int, clock: FakeClock
) -> None:
    incident_id = _incident_of(client, world, request_id)
    now = clock.now
    offer = {
        "resource": "high-capacity-pump",
        "quantity": 1,
        "ready_at": (now + timedelta(hours=1)).isoformat(),
    }
    cases = [
        ("nairobi", offer, (403, "own_incident", {})),
        (
            "thika",
            {**offer, "expires_at": (now - timedelta(hours=1)).isoformat()},
            (422, "not_in_future", {"field": "expires_at"}),
        ),
    ]
    for n, (city, body, expected) in enumerate(cases):
        headers = {**world.headers("responder", city), "Idempotency-Key": f"offer-{n}"}
        over_rest = client.post(f"{API}/incidents/{incident_id}/offers", json=body, headers=headers)
        with _authed(client, world.token("responder", city)) as ws:
            over_ws = _ask(
                ws, {"op": "offer", "incident_id": incident_id, "idempotency_key": f"o-{n}", **body}
            )
        assert _alike(over_rest, over_ws) == expected


# Request edits and notes (REST only) ----------------------------------------------------


def test_a_request_edit_below_what_is_claimed_is_below_claimed_with_the_numbers(
    client: TestClient, world: World, request_id: int
) -> None:
    assert _claim_rest(client, world, request_id, "three", quantity=3).status_code == 201
    manager = world.headers("manager", "nairobi")
    r = client.patch(f"{API}/requests/{request_id}", json={"quantity": 2}, headers=manager)
    assert _refusal(r)[:3] == (409, "below_claimed", {"asked": 2, "claimed": 3})
    r = client.patch(f"{API}/requests/{request_id}", json={"report_lat": 1.0}, headers=manager)
    assert _refusal(r)[:3] == (422, "coordinates_pair", {})
    r = client.patch(
        f"{API}/requests/{request_id}",
        json={"quantity": 5},
        headers=world.headers("manager", "thika"),
    )
    assert _refusal(r)[:3] == (403, "requesting_manager_only", {})


def test_a_note_from_a_city_not_working_on_the_request_is_not_involved(
    client: TestClient, world: World, request_id: int
) -> None:
    headers = {**world.headers("responder", "machakos"), "Idempotency-Key": "note"}
    r = client.post(f"{API}/requests/{request_id}/notes", json={"body": "hi"}, headers=headers)
    assert _refusal(r)[:3] == (403, "not_involved", {"what": "request"})


# The edge's own answers -----------------------------------------------------------------


def test_too_many_requests_is_rate_limited_with_the_rate(
    settings: Settings, world: World, clock: FakeClock
) -> None:
    limited = settings.model_copy(update={"rate_limit_per_s": 1.0, "rate_limit_burst": 1})
    with TestClient(create_app(limited, clock=clock)) as client:
        observer = world.headers("observer", "thika")
        answers = [client.get(f"{API}/incidents", headers=observer) for _ in range(3)]
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["params"] == {"rate": 1.0}


def test_every_code_is_snake_case_and_the_tree_walk_finds_the_ones_in_use() -> None:
    codes = edge.error_codes()
    assert len(codes) == len(set(codes))
    assert all(c.replace("_", "").isalpha() and c == c.lower() for c in codes)
    for cls in (de.NotEnoughRemaining, de.RequestNotOpen, de.RoleRefused, de.ConcurrentChange):
        assert cls.code in codes
    assert {"invalid_input", "database_busy", "redis_unavailable", "rate_limited"} <= set(codes)
