"""A manager edits a request as the situation develops (quantity, priority, needed-by,
report-to): one `request.updated` event per edit that changes something, written with the
change, never taking the quantity below what is claimed, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.commands.context import CommandContext
from service.commands.request_updates import update_request
from service.domain.actors import Actor, Role
from service.domain.errors import BelowClaimed, Conflict, IllegalTransition, Invalid
from service.domain.lifecycles import RequestStatus
from service.domain.request_updates import request_changes, status_after_edit
from service.models import AidRequestUpdate
from service.persistence.tables import AidRequest
from service.web.vocabulary import vocabulary
from service.webhooks.models import WebhookCreate
from tests.interop.test_edxl_rm import _find, _messages
from tests.support import FakeClock, World

API = "/api/v1"


def _raise(client: TestClient, world: World, quantity: int = 4, **extra: object) -> dict[str, Any]:
    manager = world.headers("manager", "nairobi")
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "Flood"}, headers=manager
    )
    assert r.status_code == 201, r.text
    body = {"resource": "high-capacity-pump", "quantity": quantity, **extra}
    r = client.post(f"{API}/incidents/{r.json()['id']}/requests", json=body, headers=manager)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def _claim(client: TestClient, world: World, request_id: int, quantity: int, key: str) -> Any:
    headers = {**world.headers("responder", "thika"), "Idempotency-Key": key}
    r = client.post(
        f"{API}/requests/{request_id}/claims", json={"quantity": quantity}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def _patch(
    client: TestClient,
    world: World,
    request_id: int,
    body: dict[str, Any],
    role: str = "manager",
    city: str | None = "nairobi",
) -> Any:
    return client.patch(
        f"{API}/requests/{request_id}", json=body, headers=world.headers(role, city)
    )


def _events(client: TestClient, world: World, incident_id: int) -> list[dict[str, Any]]:
    r = client.get(f"{API}/incidents/{incident_id}/events", headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["data"]
    return events


def test_an_edit_is_one_event_listing_each_change_old_and_new(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    request = _raise(client, world, report_to="Gate 2")
    needed_by = (clock.now + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S+03:00")

    r = _patch(
        client,
        world,
        request["id"],
        {
            "quantity": 6,
            "priority": "critical",
            "needed_by": needed_by,
            "report_to": "Gate 2",
        },
    )

    assert r.status_code == 200, r.text
    assert (r.json()["quantity"], r.json()["priority"], r.json()["remaining_quantity"]) == (
        6,
        "critical",
        6,
    )
    events = _events(client, world, request["incident_id"])
    assert [e["type"] for e in events][-1] == "request.updated"
    updated = events[-1]
    # report_to was given as it is: not a change, so not listed.
    assert list(updated["data"]["changes"]) == ["quantity", "priority", "needed_by"]
    assert updated["data"]["changes"]["quantity"] == {"old": 4, "new": 6}
    assert updated["data"]["changes"]["priority"] == {"old": "normal", "new": "critical"}
    assert updated["data"]["changes"]["needed_by"]["old"] is None
    assert updated["data"]["changes"]["needed_by"]["new"].endswith("Z")
    assert updated["data"]["request"]["quantity"] == 6
    assert world.city_ids["thika"] in updated["audience"]["cities"]


def test_the_quantity_never_goes_below_what_is_claimed(client: TestClient, world: World) -> None:
    request = _raise(client, world, quantity=5)
    _claim(client, world, request["id"], 3, "three")

    below = _patch(client, world, request["id"], {"quantity": 2})
    assert below.status_code == 409, below.text
    assert below.json()["detail"] == (
        "the quantity cannot go below what is already claimed: 3 units are claimed, 2 asked"
    )
    assert len(_events(client, world, request["incident_id"])) == 3  # declared, raised, claim

    exact = _patch(client, world, request["id"], {"quantity": 3})
    assert exact.status_code == 200, exact.text
    assert (exact.json()["status"], exact.json()["remaining_quantity"]) == ("claimed", 0)
    wider = _patch(client, world, request["id"], {"quantity": 8})
    assert (wider.json()["status"], wider.json()["remaining_quantity"]) == (
        "partially_claimed",
        5,
    )


def test_a_quantity_brought_down_to_what_was_delivered_fulfils_the_request(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world, quantity=4)
    claim = _claim(client, world, request["id"], 2, "two")
    for status, role, city in [
        ("accepted", "manager", "nairobi"),
        ("en_route", "responder", "thika"),
        ("on_site", "responder", "thika"),
    ]:
        r = client.post(
            f"{API}/claims/{claim['id']}/status",
            json={"status": status},
            headers=world.headers(role, city),
        )
        assert r.status_code == 200, r.text

    r = _patch(client, world, request["id"], {"quantity": 2})

    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["next_escalation_at"]) == ("fulfilled", None)
    events = _events(client, world, request["incident_id"])
    assert [e["type"] for e in events][-2:] == ["request.updated", "request.fulfilled"]
    assert _patch(client, world, request["id"], {"quantity": 3}).status_code == 409


def test_an_edit_that_changes_nothing_is_200_and_records_no_event(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world)
    r = _patch(client, world, request["id"], {"quantity": 4, "priority": "normal"})
    assert r.status_code == 200, r.text
    assert [e["type"] for e in _events(client, world, request["incident_id"])] == [
        "incident.declared",
        "request.raised",
    ]


def test_a_needed_by_in_the_past_is_422_and_a_final_request_refuses_with_409(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    request = _raise(client, world)
    past = (clock.now - timedelta(minutes=1)).isoformat()
    r = _patch(client, world, request["id"], {"needed_by": past})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "needed_by must be in the future"

    cancel = client.post(
        f"{API}/requests/{request['id']}/cancel", headers=world.headers("manager", "nairobi")
    )
    assert cancel.status_code == 200, cancel.text
    r = _patch(client, world, request["id"], {"quantity": 9})
    assert r.status_code == 409, r.text
    assert "final" in r.json()["detail"]


def test_the_admin_may_edit_a_peer_gets_403_and_a_city_that_cannot_see_it_the_missing_404(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world)

    peer = _patch(client, world, request["id"], {"priority": "low"}, "manager", "thika")
    hidden = _patch(client, world, request["id"], {"priority": "low"}, "manager", "berlin")
    missing = _patch(client, world, 2_147_480_000, {"priority": "low"}, "manager", "berlin")
    responder = _patch(client, world, request["id"], {"priority": "low"}, "responder", "nairobi")
    admin = _patch(client, world, request["id"], {"priority": "high"}, "admin", None)

    assert peer.status_code == 403, peer.text
    assert "requesting city's manager" in peer.json()["detail"]
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == f"request {request['id']} not found"
    assert missing.json()["detail"] == "request 2147480000 not found"
    assert responder.status_code == 403
    assert admin.status_code == 200, admin.text
    assert _events(client, world, request["incident_id"])[-1]["actor_role"] == "admin"


def test_the_change_and_its_event_are_written_in_one_transaction(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world)
    manager = Actor(Role.MANAGER, world.city_ids["nairobi"])

    def update_then_fail(ctx: CommandContext, request_id: int, body: AidRequestUpdate) -> None:
        update_request(ctx, request_id, body)
        assert ctx.events and ctx.events[-1].type == "request.updated"
        raise Conflict("something later in the same transaction failed")

    with pytest.raises(Conflict):
        world.executor.run_sync(
            manager, update_then_fail, request["id"], AidRequestUpdate(quantity=9)
        )
    with world.executor.db.read() as session:
        row = session.get(AidRequest, request["id"])
        assert row is not None and row.quantity == 4
    assert len(_events(client, world, request["incident_id"])) == 2


def test_edxl_rm_carries_the_edit_as_a_request_that_points_back_at_the_last(
    client: TestClient, world: World
) -> None:
    request = _raise(client, world)
    _patch(client, world, request["id"], {"quantity": 7, "report_to": "Kibera depot"})

    raised, edited = _messages(client, world, request["incident_id"])[-2:]
    assert edited.message_type == "RequestResource"
    assert _find(edited, "MessageDescription") == (
        "Updated: quantity 4 → 7, report_to  → Kibera depot"
    )
    assert _find(edited, "PrecedingMessageID") == _find(raised, "MessageID")
    assert _find(edited, "MeasuredQuantity", "Amount") == "7"


# The rule itself, over plain values --------------------------------------------------------

NOW = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)
CURRENT = {"quantity": 4, "priority": "normal", "needed_by": None, "report_to": ""}


def test_the_rule_lists_each_changed_field_in_a_fixed_order() -> None:
    changes = request_changes(
        RequestStatus.OPEN,
        CURRENT,
        {"report_to": "Gate 2", "quantity": 5},
        claimed_quantity=0,
        now=NOW,
    )
    assert [(name, c.old, c.new) for name, c in changes.items()] == [
        ("quantity", 4, 5),
        ("report_to", "", "Gate 2"),
    ]


def test_the_rule_refuses_a_final_request_fewer_than_claimed_a_past_time_and_unknown_fields() -> (
    None
):
    def asked(status: RequestStatus, fields: dict[str, object], claimed: int = 0) -> None:
        request_changes(status, CURRENT, fields, claimed_quantity=claimed, now=NOW)

    with pytest.raises(IllegalTransition, match="final"):
        asked(RequestStatus.FULFILLED, {})
    with pytest.raises(BelowClaimed, match="1 unit is claimed, 0 asked"):
        asked(RequestStatus.CLAIMED, {"quantity": 0}, claimed=1)
    with pytest.raises(Invalid, match="future"):
        asked(RequestStatus.OPEN, {"needed_by": NOW})
    with pytest.raises(Invalid, match="cannot change resource"):
        asked(RequestStatus.OPEN, {"resource": "cots"})
    asked(RequestStatus.OPEN, {"quantity": 4}, claimed=4)


def test_an_edit_moves_the_status_only_by_steps_the_lifecycle_allows() -> None:
    # Brought down to what was delivered: fulfilled, by way of claimed in full.
    assert status_after_edit(RequestStatus.PARTIALLY_CLAIMED, 2, 2, 2) is RequestStatus.FULFILLED
    assert status_after_edit(RequestStatus.CLAIMED, 6, 4, 0) is RequestStatus.PARTIALLY_CLAIMED
    assert status_after_edit(RequestStatus.OPEN, 9, 0, 0) is RequestStatus.OPEN
    assert status_after_edit(RequestStatus.PARTIALLY_CLAIMED, 3, 3, 1) is RequestStatus.CLAIMED


def test_webhooks_and_the_pages_know_the_new_event_type() -> None:
    assert "request.updated" in vocabulary()["event_types"]
    chosen = WebhookCreate.model_validate(
        {"url": "https://eoc.example/hook", "event_types": ["request.updated"]}
    )
    assert [str(t) for t in chosen.event_types] == ["request.updated"]
