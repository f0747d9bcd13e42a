"""The observatory's rules as pure functions over plain rows: what may be published, how
helpers that did not opt in are counted, and the shapes of the feeds."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from service.domain import observatory as obs

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NAIROBI, THIKA, MACHAKOS = 1, 2, 3


def _incident(incident_id: int, **kw: object) -> obs.IncidentRow:
    base: dict[str, object] = {
        "incident_id": incident_id,
        "city_id": NAIROBI,
        "incident_type": "flood",
        "severity": "severe",
        "lat": -1.28641,
        "lon": 36.81729,
        "exercise": False,
        "declared_at": T0,
        "closed_at": T0 + timedelta(hours=3),
    }
    return obs.IncidentRow(**{**base, **kw})  # type: ignore[arg-type]


def _request(request_id: int, incident_id: int, **kw: object) -> obs.RequestRow:
    base: dict[str, object] = {
        "request_id": request_id,
        "incident_id": incident_id,
        "kind": "infrastructure",
        "resource": "high-capacity-pump",
        "quantity": 4,
        "raised_at": T0,
        "first_claim_at": T0 + timedelta(minutes=5),
        "fulfilled_at": None,
        "expired": False,
    }
    return obs.RequestRow(**{**base, **kw})  # type: ignore[arg-type]


def _published(
    incidents: list[obs.IncidentRow],
    requests: list[obs.RequestRow],
    claims: list[obs.ClaimTotal],
) -> obs.Published:
    return obs.Published(
        network_id=1,
        network_slug="kenya",
        network_name="Kenya",
        licence="ODbL-1.0",
        publication_delay_days=1,
        published_through=T0 + timedelta(days=10),
        city_names={NAIROBI: "Nairobi", THIKA: "Thika"},
        incidents=incidents,
        requests=requests,
        claims=claims,
        incident_count=len(incidents),
    )


def test_only_closed_non_exercise_incidents_of_opted_in_cities_past_the_delay_publish() -> None:
    through = obs.published_through(T0 + timedelta(days=8), 7)
    assert through == T0 + timedelta(days=1)
    opted = {NAIROBI: "Nairobi"}
    assert obs.publishable(_incident(1), opted, through)
    assert obs.publishable(_incident(1, closed_at=through), opted, through)
    assert not obs.publishable(
        _incident(1, closed_at=through + timedelta(seconds=1)), opted, through
    )
    assert not obs.publishable(_incident(1, closed_at=None), opted, through)
    assert not obs.publishable(_incident(1, exercise=True), opted, through)
    assert not obs.publishable(_incident(1, city_id=MACHAKOS), opted, through)


def test_an_incident_the_query_let_through_by_mistake_is_still_left_out() -> None:
    published = _published(
        [_incident(1), _incident(2, exercise=True), _incident(3, city_id=MACHAKOS)],
        [_request(10, 2), _request(11, 3)],
        [obs.ClaimTotal(10, THIKA, 2, 0, T0), obs.ClaimTotal(11, THIKA, 1, 0, T0)],
    )
    assert [f.incident_id for f in obs.incident_figures(published)] == [1]
    assert obs.aid_flows(published) == []
    assert obs.charts(published).incidents_by_type == [("flood", 1)]


def test_helpers_that_did_not_opt_in_are_summed_as_other_cities_per_request() -> None:
    published = _published(
        [_incident(1)],
        [_request(10, 1, fulfilled_at=T0 + timedelta(hours=2))],
        [
            obs.ClaimTotal(10, THIKA, 1, 1, T0 + timedelta(minutes=5)),
            obs.ClaimTotal(10, MACHAKOS, 2, 2, T0 + timedelta(minutes=9)),
            obs.ClaimTotal(10, 99, 1, 1, T0 + timedelta(minutes=7)),
        ],
    )
    flows = obs.aid_flows(published)
    assert [(f.helping_city, f.units, f.first_claimed_at) for f in flows] == [
        ("Thika", 1, T0 + timedelta(minutes=5)),
        (obs.OTHER_CITIES, 3, T0 + timedelta(minutes=7)),
    ]
    assert {f.request_fill_s for f in flows} == {7200.0}
    (figures,) = obs.incident_figures(published)
    assert (figures.units_claimed, figures.units_on_site, figures.helping_city_count) == (4, 4, 3)
    assert (figures.lat, figures.lon) == (-1.29, 36.82)  # rounded: about a kilometre


def test_the_csv_has_a_header_an_hxl_row_and_the_licence_in_every_row() -> None:
    published = _published([_incident(1)], [_request(10, 1)], [obs.ClaimTotal(10, THIKA, 2, 1, T0)])
    header, tags, *rows = list(csv.reader(io.StringIO(obs.flows_csv(published))))
    assert header == [name for name, _ in obs.FLOW_COLUMNS]
    assert tags[:4] == ["#crisis+id", "#crisis+type", "#org+name+helping", "#org+name+requesting"]
    assert all(t.startswith("#") and " " not in t for t in tags)
    (row,) = rows
    assert dict(zip(header, row, strict=True)) == {
        "incident_id": "1",
        "incident_type": "flood",
        "helping_city": "Thika",
        "requesting_city": "Nairobi",
        "resource_kind": "infrastructure",
        "resource": "high-capacity-pump",
        "units": "2",
        "units_on_site": "1",
        "raised_at": "2026-03-01T08:00:00Z",
        "first_claimed_at": "2026-03-01T08:00:00Z",
        "closed_at": "2026-03-01T11:00:00Z",
        "request_first_claim_s": "300",
        "request_fill_s": "",
        "licence": "ODbL-1.0",
    }


def test_the_geojson_carries_the_licence_on_the_collection_and_every_feature() -> None:
    published = _published([_incident(1), _incident(2)], [], [])
    collection = obs.feature_collection(published)
    assert collection["licence"] == "ODbL-1.0"
    assert [f["properties"]["licence"] for f in collection["features"]] == ["ODbL-1.0"] * 2
    assert collection["features"][0]["geometry"]["coordinates"] == [36.82, -1.29]


def test_charts_give_aid_per_city_fill_by_month_and_incidents_by_type() -> None:
    march, april = T0, T0 + timedelta(days=31)
    published = _published(
        [_incident(1), _incident(2, incident_type="wildfire", declared_at=april)],
        [
            _request(10, 1, raised_at=march, fulfilled_at=march + timedelta(hours=1)),
            _request(11, 1, raised_at=march, fulfilled_at=march + timedelta(hours=3)),
            _request(12, 2, raised_at=april, first_claim_at=None),
        ],
        [obs.ClaimTotal(10, THIKA, 2, 2, march), obs.ClaimTotal(11, MACHAKOS, 1, 1, march)],
    )
    drawn = obs.charts(published)
    assert drawn.aid_by_city == [
        obs.CityAid("Nairobi", 0, 3),
        obs.CityAid("Thika", 2, 0),
        obs.CityAid(obs.OTHER_CITIES, 1, 0),
    ]
    assert drawn.fill_by_month == [
        obs.MonthFill("2026-03", 2, 2, 3600.0),
        obs.MonthFill("2026-04", 1, 0, None),
    ]
    assert drawn.incidents_by_type == [("flood", 1), ("wildfire", 1)]


def test_licences_are_identifiers_not_prose() -> None:
    assert all(map(obs.valid_licence, ["CC-BY-4.0", "ODbL-1.0", "CC0-1.0", "OGL-UK-3.0"]))
    assert not any(map(obs.valid_licence, ["", "CC BY", "-x", "a" * 65, "CC-BY\n"]))
