"""Ring selection, escalation due-times and newly reached cities, on real coordinates.

The coordinates are those of the seeded world in tests/support.py, and so are
the networks: Thika ~40 km from Nairobi, Machakos ~56 km and Mombasa ~440 km,
all in the kenya network; Munich shares the alliance network with Nairobi, so
(as the README defines the rings) it is a ring-1 city of Nairobi's; Augsburg
shares only the germany network with Munich (ring 2); Berlin is in a network of
its own.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.rings import (
    LAST_RING,
    CityPoint,
    Target,
    cities_reached,
    distance_km,
    next_escalation_at,
    select_targets,
)
from tests.support import CITIES

NETWORKS: dict[str, set[str]] = {
    "kenya": {"nairobi", "thika", "machakos", "mombasa"},
    "alliance": {"nairobi", "munich"},
    "germany": {"munich", "augsburg"},
    "germany-east": {"berlin"},
}
# A town some tests add at Nairobi's own coordinates.
TWIN = "nairobi-twin"

IDS = {slug: i for i, slug in enumerate([*CITIES, TWIN], start=1)}
SLUGS = {i: slug for slug, i in IDS.items()}
POINTS = {IDS[slug]: CityPoint(IDS[slug], lat, lon) for slug, (_, _, lat, lon, _) in CITIES.items()}
NETWORK_IDS = {net: i for i, net in enumerate(NETWORKS, start=100)}
RADIUS_KM = 50.0


def networks() -> dict[str, set[str]]:
    """The networks, to change in one test."""
    return copy.deepcopy(NETWORKS)


def memberships_of(nets: dict[str, set[str]]) -> dict[int, frozenset[int]]:
    return {NETWORK_IDS[net]: frozenset(IDS[s] for s in members) for net, members in nets.items()}


MEMBERSHIPS = memberships_of(NETWORKS)


def with_twin() -> dict[int, CityPoint]:
    nairobi = POINTS[IDS["nairobi"]]
    return {**POINTS, IDS[TWIN]: CityPoint(IDS[TWIN], nairobi.lat, nairobi.lon)}


def rings_from(
    origin: str,
    radius_km: float = RADIUS_KM,
    memberships: dict[int, frozenset[int]] | None = None,
    points: dict[int, CityPoint] | None = None,
) -> dict[str, int]:
    points = points or POINTS
    memberships = MEMBERSHIPS if memberships is None else memberships
    targets = select_targets(points[IDS[origin]], points, memberships, radius_km)
    return {SLUGS[t.city_id]: t.ring for t in targets}


def test_the_networks_here_are_those_of_the_seeded_world() -> None:
    seeded: dict[str, set[str]] = {}
    for slug, (*_, nets) in CITIES.items():
        for net in nets:
            seeded.setdefault(net, set()).add(slug)
    assert seeded == NETWORKS


def _distance(a: str, b: str) -> float:
    _, _, a_lat, a_lon, _ = CITIES[a]
    _, _, b_lat, b_lon, _ = CITIES[b]
    return distance_km(a_lat, a_lon, b_lat, b_lon)


# -- distances ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "published_km"),
    [
        ("nairobi", "thika", 40),
        ("nairobi", "machakos", 56),
        ("nairobi", "mombasa", 441),
        ("munich", "berlin", 504),
        ("nairobi", "munich", 6012),
    ],
)
def test_distances_between_real_cities_match_published_great_circle_figures(
    a: str, b: str, published_km: float
) -> None:
    assert _distance(a, b) == pytest.approx(published_km, rel=0.01)
    assert _distance(b, a) == pytest.approx(_distance(a, b))


def test_distance_from_a_city_to_itself_is_zero() -> None:
    assert _distance("nairobi", "nairobi") == 0.0


def test_distance_to_the_antipode_is_half_the_earths_circumference() -> None:
    assert distance_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(20_015, rel=0.001)
    assert distance_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(20_015, rel=0.001)


# -- select_targets ----------------------------------------------------------------


NAIROBI_RINGS = {"thika": 0, "machakos": 1, "mombasa": 1, "munich": 1, "augsburg": 2}


def test_nairobi_request_reaches_thika_then_kenya_and_the_alliance_then_munichs_networks() -> None:
    assert rings_from("nairobi") == NAIROBI_RINGS


def test_targets_carry_their_distance_rounded_to_a_tenth_of_a_km() -> None:
    targets = select_targets(POINTS[IDS["nairobi"]], POINTS, MEMBERSHIPS, RADIUS_KM)
    by_slug = {SLUGS[t.city_id]: t for t in targets}
    assert by_slug["thika"].distance_km == round(_distance("nairobi", "thika"), 1)
    assert by_slug["mombasa"].distance_km == round(_distance("nairobi", "mombasa"), 1)
    assert [t.city_id for t in targets] == sorted(t.city_id for t in targets)


@pytest.mark.parametrize("origin", sorted(set(CITIES) - {"berlin"}))
def test_city_in_no_network_the_origin_can_reach_is_never_a_target(origin: str) -> None:
    assert "berlin" not in rings_from(origin)


def test_munich_request_reaches_its_networks_first_and_kenya_through_nairobi() -> None:
    # Augsburg is ~57 km from Munich: beyond the 50 km of ring 0.
    assert rings_from("munich") == {
        "nairobi": 1,
        "augsburg": 1,
        "thika": 2,
        "machakos": 2,
        "mombasa": 2,
    }
    assert rings_from("munich", 60.0)["augsburg"] == 0


def test_a_city_alone_in_its_network_reaches_nobody() -> None:
    assert rings_from("berlin") == {}


def test_a_city_in_no_network_reaches_nobody() -> None:
    memberships = memberships_of({"kenya": {"thika", "machakos"}})
    assert rings_from("nairobi", memberships=memberships) == {}


@pytest.mark.parametrize("origin", list(CITIES))
def test_the_origin_is_never_its_own_target(origin: str) -> None:
    for radius in (0.0, RADIUS_KM, 25_000.0):
        assert origin not in rings_from(origin, radius)


def test_a_city_in_two_networks_is_listed_once_at_its_innermost_ring() -> None:
    nets = networks()
    nets["alliance"].add("thika")  # Thika: kenya and alliance, both Nairobi's (ring 0)
    nets["germany"].add("mombasa")  # Mombasa: kenya (ring 1) and germany (ring 2)
    targets = select_targets(POINTS[IDS["nairobi"]], POINTS, memberships_of(nets), RADIUS_KM)
    slugs = [SLUGS[t.city_id] for t in targets]
    assert len(slugs) == len(set(slugs))
    rings = {SLUGS[t.city_id]: t.ring for t in targets}
    assert rings["thika"] == 0
    assert rings["mombasa"] == 1


def test_a_city_in_two_networks_bridges_them_at_ring_two() -> None:
    # Munich is in alliance (with Nairobi) and germany: putting Berlin in germany
    # makes it reachable from Nairobi, but only at the outermost ring.
    nets = networks()
    nets["germany"].add("berlin")
    assert rings_from("nairobi", memberships=memberships_of(nets))["berlin"] == 2


def test_ring_two_stops_one_network_beyond_the_networks_of_ring_one() -> None:
    # Augsburg (ring 2, through Munich's germany) also joins germany-east with Berlin:
    # germany-east has no ring-1 city, so Berlin stays out of reach.
    nets = networks()
    nets["germany-east"].add("augsburg")
    rings = rings_from("nairobi", memberships=memberships_of(nets))
    assert rings["augsburg"] == 2
    assert "berlin" not in rings


def test_ring_zero_is_only_for_cities_of_the_origins_own_networks() -> None:
    # A huge radius makes every city of Nairobi's networks ring 0, but a city of
    # Munich's other network stays ring 2 however close it is.
    nets = networks()
    nets["germany"].add("machakos")
    nets["kenya"].discard("machakos")
    rings = rings_from("nairobi", radius_km=25_000.0, memberships=memberships_of(nets))
    assert rings == {"thika": 0, "mombasa": 0, "munich": 0, "machakos": 2, "augsburg": 2}


def test_city_exactly_on_the_radius_is_in_ring_zero() -> None:
    radius = _distance("nairobi", "thika")
    assert rings_from("nairobi", radius)["thika"] == 0


def test_city_just_beyond_the_radius_is_in_ring_one() -> None:
    radius = _distance("nairobi", "thika") - 1e-6
    assert rings_from("nairobi", radius)["thika"] == 1


def test_radius_of_39_km_leaves_thika_out_and_60_km_takes_machakos_in() -> None:
    assert rings_from("nairobi", 39.0) == {**NAIROBI_RINGS, "thika": 1}
    assert rings_from("nairobi", 60.0) == {**NAIROBI_RINGS, "machakos": 0}


def test_zero_radius_keeps_only_a_city_at_the_very_same_spot_in_ring_zero() -> None:
    nets = networks()
    nets["kenya"].add(TWIN)
    rings = rings_from("nairobi", 0.0, memberships=memberships_of(nets), points=with_twin())
    assert rings == {**NAIROBI_RINGS, TWIN: 0, "thika": 1}


def test_ring_zero_is_measured_from_the_incident_location_not_the_city_hall() -> None:
    # An incident declared by Nairobi at Thika's coordinates.
    _, _, lat, lon, _ = CITIES["thika"]
    origin = CityPoint(IDS["nairobi"], lat, lon)
    targets = select_targets(origin, POINTS, MEMBERSHIPS, RADIUS_KM)
    by_slug = {SLUGS[t.city_id]: t for t in targets}
    assert by_slug["thika"].ring == 0
    assert by_slug["thika"].distance_km == 0.0
    assert by_slug["machakos"].ring == 1
    assert "nairobi" not in by_slug


def test_member_without_known_coordinates_is_skipped() -> None:
    points = {k: v for k, v in POINTS.items() if k != IDS["mombasa"]}
    assert "mombasa" not in rings_from("nairobi", points=points)


city_ids = st.integers(1, 12)


@settings(max_examples=300, deadline=None)
@given(
    origin=city_ids,
    nets=st.dictionaries(
        st.integers(1, 5), st.frozensets(city_ids, min_size=1, max_size=8), max_size=5
    ),
    coordinates=st.lists(
        st.tuples(st.floats(-60, 60), st.floats(-179, 179)), min_size=12, max_size=12
    ),
    radius=st.floats(0, 5_000),
)
def test_every_target_is_reached_once_through_a_shared_network_and_never_the_origin(
    origin: int,
    nets: dict[int, frozenset[int]],
    coordinates: list[tuple[float, float]],
    radius: float,
) -> None:
    points = {i: CityPoint(i, lat, lon) for i, (lat, lon) in enumerate(coordinates, start=1)}
    targets = select_targets(points[origin], points, nets, radius)
    ids = [t.city_id for t in targets]
    assert origin not in ids
    assert ids == sorted(set(ids))

    own = [members for members in nets.values() if origin in members]
    ring1 = set().union(*own) - {origin}
    beyond = [members for members in nets.values() if members & (ring1 | {origin})]
    assert set(ids) == set().union(*beyond) - {origin}
    for t in targets:
        assert (t.ring < 2) == (t.city_id in ring1)
        if t.ring == 0:
            assert t.distance_km <= radius + 0.05
        if t.ring == 1:
            assert t.distance_km >= radius - 0.05


# -- next_escalation_at ------------------------------------------------------------

START = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)
INTERVALS = (timedelta(minutes=30), timedelta(hours=2))


def test_a_new_request_escalates_after_the_first_interval() -> None:
    assert next_escalation_at(0, START, INTERVALS) == START + timedelta(minutes=30)


def test_ring_one_escalates_after_the_second_interval_from_when_it_entered_ring_one() -> None:
    entered = START + timedelta(minutes=31)
    assert next_escalation_at(1, entered, INTERVALS) == entered + timedelta(hours=2)


def test_the_last_ring_never_escalates() -> None:
    assert LAST_RING == 2
    assert next_escalation_at(2, START, INTERVALS) is None
    assert next_escalation_at(2, START, (*INTERVALS, timedelta(hours=9))) is None
    assert next_escalation_at(3, START, INTERVALS) is None


def test_a_ring_without_an_interval_stays_put() -> None:
    assert next_escalation_at(1, START, (timedelta(minutes=5),)) is None
    assert next_escalation_at(0, START, ()) is None


def test_due_time_keeps_the_timezone_of_its_start() -> None:
    due = next_escalation_at(0, START, INTERVALS)
    assert due is not None
    assert due.tzinfo is UTC


# -- cities_reached ----------------------------------------------------------------


NAIROBI_TARGETS = select_targets(POINTS[IDS["nairobi"]], POINTS, MEMBERSHIPS, RADIUS_KM)


def _reached(from_ring: int, to_ring: int) -> list[str]:
    return [SLUGS[c] for c in cities_reached(NAIROBI_TARGETS, from_ring, to_ring)]


def test_escalating_to_ring_one_reaches_the_rest_of_kenya_and_the_alliance() -> None:
    assert _reached(0, 1) == ["machakos", "mombasa", "munich"]


def test_escalating_to_ring_two_reaches_the_networks_of_ring_one_cities() -> None:
    assert _reached(1, 2) == ["augsburg"]


def test_jumping_two_rings_reaches_both_rings_cities() -> None:
    assert sorted(_reached(0, 2)) == ["augsburg", "machakos", "mombasa", "munich"]


def test_staying_on_a_ring_reaches_nobody_new() -> None:
    for ring in (0, 1, 2):
        assert _reached(ring, ring) == []


def test_cities_already_reached_are_not_reached_again() -> None:
    assert "thika" not in _reached(0, 2)


def test_cities_reached_are_sorted_by_id() -> None:
    targets = [Target(9, 1, 60.0), Target(3, 1, 70.0), Target(5, 2, 800.0)]
    assert cities_reached(targets, 0, 2) == [3, 5, 9]
