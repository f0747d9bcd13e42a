"""Notes: the thread of a request and of a claim. Written by the requesting city and the
cities working on it, read by whoever sees the incident, each note an event; bounded,
paged and refused cleanly when it is not text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import World

API = "/api/v1"


@pytest.fixture
def seeded(client: TestClient, world: World) -> dict[str, Any]:
    """A Nairobi flood asking for 4 pumps (Thika in ring 0, Machakos in ring 1), one claim
    by Thika."""
    manager = world.headers("manager", "nairobi")
    incident = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=manager
    ).json()
    request = client.post(
        f"{API}/incidents/{incident['id']}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4},
        headers=manager,
    ).json()
    claim = client.post(
        f"{API}/requests/{request['id']}/claims",
        json={"quantity": 1},
        headers={**world.headers("responder", "thika"), "Idempotency-Key": "n-1"},
    ).json()
    return {"incident": incident, "request": request, "claim": claim}


def _note(client: TestClient, world: World, path: str, body: Any, who: tuple[str, str]) -> Any:
    return client.post(f"{API}{path}/notes", json=body, headers=world.headers(*who))


def test_a_note_on_a_request_is_stored_listed_and_recorded_as_an_event(
    client: TestClient, world: World, seeded: dict[str, Any]
) -> None:
    request, claim = seeded["request"], seeded["claim"]
    path = f"/requests/{request['id']}"
    r = _note(client, world, path, {"body": "Pumps need 3-phase power"}, ("manager", "nairobi"))
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["body"], first["city_id"], first["claim_id"], first["author_role"]) == (
        "Pumps need 3-phase power",
        world.city_ids["nairobi"],
        None,
        "manager",
    )
    r = _note(
        client,
        world,
        f"/claims/{claim['id']}",
        {"body": "Our generator comes along"},
        ("responder", "thika"),
    )
    assert r.status_code == 201, r.text
    # The request's thread holds its claims' notes too, oldest first; the claim's only its own.
    thread = client.get(f"{API}{path}/notes", headers=world.headers("observer", "thika")).json()
    assert [n["body"] for n in thread["data"]] == [
        "Pumps need 3-phase power",
        "Our generator comes along",
    ]
    assert thread["data"][1]["claim_id"] == claim["id"] and thread["count"] == 2
    own = client.get(
        f"{API}/claims/{claim['id']}/notes", headers=world.headers("manager", "nairobi")
    ).json()
    assert [n["body"] for n in own["data"]] == ["Our generator comes along"]
    events = client.get(
        f"{API}/incidents/{seeded['incident']['id']}/events",
        headers=world.headers("manager", "nairobi"),
    ).json()["data"]
    added = [e for e in events if e["type"] == "note.added"]
    assert [e["data"]["note"]["body"] for e in added] == [
        "Pumps need 3-phase power",
        "Our generator comes along",
    ]
    assert added[0]["actor_city_id"] == world.city_ids["nairobi"]
    assert world.city_ids["thika"] in added[0]["audience"]["cities"]


def test_notes_are_paged(client: TestClient, world: World, seeded: dict[str, Any]) -> None:
    path = f"/requests/{seeded['request']['id']}"
    for i in range(5):
        assert _note(client, world, path, {"body": f"n{i}"}, ("responder", "thika")).is_success
    page = client.get(
        f"{API}{path}/notes", params={"limit": 2, "offset": 2}, headers=world.headers("admin")
    ).json()
    assert ([n["body"] for n in page["data"]], page["count"], page["next_offset"]) == (
        ["n2", "n3"],
        5,
        4,
    )
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "2a"}):
        r = client.get(f"{API}{path}/notes", params=bad, headers=world.headers("admin"))
        assert r.status_code == 422, (bad, r.text)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (("manager", "nairobi"), 201),
        (("responder", "nairobi"), 201),
        (("responder", "thika"), 201),  # targeted and claiming
        (("manager", "thika"), 201),
        (("observer", "nairobi"), 403),
        (("admin", None), 403),
        (("responder", "machakos"), 403),  # sees the incident, not yet reached
        (("responder", "berlin"), 404),  # cannot see the incident at all
    ],
)
def test_who_may_write_on_a_request(
    client: TestClient,
    world: World,
    seeded: dict[str, Any],
    who: tuple[str, str | None],
    expected: int,
) -> None:
    path = f"/requests/{seeded['request']['id']}/notes"
    headers = world.headers(*who) if who[1] else world.headers(who[0])
    r = client.post(f"{API}{path}", json={"body": "hello"}, headers=headers)
    assert r.status_code == expected, r.text
    count = client.get(f"{API}{path}", headers=world.headers("admin")).json()["count"]
    assert count == (1 if expected == 201 else 0)


def test_a_claims_thread_is_for_the_requesting_and_the_claiming_city(
    client: TestClient, world: World, seeded: dict[str, Any]
) -> None:
    path = f"/claims/{seeded['claim']['id']}"
    assert _note(client, world, path, {"body": "a"}, ("manager", "nairobi")).status_code == 201
    assert _note(client, world, path, {"body": "b"}, ("responder", "thika")).status_code == 201
    assert _note(client, world, path, {"body": "c"}, ("responder", "machakos")).status_code == 403
    assert _note(client, world, path, {"body": "d"}, ("observer", "thika")).status_code == 403
    assert _note(client, world, path, {"body": "e"}, ("manager", "berlin")).status_code == 404
    r = client.get(f"{API}{path}/notes", headers=world.headers("manager", "berlin"))
    assert r.status_code == 404


@pytest.mark.parametrize(
    "raw",
    [
        b'{"body": ""}',
        b'{"body": "   "}',
        b'{"body": "a\\u0000b"}',
        b'{"body": "\\ud800"}',
        b'{"body": 7}',
        b'{"body": null}',
        b"{}",
        b'{"body": "x", "city_id": 3}',
        b'{"body": "x", "claim_id": 1}',
        json.dumps({"body": "x" * 2001}).encode(),
    ],
)
def test_a_note_that_is_not_bounded_text_is_422_and_stores_nothing(
    client: TestClient, world: World, seeded: dict[str, Any], raw: bytes
) -> None:
    path = f"{API}/requests/{seeded['request']['id']}/notes"
    r = client.post(
        path,
        content=raw,
        headers={**world.headers("manager", "nairobi"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert client.get(path, headers=world.headers("admin")).json()["count"] == 0


def test_a_note_at_its_limit_is_kept_whole(
    client: TestClient, world: World, seeded: dict[str, Any]
) -> None:
    path = f"/requests/{seeded['request']['id']}"
    r = _note(client, world, path, {"body": "é" * 2000}, ("manager", "nairobi"))
    assert r.status_code == 201 and r.json()["body"] == "é" * 2000


def test_a_closed_incident_takes_no_new_notes_but_keeps_its_thread(
    client: TestClient, world: World, seeded: dict[str, Any]
) -> None:
    path = f"/requests/{seeded['request']['id']}"
    assert _note(client, world, path, {"body": "before"}, ("manager", "nairobi")).is_success
    client.post(
        f"{API}/incidents/{seeded['incident']['id']}/close",
        headers=world.headers("manager", "nairobi"),
    )
    r = _note(client, world, path, {"body": "after"}, ("manager", "nairobi"))
    assert r.status_code == 409, r.text
    thread = client.get(f"{API}{path}/notes", headers=world.headers("admin")).json()
    assert [n["body"] for n in thread["data"]] == ["before"]


def test_notes_on_a_missing_request_or_claim_are_404(client: TestClient, world: World) -> None:
    for path in ("/requests/999999/notes", "/claims/999999/notes"):
        r = client.post(
            f"{API}{path}", json={"body": "x"}, headers=world.headers("manager", "nairobi")
        )
        assert r.status_code == 404, r.text
        assert client.get(f"{API}{path}", headers=world.headers("admin")).status_code == 404


def _keyed_note(
    client: TestClient, world: World, path: str, text: str, key: str, who: tuple[str, str]
) -> Any:
    headers = {**world.headers(*who), "Idempotency-Key": key}
    return client.post(f"{API}{path}/notes", json={"body": text}, headers=headers)


def _note_events(client: TestClient, world: World, incident_id: int) -> list[str]:
    events = client.get(
        f"{API}/incidents/{incident_id}/events", headers=world.headers("manager", "nairobi")
    ).json()["data"]
    return [e["data"]["note"]["body"] for e in events if e["type"] == "note.added"]


@pytest.mark.parametrize("on", ["request", "claim"])
def test_a_note_sent_again_with_its_idempotency_key_is_added_once(
    client: TestClient, world: World, seeded: dict[str, Any], on: str
) -> None:
    path = f"/{on}s/{seeded[on]['id']}"
    who = ("responder", "thika")
    first = _keyed_note(client, world, path, "Convoy leaves at six", "note-six", who)
    again = _keyed_note(client, world, path, "Convoy leaves at six", "note-six", who)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    # A note without a key is a new note each time, as before.
    for _ in range(2):
        assert _note(client, world, path, {"body": "Convoy leaves at six"}, who).status_code == 201
    assert _note_events(client, world, seeded["incident"]["id"]) == ["Convoy leaves at six"] * 3


def test_a_note_key_used_again_for_another_note_is_refused(
    client: TestClient, world: World, seeded: dict[str, Any]
) -> None:
    request, claim = seeded["request"], seeded["claim"]
    who = ("responder", "thika")
    path = f"/requests/{request['id']}"
    assert _keyed_note(client, world, path, "Two trucks", "note-k", who).status_code == 201
    other_text = _keyed_note(client, world, path, "Three trucks", "note-k", who)
    other_thread = _keyed_note(client, world, f"/claims/{claim['id']}", "Two trucks", "note-k", who)
    assert (other_text.status_code, other_thread.status_code) == (409, 409)
    assert "different note" in other_text.json()["detail"]
    # Keys are each city's own: another city may use the same one.
    nairobi = _keyed_note(client, world, path, "Thanks", "note-k", ("manager", "nairobi"))
    assert nairobi.status_code == 201, nairobi.text
    assert _note_events(client, world, seeded["incident"]["id"]) == ["Two trucks", "Thanks"]
