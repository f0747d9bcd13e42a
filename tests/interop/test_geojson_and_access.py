"""GeoJSON against RFC 7946's rules, and who may read or import through the new routes:
an export shows nothing the JSON API would not, and a foreign incident answers the same
404 as a missing one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.interop.flow import API, Flow, ok, run_flow
from tests.support import FakeClock, World

GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}


def rfc7946_problems(document: dict[str, Any]) -> list[str]:
    """RFC 7946: a FeatureCollection of Features, valid geometry types, positions as
    [longitude, latitude] within range, and no `crs` member anywhere."""
    problems: list[str] = []
    if document.get("type") != "FeatureCollection" or not isinstance(
        document.get("features"), list
    ):
        return ["not a FeatureCollection with a features array"]
    if "crs" in document:
        problems.append("crs member on the collection")
    for i, feature in enumerate(document["features"]):
        if feature.get("type") != "Feature" or "properties" not in feature or "crs" in feature:
            problems.append(f"feature {i}: not a Feature with properties (or has crs)")
        geometry = feature.get("geometry") or {}
        if geometry.get("type") not in GEOMETRY_TYPES or "crs" in geometry:
            problems.append(f"feature {i}: geometry type {geometry.get('type')!r}")
        if geometry.get("type") == "Point":
            position = geometry.get("coordinates")
            if not (isinstance(position, list) and len(position) == 2):
                problems.append(f"feature {i}: position {position!r}")
                continue
            lon, lat = position
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                problems.append(f"feature {i}: position {position!r} out of range")
    return problems


def test_the_check_bites() -> None:
    swapped = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [1.0, 100.0]},
    }
    assert rfc7946_problems({"type": "FeatureCollection", "features": [swapped], "crs": {}}) != []
    circle = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Circle", "coordinates": [0, 0]},
    }
    assert rfc7946_problems({"type": "FeatureCollection", "features": [circle]}) != []


def test_incident_geojson_has_location_city_reach_and_claims(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    flow = run_flow(client, world, clock)
    response = client.get(
        f"{API}/incidents/{flow.incident_id}/geojson", headers=world.headers("observer", "nairobi")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    document = response.json()
    assert rfc7946_problems(document) == []
    roles = [f["properties"]["role"] for f in document["features"]]
    assert roles[:2] == ["incident", "requesting_city"]
    nairobi = document["features"][1]["geometry"]["coordinates"]
    assert nairobi == [36.8172, -1.2864], "longitude first"
    reached = {
        (f["properties"]["slug"], f["properties"]["request_id"], f["properties"]["ring"])
        for f in document["features"]
        if f["properties"]["role"] == "reached_city"
    }
    assert ("thika", flow.pumps_id, 0) in reached
    assert ("machakos", flow.escalated_id, 1) in reached, "the escalated request reaches ring 1"
    assert ("machakos", flow.pumps_id, 1) not in reached, (
        "ring 1 of an unescalated request is not shown"
    )
    thika = next(
        f
        for f in document["features"]
        if f["properties"].get("slug") == "thika" and f["properties"]["role"] == "reached_city"
    )
    assert 30 < thika["properties"]["distance_km"] < 50
    claims = [
        f["properties"] for f in document["features"] if f["properties"]["role"] == "claiming_city"
    ]
    assert {(c["slug"], c["quantity"], c["status"]) for c in claims} >= {("thika", 3, "released")}
    cities = client.get(f"{API}/geojson/cities", headers=world.headers("responder", "berlin"))
    assert cities.status_code == 200
    assert rfc7946_problems(cities.json()) == []
    assert len(cities.json()["features"]) == 7


# --- Access: every new route against every kind of caller --------------------------------

READS = [
    "/incidents/{id}/cap",
    "/incidents/{id}/edxl-rm?format=xml",
    "/incidents/{id}/edxl-rm?format=json",
    "/incidents/{id}/geojson",
]
CALLERS: dict[str, tuple[str, str | None] | None] = {
    "own manager": ("manager", "nairobi"),
    "own responder": ("responder", "nairobi"),
    "own observer": ("observer", "nairobi"),
    "admin": ("admin", None),
    "targeted peer responder": ("responder", "thika"),
    "city of another network": ("manager", "berlin"),
    "no token": None,
}
READ_EXPECTED = {
    "own manager": 200,
    "own responder": 200,
    "own observer": 200,
    "admin": 200,
    "targeted peer responder": 200,
    "city of another network": 404,
    "no token": 401,
}
IMPORT_EXPECTED = {
    "own manager": 201,
    "own responder": 403,
    "own observer": 403,
    "admin": 403,
    "targeted peer responder": 403,
    "city of another network": 201,
    "no token": 401,
}


def _headers(world: World, caller: str) -> dict[str, str]:
    identity = CALLERS[caller]
    return {} if identity is None else world.headers(*identity)


@pytest.fixture
def flow(client: TestClient, world: World, clock: FakeClock) -> Flow:
    return run_flow(client, world, clock)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_reads_answer_as_the_json_api_does(
    client: TestClient, world: World, flow: Flow, caller: str
) -> None:
    headers = _headers(world, caller)
    json_api = client.get(f"{API}/incidents/{flow.incident_id}", headers=headers).status_code
    missing = {}
    for route in READS:
        response = client.get(API + route.format(id=flow.incident_id), headers=headers)
        assert response.status_code == READ_EXPECTED[caller] == json_api, (route, response.text)
        if response.status_code == 404:
            missing_response = client.get(API + route.format(id=999_999), headers=headers)
            assert missing_response.status_code == 404
            assert response.json() == {
                "detail": f"incident {flow.incident_id} not found",
                "code": "not_found",
                "params": {},
            }
            missing[route] = missing_response.json()["detail"]
    feed = client.get(f"{API}/feeds/cap", headers=headers)
    assert feed.status_code == (401 if caller == "no token" else 200)
    if feed.status_code == 200:
        listed = ok(client.get(f"{API}/incidents", headers=headers))["count"]
        assert feed.text.count("<entry>") == listed
        assert (f"aidmesh-incident-{flow.incident_id}-1" in feed.text) == (json_api == 200)
    cities = client.get(f"{API}/geojson/cities", headers=headers)
    assert cities.status_code == (401 if caller == "no token" else 200)


IMPORT_BODIES = {
    "/incidents/import/cap": (
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>X-{n}</identifier>'
        "<sender>ext</sender><sent>2026-02-12T08:00:00-00:00</sent><status>Actual</status>"
        "<msgType>Alert</msgType><scope>Public</scope><info><category>Geo</category>"
        "<event>Earthquake</event><urgency>Immediate</urgency><severity>Severe</severity>"
        "<certainty>Observed</certainty></info></alert>"
    ),
    "/incidents/import/edxl-rm": (
        '<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:RequestResource" '
        'xmlns:rm="urn:oasis:names:tc:emergency:EDXL:RM:1.0"><MessageID>M-{n}</MessageID>'
        "<SentDateTime>2026-02-12T08:00:00-00:00</SentDateTime>"
        "<MessageContentType>RequestResource</MessageContentType>"
        "<OriginatingMessageID>M-{n}</OriginatingMessageID>"
        "<IncidentInformation><rm:IncidentDescription>Quake</rm:IncidentDescription></IncidentInformation>"
        "<ContactInformation><rm:ContactRole>Requester</rm:ContactRole></ContactInformation>"
        "<ResourceInformation><rm:ResourceInfoElementID>1</rm:ResourceInfoElementID><rm:Resource>"
        "<rm:TypeStructure><rm:ValueListURN>urn:aidmesh:resource-catalogue</rm:ValueListURN>"
        "<rm:Value>generator-100kw</rm:Value></rm:TypeStructure></rm:Resource>"
        "<rm:AssignmentInformation><rm:Quantity><rm:MeasuredQuantity><rm:Amount>2</rm:Amount>"
        "</rm:MeasuredQuantity></rm:Quantity></rm:AssignmentInformation></ResourceInformation>"
        "</RequestResource>"
    ),
}


@pytest.mark.parametrize("route", list(IMPORT_BODIES))
@pytest.mark.parametrize("caller", list(CALLERS))
def test_imports_are_for_managers_of_their_own_city(
    client: TestClient, world: World, caller: str, route: str
) -> None:
    headers = {**_headers(world, caller), "Content-Type": "application/xml"}
    body = IMPORT_BODIES[route].format(n=caller.replace(" ", "-"))
    response = client.post(API + route, headers=headers, content=body)
    assert response.status_code == IMPORT_EXPECTED[caller], response.text
    if response.status_code == 201:
        made = response.json()
        identity = CALLERS[caller]
        assert identity is not None
        assert made["city_id"] == world.city_ids[str(identity[1])]
    else:
        admin = world.headers("admin")
        assert ok(client.get(f"{API}/incidents", headers=admin))["count"] == 0, (
            "a refusal leaves no trace"
        )
