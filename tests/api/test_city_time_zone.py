"""A city's time zone: an IANA name, checked against the time zone database, kept and
returned with the city; the pages show its incidents' local time from it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import World

API = "/api/v1"


def _city(slug: str, **extra: object) -> dict[str, object]:
    return {"slug": slug, "name": slug.title(), "country": "KE", "lat": -1.0, "lon": 37.0, **extra}


def test_a_city_keeps_its_time_zone_and_shows_it(client: TestClient, world: World) -> None:
    admin = world.headers("admin")
    made = client.post(
        f"{API}/cities", json=_city("kitui", time_zone="Africa/Nairobi"), headers=admin
    )
    assert made.status_code == 201, made.text
    assert made.json()["time_zone"] == "Africa/Nairobi"
    listed = {c["slug"]: c for c in client.get(f"{API}/cities", headers=admin).json()["data"]}
    assert listed["kitui"]["time_zone"] == "Africa/Nairobi"
    assert listed["munich"]["time_zone"] is None  # a city may leave it unset


def test_a_time_zone_that_is_not_an_iana_name_is_422(client: TestClient, world: World) -> None:
    admin = world.headers("admin")
    for bad in ("Mars/Olympus_Mons", "EAT+3", "africa/nairobi", "", "Africa/Nairobi\n", "x" * 65):
        answer = client.post(f"{API}/cities", json=_city("kitui", time_zone=bad), headers=admin)
        assert answer.status_code == 422, (bad, answer.text)
        assert "time_zone" in answer.text, answer.text
    assert "kitui" not in {
        c["slug"] for c in client.get(f"{API}/cities", headers=admin).json()["data"]
    }
