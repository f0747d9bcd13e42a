"""Bad input (RELIABILITY S3 and the bad-input list): a 4xx with a JSON `detail`, never a 500,
and nothing stored.

Raw bytes are sent where a JSON encoder would refuse or rewrite the input (NaN, lone
surrogates, broken documents), so the service sees exactly what a hostile client sends.
Each test walks a table of inputs and reports every one that was answered wrongly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import playbooks
from service.models import MAX_ID
from tests.support import World

API = "/api/v1"
JSON = {"content-type": "application/json"}
CLOCK_NOW = "2026-02-12T08:00:00Z"  # the FakeClock's start
STOCK_PLAYBOOKS = Path(playbooks.__file__).parent / "stock"


@dataclass(frozen=True)
class Seeded:
    incident_id: int
    request_id: int
    claim_id: int
    city_id: int
    package_id: int
    offer_id: int = 0


@pytest.fixture
def incident(client: TestClient, world: World) -> int:
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "Nairobi River flood"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
def aid_request(client: TestClient, world: World, incident: int) -> int:
    r = client.post(
        f"{API}/incidents/{incident}/requests",
        json={"resource": "high-capacity-pump", "quantity": 4},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
def claim(client: TestClient, world: World, aid_request: int) -> int:
    r = client.post(
        f"{API}/requests/{aid_request}/claims",
        json={"quantity": 1},
        headers={**world.headers("responder", "thika"), "Idempotency-Key": "seed"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# The routes that take a body, each with a valid body and a caller allowed to send it.


@dataclass(frozen=True)
class BodyRoute:
    name: str
    method: str
    path: str
    valid: dict[str, Any]
    caller: tuple[str, str | None]
    idempotency_key: bool = False


BODY_ROUTES = [
    BodyRoute(
        "network", "POST", "/networks", {"slug": "relief", "name": "Relief"}, ("admin", None)
    ),
    BodyRoute(
        "city",
        "POST",
        "/cities",
        {
            "slug": "kitui",
            "name": "Kitui",
            "country": "KE",
            "lat": -1.37,
            "lon": 38.01,
            "time_zone": "Africa/Nairobi",
        },
        ("admin", None),
    ),
    BodyRoute("token", "POST", "/tokens", {"role": "admin"}, ("admin", None)),
    # Before the incident's other POST routes: `_id_routes` keys bodies by path prefix.
    BodyRoute(
        "offer",
        "POST",
        "/incidents/{incident_id}/offers",
        {"resource": "high-capacity-pump", "quantity": 2, "ready_at": "2026-02-12T14:00:00+03:00"},
        ("responder", "thika"),
        idempotency_key=True,
    ),
    BodyRoute(
        "offer status",
        "POST",
        "/offers/{offer_id}/status",
        {"status": "withdrawn"},
        ("responder", "thika"),
    ),
    BodyRoute(
        "incident",
        "POST",
        "/incidents",
        {"incident_type": "flood", "title": "Flood"},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "incident update",
        "PATCH",
        "/incidents/{incident_id}",
        {"severity": "extreme"},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "sitrep",
        "POST",
        "/incidents/{incident_id}/sitreps",
        {"period_from": "2026-02-12T07:00:00Z"},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "request",
        "POST",
        "/incidents/{incident_id}/requests",
        {"resource": "high-capacity-pump", "quantity": 1},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "request update",
        "PATCH",
        "/requests/{request_id}",
        {"quantity": 5, "priority": "high"},
        ("manager", "nairobi"),
    ),
    # Before the claim routes: `_id_routes` keys bodies by path prefix, the last one winning.
    BodyRoute(
        "request note",
        "POST",
        "/requests/{request_id}/notes",
        {"body": "Pumps need 3-phase power"},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "claim note",
        "POST",
        "/claims/{claim_id}/notes",
        {"body": "Generator comes along"},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "claim",
        "POST",
        "/requests/{request_id}/claims",
        {"quantity": 1},
        ("responder", "thika"),
        idempotency_key=True,
    ),
    BodyRoute(
        "pass",
        "POST",
        "/requests/{request_id}/passes",
        {"reason": "Our pumps are deployed at home"},
        ("responder", "thika"),
    ),
    BodyRoute(
        "claim status",
        "POST",
        "/claims/{claim_id}/status",
        {"status": "withdrawn"},
        ("responder", "thika"),
    ),
    BodyRoute(
        "incident dry run",
        "POST",
        "/incidents/dry-run",
        {"incident_type": "flood", "title": "Flood", "playbook": "flood"},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "publish version",
        "POST",
        "/cities/{city_id}/library/flood",
        {"change_note": "Two more pumps"},
        ("manager", "thika"),
    ),
    BodyRoute(
        "observatory opt-in",
        "PUT",
        "/cities/{city_id}/observatory",
        {"opted_in": True},
        ("admin", None),
    ),
    BodyRoute(
        "managers need a second factor",
        "PUT",
        "/cities/{city_id}/managers-need-totp",
        {"required": True},
        ("admin", None),
    ),
    BodyRoute(
        "sign-in provider",
        "PUT",
        "/cities/{city_id}/sign-in-provider",
        {
            "label": "Thika EMS",
            "issuer": "https://idp.thika.example",
            "client_id": "aidmesh",
            "client_secret": "a-client-secret",
            "rules": [{"claim": "groups", "value": "dispatch", "roles": ["responder"]}],
        },
        ("admin", None),
    ),
    BodyRoute(
        "package",
        "POST",
        "/cities/{city_id}/roster",
        {
            "name": "Pump team",
            "items": [{"resource": "high-capacity-pump", "quantity": 4}],
            "readiness_hours": 4,
            "self_sufficiency_days": 3,
        },
        ("manager", "thika"),
    ),
    BodyRoute(
        "package update",
        "PATCH",
        "/cities/{city_id}/roster/{package_id}",
        {"cap_percent": 50, "readiness_hours": 2},
        ("manager", "thika"),
    ),
    BodyRoute(
        "person",
        "POST",
        "/people",
        {"email": "invited@nairobi.example", "display_name": "Invited", "roles": ["observer"]},
        ("manager", "nairobi"),
    ),
    BodyRoute(
        "city playbook",
        "PUT",
        "/cities/{city_id}/playbooks/wildfire",
        {"source": (STOCK_PLAYBOOKS / "wildfire.yaml").read_text(encoding="utf-8")},
        ("admin", None),
    ),
]
ROUTES = {r.name: r for r in BODY_ROUTES}


@dataclass
class Api:
    """The app with its seeded objects, and every answer to bad input that was wrong."""

    client: TestClient
    world: World
    seeded: Seeded
    problems: list[str] = field(default_factory=list)
    sent: int = 0

    def send(self, route: BodyRoute, raw: bytes, key: str = "bad-input") -> Response:
        headers = {**self.world.headers(*route.caller), **JSON}
        if route.idempotency_key:
            headers["Idempotency-Key"] = f"{key}-{self.sent}"
        self.sent += 1
        url = API + route.path.format(**vars(self.seeded))
        return self.client.request(route.method, url, content=raw, headers=headers)

    def send_with(self, route: BodyRoute, name: str, raw_value: bytes) -> Response:
        """The route's valid body with `name` set to `raw_value`, spliced in as raw JSON."""
        body = json.dumps({**route.valid, name: "\x1f"}).encode()
        return self.send(route, body.replace(b'"\\u001f"', raw_value))

    def refused(
        self, what: str, r: Response, *statuses: int, loc: list[str | int] | None = None
    ) -> None:
        """Record a problem unless `r` is a 4xx in `statuses` (any 4xx if none) with a
        JSON `detail`, naming `loc` among its issues when given."""
        wanted = statuses or tuple(range(400, 500))
        if r.status_code not in wanted:
            self.problems.append(f"{what}: {r.status_code} {r.text[:200]}")
            return
        if not r.headers.get("content-type", "").startswith("application/json"):
            self.problems.append(f"{what}: {r.status_code} not JSON: {r.text[:200]}")
            return
        detail = r.json().get("detail")
        if not detail:
            self.problems.append(f"{what}: {r.status_code} without detail: {r.text[:200]}")
        elif loc is not None and loc not in [i.get("loc") for i in detail if isinstance(i, dict)]:
            self.problems.append(f"{what}: {r.status_code} does not name {loc}: {r.text[:200]}")

    def state(self) -> dict[str, Any]:
        """What the API shows of everything a body could create or change, as the admin sees it."""
        admin = self.world.headers("admin")

        def get(path: str) -> Any:
            r = self.client.get(f"{API}{path}", headers=admin, params={"limit": 500})
            assert r.status_code == 200, r.text
            return r.json()

        incidents = get("/incidents")["data"]
        return {
            "networks": get("/networks"),
            "cities": get("/cities"),
            "tokens": get("/tokens"),
            "incidents": [get(f"/incidents/{i['id']}") for i in incidents],
            "events": [get(f"/incidents/{i['id']}/events") for i in incidents],
            "playbooks": self._playbooks(),
            "library": get("/library"),
            "roster": get(f"/cities/{self.seeded.city_id}/roster"),
            "offers": [get(f"/incidents/{i['id']}/offers") for i in incidents],
            "people": get("/people"),
            "sign-in provider": self._provider(),
        }

    def _provider(self) -> Any:
        path = f"{API}/cities/{self.seeded.city_id}/sign-in-provider"
        r = self.client.get(path, headers=self.world.headers("admin"))
        return r.json() if r.status_code == 200 else r.status_code

    def _playbooks(self) -> Any:
        # What the seeded city would declare from: its own playbooks replace stock ones.
        r = self.client.get(f"{API}/playbooks", headers=self.world.headers("observer", "thika"))
        return r.json() if r.status_code == 200 else r.status_code


@pytest.fixture
def api(client: TestClient, world: World, incident: int, aid_request: int, claim: int) -> Api:
    thika = world.city_ids["thika"]
    r = client.post(
        f"{API}/cities/{thika}/roster",
        json=ROUTES["package"].valid,
        headers=world.headers("manager", "thika"),
    )
    assert r.status_code == 201, r.text
    package_id = int(r.json()["id"])
    r = client.post(
        f"{API}/incidents/{incident}/offers",
        json=ROUTES["offer"].valid,
        headers={**world.headers("responder", "thika"), "Idempotency-Key": "seed"},
    )
    assert r.status_code == 201, r.text
    seeded = Seeded(incident, aid_request, claim, thika, package_id, int(r.json()["id"]))
    api = Api(client, world, seeded)
    r = client.put(  # Thika's own flood playbook, for it to publish
        f"{API}/cities/{world.city_ids['thika']}/playbooks/flood",
        json={"source": (STOCK_PLAYBOOKS / "flood.yaml").read_text(encoding="utf-8")},
        headers=world.headers("admin"),
    )
    assert r.status_code == 200, r.text
    for caller in [
        ("admin", None),
        ("observer", "thika"),
        ("manager", "nairobi"),
        ("manager", "thika"),
        ("responder", "machakos"),
    ]:
        # Mint up front: a new token is a change too, and so is its first use (its last
        # use is recorded once a minute, and the fake clock stands still).
        r = client.get(f"{API}/me", headers=world.headers(*caller))
        assert r.status_code == 200, r.text
    return api


def test_the_valid_bodies_are_accepted(api: Api) -> None:
    # The control for every test below: only the part each test breaks is wrong.
    for route in BODY_ROUTES:
        r = api.send(route, json.dumps(route.valid).encode())
        assert 200 <= r.status_code < 300, (route.name, r.text)


MALFORMED = [
    b"{",
    b'{"quantity": 1',
    b'{"quantity": 1,}',
    b"{'quantity': 1}",
    b'{"quantity": 01}',
    b'{"quantity": 1} trailing',
    b"nul",
    b'{"quantity": 1, "note": "unterminated}',
]


def test_malformed_json_is_400_and_stores_nothing(api: Api) -> None:
    before = api.state()
    for route in BODY_ROUTES:
        for raw in MALFORMED:
            api.refused(f"{route.name} {raw[:30]!r}", api.send(route, raw), 400)
        api.refused(f"{route.name} without a body", api.send(route, b""), 422)
    assert api.problems == []
    assert api.state() == before


def test_broken_encodings_and_deep_nesting_are_4xx_and_store_nothing(api: Api) -> None:
    before = api.state()
    for route in BODY_ROUTES:
        for what, raw in [
            ("not UTF-8", b'{"note": "\xff\xfe"}'),
            ("an encoded surrogate", b'{"note": "\xed\xa0\x80"}'),
            ("deep arrays", b"[" * 100_000 + b"]" * 100_000),
            ("deep objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
            ("a 5000-digit number", b'{"quantity": ' + b"9" * 5_000 + b"}"),
        ]:
            api.refused(f"{route.name}: {what}", api.send(route, raw))
    assert api.problems == []
    assert api.state() == before


def test_an_array_or_scalar_instead_of_an_object_is_422(api: Api) -> None:
    before = api.state()
    for route in BODY_ROUTES:
        document = json.dumps(route.valid).encode()
        for raw in [b"[" + document + b"]", b"[]", b'"text"', b"1", b"true", b"null", b'"\\ud800"']:
            api.refused(f"{route.name} {raw[:30]!r}", api.send(route, raw), 422)
    assert api.problems == []
    assert api.state() == before


def test_unknown_fields_are_422_naming_the_field(api: Api) -> None:
    before = api.state()
    for route in BODY_ROUTES:
        r = api.send_with(route, "colour", b'"red"')
        api.refused(route.name, r, 422, loc=["body", "colour"])
    assert api.problems == []
    assert api.state() == before


# Mass assignment (S3): fields the server owns, in every body that creates or moves something.
INTERNAL_FIELDS: dict[str, bytes] = {
    "claimed_quantity": b"4",
    "status": b'"claimed"',
    "city_id": b"6",  # Berlin's id in the seeded world
    "ring": b"2",
    "id": b"1",
    "delivered_quantity": b"4",
    "incident_id": b"1",
    "request_id": b"1",
    "last_seq": b"0",
    "created_at": b'"2026-02-12T08:00:00Z"',
}


def test_internal_fields_in_a_body_are_422_and_nothing_is_stored(api: Api) -> None:
    before = api.state()
    tried = 0
    for name in ("incident", "incident update", "request", "claim", "claim status", "pass"):
        route = ROUTES[name]
        for field_name, value in INTERNAL_FIELDS.items():
            if field_name in route.valid:  # `status` is what a claim status change sets
                continue
            r = api.send_with(route, field_name, value)
            api.refused(f"{name} with {field_name}", r, 422, loc=["body", field_name])
            tried += 1
    assert api.problems == []
    assert api.state() == before
    assert tried == 59


# What an offer's row holds that only its moves set, beyond the fields every row owns.
OFFER_INTERNAL_FIELDS: dict[str, bytes] = {
    "id": b"1",
    "city_id": b"6",
    "incident_id": b"1",
    "claim_id": b"1",
    "counter_quantity": b"1",
    "counter_ready_at": b'"2026-02-12T08:00:00Z"',
    "end_reason": b'"x"',
    "idempotency_key": b'"k"',
    "created_at": b'"2026-02-12T08:00:00Z"',
    "updated_at": b'"2026-02-12T08:00:00Z"',
}


def test_internal_fields_in_an_offer_body_are_422_and_nothing_is_stored(api: Api) -> None:
    before = api.state()
    tried = 0
    for name in ("offer", "offer status"):
        route = ROUTES[name]
        fields = {**OFFER_INTERNAL_FIELDS, "status": b'"accepted"'}
        for field_name, value in fields.items():
            if field_name in route.valid:  # `status` is what an offer's move sets
                continue
            r = api.send_with(route, field_name, value)
            api.refused(f"{name} with {field_name}", r, 422, loc=["body", field_name])
            tried += 1
    assert api.problems == []
    assert api.state() == before
    assert tried == 21


def test_bad_offers_and_moves_are_4xx_with_a_useful_detail_and_store_nothing(api: Api) -> None:
    before = api.state()
    offer, move = ROUTES["offer"], ROUTES["offer status"]
    for what, body, status in [
        ("a zero quantity", {**offer.valid, "quantity": 0}, 422),
        ("a quantity as text", {**offer.valid, "quantity": "2"}, 422),
        ("a time without a zone", {**offer.valid, "ready_at": "2026-02-12T14:00:00"}, 422),
        ("a date alone", {**offer.valid, "ready_at": "2026-02-12"}, 422),
        ("an expiry in the past", {**offer.valid, "expires_at": "2026-02-12T07:00:00Z"}, 422),
        ("an expiry too far", {**offer.valid, "expires_at": "2026-04-12T07:00:00Z"}, 422),
        ("an unknown resource", {**offer.valid, "resource": "pumps"}, 422),
        (
            "a request of another resource",
            {**offer.valid, "resource": "generator-100kw", "request_id": api.seeded.request_id},
            422,
        ),
        ("a missing request", {**offer.valid, "request_id": 999_999}, 422),
        (
            "a package without the resource",
            {**offer.valid, "resource": "generator-100kw", "package_id": api.seeded.package_id},
            422,
        ),
    ]:
        r = api.send(offer, json.dumps(body).encode())
        api.refused(f"offer with {what}", r, status)
    for what, body, status in [
        ("an unknown status", {"status": "expired"}, 422),
        ("a reason with a counter", {"status": "countered", "reason": "x", "quantity": 1}, 422),
        ("a blank reason", {"status": "withdrawn", "reason": ""}, 422),
        ("a request_id from the offering city", {"status": "withdrawn", "request_id": 1}, 422),
        ("a counter from the offering city", {"status": "countered", "quantity": 1}, 403),
    ]:
        r = api.send(move, json.dumps(body).encode())
        api.refused(f"offer move with {what}", r, status)
    assert api.problems == []
    assert api.state() == before


# What a roster's rows hold that only claims change, beyond the fields every row owns.
PACKAGE_INTERNAL_FIELDS: dict[str, bytes] = {
    **INTERNAL_FIELDS,
    "committed_quantity": b"0",
    "cap_quantity": b"4",
    "remaining_quantity": b"4",
    "available_now": b"true",
    "package_id": b"1",
}


def test_internal_fields_in_a_roster_body_are_422_and_nothing_is_stored(api: Api) -> None:
    before = api.state()
    tried = 0
    for name in ("package", "package update"):
        for field_name, value in PACKAGE_INTERNAL_FIELDS.items():
            r = api.send_with(ROUTES[name], field_name, value)
            api.refused(f"{name} with {field_name}", r, 422, loc=["body", field_name])
            tried += 1
        # Nor inside a package's resources.
        for field_name in ("committed_quantity", "cap_quantity", "package_id", "id"):
            item = {"resource": "high-capacity-pump", "quantity": 2, field_name: 1}
            body = {**ROUTES[name].valid, "items": [item]}
            r = api.send(ROUTES[name], json.dumps(body).encode())
            api.refused(f"{name} item with {field_name}", r, 422)
            tried += 1
    assert api.problems == []
    assert api.state() == before
    assert tried == 2 * (len(INTERNAL_FIELDS) + 5 + 4)


BAD_PACKAGES: list[tuple[str, bytes]] = [
    ("items", b"[]"),
    ("items", b'[{"resource": "high-capacity-pump", "quantity": 0}]'),
    ("items", b'[{"resource": "high-capacity-pump", "quantity": "3"}]'),
    ("items", b'[{"resource": "high-capacity-pump", "quantity": 10001}]'),
    ("items", b'[{"resource": "HIGH", "quantity": 1}]'),
    ("items", b'[{"resource": "no-such-thing", "quantity": 1}]'),
    (
        "items",
        b"[" + b",".join([b'{"resource": "generator-100kw", "quantity": 1}'] * 2) + b"]",
    ),
    ("items", b"[" + b",".join([b'{"resource": "generator-100kw", "quantity": 1}'] * 51) + b"]"),
    ("cap_percent", b"0"),
    ("cap_percent", b"101"),
    ("cap_percent", b"50.5"),
    ("cap_percent", b"true"),
    ("readiness_hours", b"-1"),
    ("readiness_hours", b"8761"),
    ("self_sufficiency_days", b"366"),
    ("cost_estimate", b"-5"),
    ("cost_estimate", b"1e3"),
    ("cost_currency", b'"usd"'),
    ("cost_currency", b'"EURO"'),
    ("available", b'"no"'),
    ("unavailable_until", b'"tomorrow"'),
    ("unavailable_reason", b'"' + b"x" * 501 + b'"'),
    ("name", b'""'),
]


def test_bad_packages_are_422_and_store_nothing(api: Api) -> None:
    before = api.state()
    for name in ("package", "package update"):
        for field_name, raw in BAD_PACKAGES:
            if name == "package update" and field_name == "name" and raw == b'""':
                continue
            r = api.send_with(ROUTES[name], field_name, raw)
            api.refused(f"{name} {field_name}={raw[:40]!r}", r, 422)
    # Unavailable fields on an available package say what goes with what.
    r = api.send_with(ROUTES["package"], "unavailable_reason", b'"deployed"')
    api.refused("available with a reason", r, 422)
    assert api.problems == []
    assert api.state() == before


def test_a_claim_from_a_package_of_another_city_or_a_bad_package_id_is_refused(api: Api) -> None:
    before = api.state()
    route = ROUTES["claim"]
    bad = [b"0", b'"1"', b"1.0", b"true", b"2147483648", b"-1"]
    for raw in bad:
        api.refused(f"package_id={raw!r}", api.send_with(route, "package_id", raw), 422)
    # Thika's package, claimed from by Machakos: another city's package is not found.
    machakos = BodyRoute(
        route.name, route.method, route.path, route.valid, ("responder", "machakos"), True
    )
    r = api.send_with(machakos, "package_id", str(api.seeded.package_id).encode())
    api.refused("another city's package", r, 403, 404)
    assert api.problems == []
    assert api.state() == before


# Quantities and numbers --------------------------------------------------------------------

BAD_QUANTITIES = [
    b"0",
    b"-1",
    b"10001",
    b"2147483648",
    b"9223372036854775808",
    b"1" + b"0" * 40,
    b"1.5",
    b"1.0",
    b"1e2",
    b'"3"',
    b"true",
    b"false",
    b"null",
    b"[]",
    b"{}",
]


def test_quantities_that_are_not_an_integer_from_1_to_10000_are_422(api: Api) -> None:
    before = api.state()
    for name in ("request", "request update", "claim"):
        for quantity in BAD_QUANTITIES:
            r = api.send_with(ROUTES[name], "quantity", quantity)
            api.refused(f"{name} {quantity[:20]!r}", r, 422, loc=["body", "quantity"])
    assert api.problems == []
    assert api.state() == before


def test_a_request_edited_below_what_is_claimed_is_409_and_changes_nothing(api: Api) -> None:
    more = api.client.post(
        f"{API}/requests/{api.seeded.request_id}/claims",
        json={"quantity": 2},
        headers={**api.world.headers("responder", "thika"), "Idempotency-Key": "two-more"},
    )
    assert more.status_code == 201, more.text  # 3 of the 4 pumps claimed
    before = api.state()
    for quantity in (b"2", b"1"):
        r = api.send_with(ROUTES["request update"], "quantity", quantity)
        api.refused(f"quantity {quantity!r}", r, 409)
        assert "3 units are claimed" in r.json()["detail"]
    assert api.problems == []
    assert api.state() == before


BAD_REQUEST_UPDATES: list[tuple[str, bytes]] = [
    ("quantity", b"null"),
    ("priority", b'"urgent"'),
    ("priority", b"null"),
    ("priority", b"1"),
    ("needed_by", b"null"),
    ("needed_by", b'"2026-02-13T08:00:00"'),
    ("needed_by", b'"tomorrow"'),
    ("needed_by", b"1770883200"),
    ("report_to", b"null"),
    ("report_to", b'"' + b"x" * 501 + b'"'),
    ("report_to", b"[]"),
    ("resource", b'"cots"'),
    ("claimed_quantity", b"0"),
    ("status", b'"fulfilled"'),
]


def test_a_request_edit_of_the_wrong_type_or_a_field_it_cannot_change_is_422(api: Api) -> None:
    before = api.state()
    for field_name, value in BAD_REQUEST_UPDATES:
        r = api.send_with(ROUTES["request update"], field_name, value)
        api.refused(f"{field_name}={value[:20]!r}", r, 422, loc=["body", field_name])
    r = api.send_with(ROUTES["request update"], "needed_by", b'"2026-02-12T07:59:59Z"')
    api.refused("needed_by in the past", r, 422)
    assert api.problems == []
    assert api.state() == before


def test_a_claim_larger_than_what_remains_is_409_and_claims_nothing(api: Api) -> None:
    before = api.state()
    r = api.send_with(ROUTES["claim"], "quantity", b"10000")
    api.refused("claim of 10000", r, 409)
    assert api.problems == []
    assert api.state() == before


# An update gives only the fields that change: each is optional, none is nullable.
BAD_UPDATES: list[tuple[str, bytes]] = [
    ("severity", b'"catastrophic"'),
    ("severity", b'"Severe"'),
    ("severity", b'""'),
    ("severity", b"3"),
    ("severity", b"null"),
    ("severity", b'["severe"]'),
    ("title", b'""'),
    ("title", b"null"),
    ("title", b"42"),
    ("title", b'{"en": "Flood"}'),
    ("description", b"null"),
    ("description", b"false"),
    ("exercise", b'"true"'),
    ("exercise", b"1"),
    ("exercise", b"null"),
]


def test_an_incident_update_outside_the_vocabulary_or_of_the_wrong_type_is_422(
    api: Api,
) -> None:
    before = api.state()
    for field_name, value in BAD_UPDATES:
        r = api.send_with(ROUTES["incident update"], field_name, value)
        api.refused(f"{field_name}={value!r}", r, 422, loc=["body", field_name])
    assert api.problems == []
    assert api.state() == before


BAD_COORDINATES = [
    b"1e309",
    b"-1e309",
    b"1" + b"0" * 99,
    b'"1.0"',
    b"true",
    b"[]",
]
OUT_OF_RANGE = {"lat": [b"90.000001", b"-91"], "lon": [b"180.000001", b"-181"]}


def test_coordinates_that_are_not_finite_numbers_in_range_are_422(api: Api) -> None:
    before = api.state()
    for name in ("incident", "city"):
        route = replace(ROUTES[name], valid={**ROUTES[name].valid, "lat": -1.0, "lon": 37.0})
        for axis in ("lat", "lon"):
            for value in [*BAD_COORDINATES, *OUT_OF_RANGE[axis]]:
                r = api.send_with(route, axis, value)
                api.refused(f"{name} {axis}={value[:20]!r}", r, 422, loc=["body", axis])
        # An incident may leave out both, to take its city's location; not just one.
        r = api.send_with(route, "lat", b"null")
        api.refused(f"{name} lat=null", r, 422)
    assert api.problems == []
    assert api.state() == before


def test_staging_point_coordinates_that_are_not_finite_numbers_in_range_are_422(api: Api) -> None:
    before = api.state()
    for name in ("request", "request update"):
        valid = {**ROUTES[name].valid, "report_lat": -1.0, "report_lon": 37.0}
        route = replace(ROUTES[name], valid=valid)
        for axis in ("report_lat", "report_lon"):
            for value in [*BAD_COORDINATES, *OUT_OF_RANGE[axis.removeprefix("report_")]]:
                r = api.send_with(route, axis, value)
                api.refused(f"{name} {axis}={value[:20]!r}", r, 422, loc=["body", axis])
        # Half a place is no place: both coordinates, or (an edit removing it) null for both.
        r = api.send_with(route, "report_lat", b"null")
        api.refused(f"{name} report_lat=null alone", r, 422)
    assert api.problems == []
    assert api.state() == before


# What the JSON grammar has no number for, or no sane one: refused before validation.
NOT_JSON_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1" + b"0" * 400, b"-" + b"9" * 101]
NUMBER_FIELDS = [("request", "quantity"), ("claim", "quantity"), ("incident", "lat")]
NUMBER_FIELDS += [("city", "lat"), ("city", "lon"), ("token", "city_id")]
NUMBER_FIELDS += [("request", "report_lat"), ("request update", "report_lon")]


def test_numbers_json_has_no_room_for_are_400_and_store_nothing(api: Api) -> None:
    before = api.state()
    for name, field_name in NUMBER_FIELDS:
        for value in NOT_JSON_NUMBERS:
            r = api.send_with(ROUTES[name], field_name, value)
            api.refused(f"{name} {field_name}={value[:20]!r}", r, 400)
    assert api.problems == []
    assert api.state() == before


# Strings -----------------------------------------------------------------------------------

# (route, field, longest accepted): one character more is refused.
STRING_LIMITS = [
    ("network", "slug", 64),
    ("network", "name", 200),
    ("network", "description", 2000),
    ("city", "name", 200),
    ("city", "contact_email", 254),
    ("token", "label", 200),
    ("incident", "incident_type", 64),
    ("incident", "title", 200),
    ("incident", "description", 5000),
    ("incident update", "title", 200),
    ("incident update", "description", 5000),
    ("request", "report_to", 500),
    ("request", "notes", 2000),
    ("claim", "note", 2000),
    ("claim status", "note", 2000),
    ("request note", "body", 2000),
    ("claim note", "body", 2000),
    ("incident dry run", "title", 200),
    ("publish version", "change_note", 2000),
    ("person", "display_name", 200),
    ("person", "email", 254),
    ("sign-in provider", "label", 100),
    ("sign-in provider", "client_id", 300),
    ("sign-in provider", "client_secret", 500),
]


def _text(field_name: str, length: int) -> str:
    # Slugs take ASCII only; elsewhere each character is four bytes in UTF-8.
    return "a" * length if field_name in {"slug", "incident_type"} else "🌊" * length


def test_strings_over_their_limit_are_422_and_store_nothing(api: Api) -> None:
    before = api.state()
    for name, field_name, limit in STRING_LIMITS:
        # As UTF-8: written with `\u` escapes, the longest playbook is over the route's cap.
        too_long = json.dumps(_text(field_name, limit + 1), ensure_ascii=False).encode()
        r = api.send_with(ROUTES[name], field_name, too_long)
        api.refused(f"{name} {field_name}", r, 422, loc=["body", field_name])
    assert api.problems == []
    assert api.state() == before


def test_strings_at_their_limit_are_accepted(api: Api) -> None:
    for i, (name, field_name, limit) in enumerate(STRING_LIMITS):
        if field_name == "source":
            continue  # a playbook is YAML, not any text: its limit is checked above
        route = ROUTES[name]
        if "slug" in route.valid:  # a second network or city needs a slug of its own
            route = replace(route, valid={**route.valid, "slug": f"at-limit-{i}"})
        if "email" in route.valid:  # and a second person an email of their own
            route = replace(route, valid={**route.valid, "email": f"at-limit-{i}@x.example"})
        at_limit = json.dumps(_text(field_name, limit)).encode()
        r = api.send_with(route, field_name, at_limit)
        assert 200 <= r.status_code < 300, (name, field_name, r.text[:300])


def test_an_information_answer_over_its_limit_is_422(
    client: TestClient, world: World, incident: int
) -> None:
    manager = world.headers("manager", "nairobi")
    thika = world.headers("responder", "thika")
    request = client.post(
        f"{API}/incidents/{incident}/requests",
        json={"resource": "hydrological-forecast", "quantity": 1},
        headers=manager,
    ).json()
    claim = client.post(
        f"{API}/requests/{request['id']}/claims",
        json={"quantity": 1},
        headers={**thika, "Idempotency-Key": "answer"},
    ).json()
    client.post(f"{API}/claims/{claim['id']}/status", json={"status": "accepted"}, headers=manager)
    url = f"{API}/claims/{claim['id']}/status"

    r = client.post(url, json={"status": "released", "answer": "x" * 20_001}, headers=thika)
    assert r.status_code == 422, r.text
    assert client.get(f"{API}/claims/{claim['id']}", headers=thika).json()["status"] == "accepted"
    r = client.post(url, json={"status": "released", "answer": "x" * 20_000}, headers=thika)
    assert r.status_code == 200, r.text


# NUL characters and lone surrogates, as JSON escapes in the raw body.
POISONED_STRINGS = [
    b'"a\\u0000b"',
    b'"\\u0000"',
    b'"\\ud800"',
    b'"\\udfff"',
    b'"a\\udc00b"',
    b'"\\ud800\\ud800"',
    b'"\\udc00\\ud800"',  # a pair in the wrong order
]

TEXT_FIELDS = [
    ("network", "slug"),
    ("network", "name"),
    ("network", "description"),
    ("city", "name"),
    ("city", "country"),
    ("city", "contact_email"),
    ("token", "role"),
    ("token", "label"),
    ("incident", "title"),
    ("incident", "description"),
    ("incident", "incident_type"),
    ("incident", "severity"),
    ("incident", "playbook"),
    ("incident update", "title"),
    ("incident update", "description"),
    ("incident update", "severity"),
    ("request", "resource"),
    ("request", "kind"),
    ("request", "priority"),
    ("request", "notes"),
    ("request", "report_to"),
    ("claim", "note"),
    ("claim status", "note"),
    ("claim status", "status"),
    ("claim status", "reason"),
    ("request note", "body"),
    ("claim note", "body"),
    ("incident dry run", "playbook"),
    ("publish version", "change_note"),
    ("city playbook", "source"),
    ("sign-in provider", "label"),
    ("sign-in provider", "issuer"),
    ("sign-in provider", "client_id"),
    ("sign-in provider", "client_secret"),
]


def test_nul_characters_and_lone_surrogates_are_422_and_stored_nowhere(api: Api) -> None:
    before = api.state()
    for name, field_name in TEXT_FIELDS:
        # A playbook's problems are listed by line of the YAML document, not by body field.
        loc: list[str | int] | None = None if field_name == "source" else ["body", field_name]
        for poison in POISONED_STRINGS:
            r = api.send_with(ROUTES[name], field_name, poison)
            api.refused(f"{name} {field_name}={poison!r}", r, 422, loc=loc)
    assert api.problems == []
    assert api.state() == before


def test_a_lone_surrogate_or_nul_in_a_key_or_as_the_whole_body_is_422(api: Api) -> None:
    before = api.state()
    for raw in [
        b'{"incident_type": "flood", "title": "x", "\\ud800": 1}',
        b'{"incident_type": "flood", "title": "x", "a\\u0000": 1}',
        b'"\\ud800"',
        b'["\\ud800"]',
    ]:
        api.refused(repr(raw), api.send(ROUTES["incident"], raw), 422)
    assert api.problems == []
    assert api.state() == before


def test_a_valid_surrogate_pair_is_text_like_any_other(api: Api) -> None:
    r = api.send(ROUTES["incident"], b'{"incident_type": "flood", "title": "Flood \\ud83c\\udf0a"}')
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "Flood 🌊"


def test_a_body_that_is_not_json_is_refused_and_stores_nothing(api: Api) -> None:
    before = api.state()
    route = ROUTES["incident"]
    headers = api.world.headers(*route.caller)
    for content_type, raw in [
        ("text/plain", json.dumps(route.valid).encode()),
        ("application/x-www-form-urlencoded", b"incident_type=flood&title=Flood"),
        ("application/xml", b"<incident><title>Flood</title></incident>"),
        ("application/json; charset=utf-16", json.dumps(route.valid).encode("utf-16")),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\nflood\r\n--x--\r\n"),
    ]:
        r = api.client.post(
            f"{API}/incidents", content=raw, headers={**headers, "content-type": content_type}
        )
        api.refused(content_type, r, 415)
    assert api.problems == []
    assert api.state() == before


def test_a_playbook_that_is_not_a_valid_playbook_is_422_and_stores_nothing(api: Api) -> None:
    before = api.state()
    route = ROUTES["city playbook"]
    for what, source in [
        ("empty", ""),
        ("not YAML", "incident_type: [unclosed"),
        ("a YAML list", "- 1\n- 2\n"),
        ("a YAML bomb", "a: &a [1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" * 3),
        ("a control character", "incident_type: wildfire\x07\n"),
        ("another incident type", (STOCK_PLAYBOOKS / "flood.yaml").read_text(encoding="utf-8")),
    ]:
        api.refused(what, api.send_with(route, "source", json.dumps(source).encode()), 422)
    assert api.problems == []
    assert api.state() == before


# Names that do not exist, and times -------------------------------------------------------


def test_an_unknown_resource_is_422_listing_close_matches(api: Api) -> None:
    r = api.send_with(ROUTES["request"], "resource", b'"high-capacity-pmp"')
    assert r.status_code == 422, r.text
    assert "high-capacity-pmp" in r.text
    assert "high-capacity-pump" in r.text  # the close match

    r = api.send_with(ROUTES["request"], "kind", b'"personnel"')
    assert r.status_code == 422, r.text
    assert "infrastructure" in r.text  # the resource's actual kind


def test_an_unknown_playbook_or_network_is_422_and_stores_nothing(api: Api) -> None:
    before = api.state()
    r = api.send_with(ROUTES["incident"], "playbook", b'"floood"')
    api.refused("playbook", r, 422)
    assert "floood" in r.text
    r = api.send_with(ROUTES["city"], "networks", b'["kenya", "atlantis"]')
    api.refused("network", r, 422)
    assert "atlantis" in r.text
    assert api.problems == []
    assert api.state() == before


BAD_NEEDED_BY = [
    "2026-02-12T07:59:59Z",  # a second ago
    CLOCK_NOW,  # now is not the future
    "2026-02-12T10:00:00+03:00",  # 07:00 UTC: past once its offset is applied
    "2026-02-13T08:00:00",  # no time zone
    "2026-02-13",
    "tomorrow",
    "9999-12-31T23:59:59-14:00",  # after the year 9999 once in UTC
    "0001-01-01T00:00:00+14:00",  # before the year 1 once in UTC
    "2026-02-30T08:00:00Z",
    "",
]


def test_needed_by_in_the_past_without_a_time_zone_or_out_of_range_is_422(api: Api) -> None:
    before = api.state()
    for needed_by in BAD_NEEDED_BY:
        r = api.send_with(ROUTES["request"], "needed_by", json.dumps(needed_by).encode())
        api.refused(needed_by, r, 422)
    assert api.problems == []
    assert api.state() == before

    r = api.send_with(ROUTES["request"], "needed_by", b'"2026-02-12T11:00:01+03:00"')
    assert r.status_code == 201, r.text
    assert r.json()["needed_by"].startswith("2026-02-12T08:00:01")  # shown in UTC


# Ids in paths, query parameters, headers ---------------------------------------------------

BAD_IDS = [
    "0",
    "-1",
    "2147483648",
    str(2**63),
    str(2**64),
    "abc",
    "1.5",
    "1e3",
    "0x10",
    "%00",
    "\uff11",  # a fullwidth digit one
]
BAD_SLUGS = ["FLOOD", "a" * 65, "%00", "-", "flood%0A"]


def _caller_for(method: str, path: str) -> tuple[str, str | None]:
    """A caller who passes the route's role check, so the path itself is what is judged."""
    if method != "GET" and "/roster" in path:
        return ("manager", "thika")  # the seeded city's manager keeps its roster
    if method != "GET" and "/library/" in path:
        return ("manager", "thika")  # a city's manager, acting for the seeded city
    if method == "GET" or path.startswith((f"{API}/networks", f"{API}/cities", f"{API}/tokens")):
        return ("admin", None)
    if "/claims" in path or "/passes" in path or "/offers" in path:
        return ("responder", "thika")
    return ("manager", "nairobi")


def test_bad_ids_in_every_path_are_422_or_404_never_500(api: Api) -> None:
    good = {
        "incident_id": api.seeded.incident_id,
        "request_id": api.seeded.request_id,
        "claim_id": api.seeded.claim_id,
        "network_id": api.world.network_ids["kenya"],
        "city_id": api.seeded.city_id,
        "token_id": 1,
        "incident_type": "wildfire",
        "endpoint_id": 1,  # a path id is refused before the endpoint is looked up
        "attempt_id": 1,
        "version_id": 1,  # no version is published: a well-written id is a 404
        "package_id": api.seeded.package_id,
        "number": 1,  # no situation report is published: a well-written number is a 404
        "offer_id": api.seeded.offer_id,
    }
    bodies = {(r.method, API + r.path.split("{")[0]): r.valid for r in BODY_ROUTES}
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    before = api.state()
    tried = 0
    for template, operations in paths.items():
        for method, param in ((m.upper(), p) for m in operations for p in good):
            if f"{{{param}}}" not in template:
                continue
            headers = {**api.world.headers(*_caller_for(method, template)), "Idempotency-Key": "i"}
            body = bodies.get((method, template.split("{")[0]))
            for bad in BAD_SLUGS if param == "incident_type" else BAD_IDS:
                url = template.format(**{**good, param: bad})
                r = api.client.request(method, url, json=body, headers=headers)
                api.refused(f"{method} {url}", r, 404, 422)
                tried += 1
    assert api.problems == []
    assert api.state() == before
    assert tried >= 200


BAD_QUERIES = [
    ("/incidents", {"limit": "0"}),
    ("/incidents", {"limit": "501"}),
    ("/incidents", {"limit": "abc"}),
    ("/incidents", {"offset": "-1"}),
    ("/incidents", {"offset": str(2**63)}),
    ("/incidents", {"status": "open"}),
    ("/incidents", {"city_id": "0"}),
    ("/incidents", {"city_id": str(2**63)}),
    ("/incidents", {"incident_type": "Flood!"}),
    ("/incidents", {"incident_type": "\x00"}),
    ("/incidents", {"exercise": "maybe"}),
    *(("/incidents", {"exercise": w}) for w in ["1", "0", "yes", "off", "t", "True", "FALSE"]),
    ("/requests", {"status": "active"}),
    ("/requests", {"kind": "money"}),
    ("/requests", {"incident_id": "-1"}),
    ("/incidents/{incident_id}/events", {"after": "-1"}),
    ("/incidents/{incident_id}/events", {"after": str(2**63)}),
    ("/incidents/{incident_id}/events", {"limit": "1001"}),
    ("/incidents/{incident_id}/sitreps", {"limit": "0"}),
    ("/incidents/{incident_id}/sitreps", {"offset": "-1"}),
    ("/incidents/{incident_id}/report", {"charts": "maybe"}),
    ("/networks", {"limit": "-5"}),
    ("/cities", {"offset": "1.5"}),
    ("/tokens", {"limit": "1e3"}),
    ("/resources", {"kind": "money"}),
    ("/resources", {"q": "x" * 65}),
]


def test_bad_query_parameters_are_422(api: Api) -> None:
    for path, params in BAD_QUERIES:
        caller = ("responder", "thika") if path == "/requests" else ("admin", None)
        url = API + path.format(**vars(api.seeded))
        r = api.client.get(url, params=params, headers=api.world.headers(*caller))
        api.refused(f"{path} {params}", r, 422)
    assert api.problems == []


IDEMPOTENCY_KEYS: list[tuple[str, bytes | None]] = [
    ("missing", None),
    ("empty", b""),
    ("oversized", b"k" * 201),
    ("cyrillic", "ключ".encode()),
    ("latin-1", b"cl\xe9"),
    ("space", b"a b"),
    ("tab", b"a\tb"),
    ("control", b"a\x01b"),
]


def test_a_missing_oversized_or_non_ascii_idempotency_key_is_4xx_and_claims_nothing(
    api: Api,
) -> None:
    before = api.state()
    url = f"{API}/requests/{api.seeded.request_id}/claims"
    for name, key in IDEMPOTENCY_KEYS:
        headers: dict[str, Any] = api.world.headers("responder", "thika")
        if key is not None:
            headers["Idempotency-Key"] = key
        api.refused(name, api.client.post(url, json={"quantity": 1}, headers=headers))
    assert api.problems == []
    assert api.state() == before

    headers = {**api.world.headers("responder", "thika"), "Idempotency-Key": "k" * 200}
    r = api.client.post(url, json={"quantity": 1}, headers=headers)
    assert r.status_code == 201, r.text


def test_a_malformed_note_idempotency_key_is_4xx_and_adds_no_note(api: Api) -> None:
    # A note's key is optional (a note without one is added as before), but one sent is
    # held to the claim's rules.
    before = api.state()
    manager = api.world.headers("manager", "nairobi")
    for path in (f"/requests/{api.seeded.request_id}", f"/claims/{api.seeded.claim_id}"):
        for name, key in IDEMPOTENCY_KEYS:
            if key is None:
                continue
            headers = {**manager, "Idempotency-Key": key}
            r = api.client.post(f"{API}{path}/notes", json={"body": "x"}, headers=headers)
            api.refused(f"{path} {name}", r)
    assert api.problems == []
    assert api.state() == before


def test_errors_never_echo_the_bad_input(api: Api) -> None:
    # The validation handler drops pydantic's `input`, which may not even be encodable.
    r = api.send_with(ROUTES["incident"], "title", json.dumps("s3cr3t-" + "x" * 300).encode())
    assert r.status_code == 422, r.text
    assert "s3cr3t" not in r.text
    assert set(r.json()["detail"][0]) == {"loc", "msg", "type"}


# Generated bad input: whole classes, not just the values above ------------------------------
#
# Each test draws many inputs of one class with hypothesis, sends each to every route it
# applies to, and checks the status and that nothing was stored.

GENERATED = hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Digits of other scripts that Python's int() would read as 0-9.
OTHER_DIGITS = ["\u0660", "\u06f0", "\u0966", "\uff10", "\u09e6", "\U0001d7ce"]


def _respelled(n: int) -> st.SearchStrategy[str]:
    """The number `n` written in ways a lenient parser reads as `n`, and a strict one refuses."""
    text = str(n)
    return st.one_of(
        st.sampled_from(["+", "0", "00", " ", "\t", "\u00a0", "\n"]).map(lambda p: p + text),
        st.sampled_from([".0", ".", "e0", "E0", " ", "\t", "\n", "_"]).map(lambda s: text + s),
        st.just(f"0x{n:x}"),
        st.just("_".join(text) if n >= 10 else f"0_{text}"),
        st.sampled_from(OTHER_DIGITS).map(
            lambda zero: "".join(chr(ord(zero) + int(d)) for d in text)
        ),
    )


def _id_routes(api: Api) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(method, template, id parameter, body) of every path that takes an id."""
    bodies = {(r.method, API + r.path.split("{")[0]): r.valid for r in BODY_ROUTES}
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    found = []
    for template, operations in paths.items():
        for method in (m.upper() for m in operations):
            for param in re.findall(r"{(\w+_id)}", template):
                found.append(
                    (method, template, param, bodies.get((method, template.split("{")[0])))
                )
    return found


def _good_ids(api: Api) -> dict[str, Any]:
    return {
        "incident_id": api.seeded.incident_id,
        "request_id": api.seeded.request_id,
        "claim_id": api.seeded.claim_id,
        "network_id": api.world.network_ids["kenya"],
        "city_id": api.seeded.city_id,
        "token_id": 1,
        "incident_type": "wildfire",
        # No webhook endpoint exists: a well-written id is a 404, so the id is what is judged.
        "endpoint_id": 1,
        "attempt_id": 1,
        "version_id": 1,
        "package_id": api.seeded.package_id,
        "number": 1,
        "person_id": 1,  # nobody: the id is what is judged
        "offer_id": api.seeded.offer_id,
    }


def test_path_ids_written_other_than_plain_digits_are_422_on_every_route(api: Api) -> None:
    routes = _id_routes(api)
    assert len(routes) >= 19
    good = _good_ids(api)
    before = api.state()

    @GENERATED
    @given(route=st.sampled_from(routes), data=st.data())
    def check(route: tuple[str, str, str, dict[str, Any] | None], data: st.DataObject) -> None:
        method, template, param, body = route
        spelled = data.draw(_respelled(good[param]), label="id")
        url = template.format(**{**good, param: quote(spelled, safe="")})
        headers = {**api.world.headers(*_caller_for(method, template)), "Idempotency-Key": "i"}
        r = api.client.request(method, url, json=body, headers=headers)
        api.refused(f"{method} {template} {param}={spelled!r}", r, 422, loc=["path", param])

    check()
    assert api.problems == []
    assert api.state() == before


QUERY_NUMBERS = [
    ("/incidents", "city_id", ("admin", None)),
    ("/people", "city_id", ("admin", None)),
    ("/requests", "incident_id", ("responder", "thika")),
    ("/incidents", "limit", ("admin", None)),
    ("/incidents", "offset", ("admin", None)),
    ("/incidents/{incident_id}/events", "after", ("admin", None)),
    ("/requests/{request_id}/claims", "offset", ("admin", None)),
]


def test_query_ids_and_counts_written_other_than_plain_digits_are_422(api: Api) -> None:
    @GENERATED
    @given(query=st.sampled_from(QUERY_NUMBERS), data=st.data())
    def check(query: tuple[str, str, tuple[str, str | None]], data: st.DataObject) -> None:
        path, name, caller = query
        value = api.seeded.incident_id if name == "incident_id" else 1
        spelled = data.draw(_respelled(value), label="value")
        url = API + path.format(**vars(api.seeded))
        r = api.client.get(url, params={name: spelled}, headers=api.world.headers(*caller))
        api.refused(f"{path}?{name}={spelled!r}", r, 422, loc=["query", name])

    check()
    assert api.problems == []


# Ids beyond what the database's integer holds, anywhere REST takes one.
BEYOND_MAX_ID = st.one_of(
    st.integers(MAX_ID + 1, 2**63 + 1), st.integers(2**63, 10**40), st.integers(max_value=0)
)


def test_ids_beyond_the_integer_range_are_422_in_paths_queries_and_bodies(api: Api) -> None:
    routes = _id_routes(api)
    good = _good_ids(api)
    body_ids = [
        (route, name)
        for route in BODY_ROUTES
        for name in _body_fields(api, route)
        if name.endswith("_id")
    ]
    assert [(r.name, n) for r, n in body_ids] == [
        ("token", "city_id"),
        ("offer", "package_id"),
        ("offer", "request_id"),
        ("offer status", "request_id"),
        ("claim", "package_id"),
        # OAuth's name for the provider's client: a string, so a number is refused too.
        ("sign-in provider", "client_id"),
        ("person", "city_id"),
    ]
    before = api.state()

    @GENERATED
    @given(where=st.sampled_from(["path", "query", "body"]), n=BEYOND_MAX_ID, data=st.data())
    def check(where: str, n: int, data: st.DataObject) -> None:
        if where == "path":
            method, template, param, body = data.draw(st.sampled_from(routes))
            headers = {**api.world.headers(*_caller_for(method, template)), "Idempotency-Key": "i"}
            url = template.format(**{**good, param: n})
            r = api.client.request(method, url, json=body, headers=headers)
            api.refused(f"{method} {template} {param}={n}", r, 422, loc=["path", param])
        elif where == "query":
            path, name, caller = data.draw(st.sampled_from(QUERY_NUMBERS))
            if name in {"offset", "after"} and n == 0:
                return  # 0 is a count there, not an id
            url = API + path.format(**vars(api.seeded))
            r = api.client.get(url, params={name: n}, headers=api.world.headers(*caller))
            api.refused(f"{path}?{name}={n}", r, 422, loc=["query", name])
        else:
            route, name = data.draw(st.sampled_from(body_ids))
            r = api.send_with(route, name, str(n).encode())
            api.refused(f"{route.name} {name}={n}", r, 422, loc=["body", name])

    check()
    assert api.problems == []
    assert api.state() == before


def _body_fields(api: Api, route: BodyRoute) -> list[str]:
    """The fields of a route's body model, as the OpenAPI schema names them."""
    schema = api.client.app.openapi()  # type: ignore[attr-defined]
    template = route.path.replace("/playbooks/wildfire", "/playbooks/{incident_type}")
    template = template.replace("/library/flood", "/library/{incident_type}")
    operation = schema["paths"][API + template][route.method.lower()]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return list(schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"])


def test_a_repeated_key_is_400_and_the_last_value_never_wins(api: Api) -> None:
    before = api.state()
    routes = [r for r in BODY_ROUTES if r.name != "city playbook"]

    @GENERATED
    @given(route=st.sampled_from(routes), data=st.data())
    def check(route: BodyRoute, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(route.valid)), label="key")
        again = data.draw(st.sampled_from([route.valid[key], 7, "x", None, [], {}]), label="value")
        document = json.dumps(route.valid)[:-1] + f", {json.dumps(key)}: {json.dumps(again)}}}"
        r = api.send(route, document.encode())
        api.refused(f"{route.name} {key} twice", r, 400)
        if r.status_code == 400 and "duplicate key" not in r.json()["detail"]:
            api.problems.append(f"{route.name}: {r.json()['detail']} does not say why")

    check()
    # The case from the report: a claim of 1, then 7, claims nothing.
    r = api.send(ROUTES["claim"], b'{"quantity": 1, "quantity": 7}')
    api.refused("quantity 1 then 7", r, 400)
    assert api.problems == []
    assert api.state() == before


TEXT_OF = {"network": "name", "city": "name", "token": "label", "incident": "title"}
TEXT_OF |= {"incident update": "title", "request update": "report_to"}
TEXT_OF |= {"request": "notes", "claim": "note", "claim status": "note"}
TEXT_OF |= {"incident dry run": "title", "publish version": "change_note"}
TEXT_OF |= {"package": "limitations", "package update": "contact", "pass": "reason"}
TEXT_OF |= {"request note": "body", "claim note": "body"}
TEXT_OF |= {"sitrep": "period_from"}  # no free text: any field shows the encoding is refused
TEXT_OF |= {"person": "display_name"}
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"]


def test_a_body_in_another_encoding_or_with_a_byte_order_mark_is_400(api: Api) -> None:
    before = api.state()

    @GENERATED
    @given(
        # Every route whose body has a text field (not a playbook's YAML, not an opt-in).
        route=st.sampled_from([r for r in BODY_ROUTES if r.name in TEXT_OF]),
        encoding=st.sampled_from(ENCODINGS),
        text=st.text(alphabet=st.characters(min_codepoint=0xA0, max_codepoint=0xFF), min_size=1),
    )
    def check(route: BodyRoute, encoding: str, text: str) -> None:
        # Text outside ASCII, so that no encoding of it is also UTF-8 without a BOM.
        document = json.dumps({**route.valid, TEXT_OF[route.name]: text}, ensure_ascii=False)
        r = api.send(route, document.encode(encoding))
        api.refused(f"{route.name} as {encoding}", r, 400)

    check()
    assert api.problems == []
    assert api.state() == before


def test_nesting_deeper_than_32_levels_is_400(api: Api) -> None:
    @GENERATED
    @given(
        route=st.sampled_from(BODY_ROUTES),
        depth=st.integers(33, 5_000),
        shape=st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"b":', b"}]")]),
    )
    def check(route: BodyRoute, depth: int, shape: tuple[bytes, bytes]) -> None:
        opening, closing = shape
        nested = opening * depth + b"1" + closing * depth
        document = json.dumps(route.valid).encode()[:-1] + b', "deep": ' + nested + b"}"
        r = api.send(route, document)
        api.refused(f"{route.name} {depth} deep", r, 400)

    check()
    assert api.problems == []


def test_a_body_of_another_media_type_is_415(api: Api) -> None:
    before = api.state()
    media_type = st.from_regex(r"\A[a-z]{1,12}/[a-z0-9.+-]{1,20}\Z").filter(
        lambda t: t != "application/json"
    )

    @GENERATED
    @given(route=st.sampled_from(BODY_ROUTES), content_type=media_type)
    def check(route: BodyRoute, content_type: str) -> None:
        headers = {**api.world.headers(*route.caller), "content-type": content_type}
        if route.idempotency_key:
            headers["Idempotency-Key"] = "media-type"
        url = API + route.path.format(**vars(api.seeded))
        r = api.client.request(route.method, url, json=route.valid, headers=headers)
        api.refused(f"{route.name} as {content_type}", r, 415)

    check()
    assert api.problems == []
    assert api.state() == before


NOT_A_TIME = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 2**40).map(str),
    st.floats(0, 2e9).map(str),
    st.datetimes().map(lambda t: t.isoformat()),  # no zone
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(UTC)).map(lambda t: t.strftime("%Y%m%dT%H%M%SZ")),
    st.booleans(),
)


def test_needed_by_that_is_not_an_rfc3339_time_with_a_zone_is_422(api: Api) -> None:
    before = api.state()

    @GENERATED
    @given(value=NOT_A_TIME)
    def check(value: Any) -> None:
        r = api.send_with(ROUTES["request"], "needed_by", json.dumps(value).encode())
        api.refused(f"needed_by={value!r}", r, 422, loc=["body", "needed_by"])

    check()
    # The report's case: a Unix time an hour after the clock's now.
    r = api.send_with(ROUTES["request"], "needed_by", b"1770886800")
    api.refused("a Unix time", r, 422, loc=["body", "needed_by"])
    assert api.problems == []
    assert api.state() == before
