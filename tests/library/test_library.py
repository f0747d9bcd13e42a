"""The playbook library: publish, adopt, fork, lineage, newer-version notices, diffs,
visibility by network, and versions that never change once published."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from tests.library.support import API, SMALL_FLOOD, publish, take, upload
from tests.support import World


def test_publishing_numbers_versions_and_links_each_to_its_parent(
    client: TestClient, world: World
) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    v1 = publish(client, world, "thika", "first")
    upload(client, world, "thika", SMALL_FLOOD.replace("quantity: 1\n", "quantity: 3\n", 1))
    v2 = publish(client, world, "thika", "three sandbags")

    assert (v1["version"], v1["parent"], v1["label"]) == (1, None, "Thika, flood v1")
    assert v2["version"] == 2 and v2["parent"]["version_id"] == v1["id"]
    assert v2["change_note"] == "three sandbags" and v2["source"].count("quantity: 3") == 1
    diff = client.get(
        f"{API}/library/versions/{v2['id']}/diff", headers=world.headers("observer", "nairobi")
    ).json()
    assert diff["from_label"] == "Thika, flood v1" and diff["to_label"] == "Thika, flood v2"
    assert "-    quantity: 1\n+    quantity: 3\n" in diff["diff"]


def test_a_city_without_a_playbook_of_its_own_has_nothing_to_publish(
    client: TestClient, world: World
) -> None:
    r = client.post(
        f"{API}/cities/{world.city_ids['thika']}/library/flood",
        json={"change_note": ""},
        headers=world.headers("manager", "thika"),
    )
    assert r.status_code == 404 and "no playbook 'flood'" in r.json()["detail"]


def test_adopting_makes_the_version_the_citys_playbook_and_keeps_its_lineage(
    client: TestClient, world: World
) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    v1 = publish(client, world, "thika")

    lineage = take(client, world, "nairobi", v1["id"])

    assert lineage["lineage"] == "adopted" and lineage["label"] == "adopted from Thika, flood v1"
    assert lineage["matches_version"] is True
    mine = client.get(f"{API}/playbooks/flood", headers=world.headers("manager", "nairobi"))
    assert mine.json()["origin"] == "city"
    assert mine.json()["playbook"]["title"] == "Small flood"
    # A version republished by the adopter names the adopted version as its parent.
    own = publish(client, world, "nairobi", "as adopted")
    assert own["parent"]["label"] == "Thika, flood v1" and own["version"] == 1
    listed = client.get(f"{API}/library/lineage", headers=world.headers("manager", "nairobi"))
    assert listed.json()[0]["label"] == "published as Nairobi, flood v1"


def test_a_declaration_records_the_version_its_playbook_is(
    client: TestClient, world: World
) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    v1 = publish(client, world, "thika")
    take(client, world, "nairobi", v1["id"])
    manager = world.headers("manager", "nairobi")

    adopted = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "Flood", "playbook": "flood"},
        headers=manager,
    )
    stock = client.post(
        f"{API}/incidents",
        json={"incident_type": "wildfire", "title": "Fire", "playbook": "wildfire"},
        headers=manager,
    )

    with world.executor.db.engine.connect() as conn:
        recorded = dict(conn.execute(text("SELECT id, playbook_version_id FROM incidents")).all())
    assert recorded == {adopted.json()["id"]: v1["id"], stock.json()["id"]: None}


def test_newer_versions_are_announced_with_their_diff_until_pulled_in_or_ignored(
    client: TestClient, world: World
) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    v1 = publish(client, world, "thika")
    take(client, world, "nairobi", v1["id"])
    nairobi = world.headers("manager", "nairobi")

    def notices() -> list[dict[str, object]]:
        r = client.get(f"{API}/library/notices", headers=nairobi)
        assert r.status_code == 200, r.text
        found: list[dict[str, object]] = r.json()
        return found

    assert notices() == []
    upload(client, world, "thika", SMALL_FLOOD.replace("Small flood", "Smaller flood"))
    v2 = publish(client, world, "thika", "renamed")
    (notice,) = notices()
    assert notice["newer"]["version_id"] == v2["id"]  # type: ignore[index]
    assert notice["current"]["version_id"] == v1["id"]  # type: ignore[index]
    assert "-title: Small flood\n+title: Smaller flood\n" in str(notice["diff"])

    take(client, world, "nairobi", v2["id"], "ignore")
    assert notices() == []
    v3 = publish(client, world, "thika", "again")
    assert [n["newer"]["version_id"] for n in notices()] == [v3["id"]]  # type: ignore[index]

    pulled = take(client, world, "nairobi", v3["id"])
    assert pulled["label"] == "adopted from Thika, flood v3"
    assert notices() == []


def test_a_fork_follows_nothing(client: TestClient, world: World) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    v1 = publish(client, world, "thika")
    forked = take(client, world, "nairobi", v1["id"], "fork")
    publish(client, world, "thika", "later")

    assert forked["label"] == "forked from Thika, flood v1"
    assert (
        client.get(f"{API}/library/notices", headers=world.headers("manager", "nairobi")).json()
        == []
    )
    r = client.post(
        f"{API}/cities/{world.city_ids['nairobi']}/library/versions/{v1['id']}/ignore",
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 409


def test_the_library_shows_only_the_callers_networks_and_filters_by_them(
    client: TestClient, world: World
) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    upload(client, world, "munich", SMALL_FLOOD)
    thika = publish(client, world, "thika")
    munich = publish(client, world, "munich")

    def ids(city: str, **params: object) -> list[int]:
        r = client.get(f"{API}/library", params=params, headers=world.headers("observer", city))
        assert r.status_code == 200, r.text
        return sorted(v["id"] for v in r.json())

    assert ids("nairobi") == sorted([thika["id"], munich["id"]])  # kenya and alliance
    assert ids("machakos") == [thika["id"]]  # kenya only
    assert ids("augsburg") == [munich["id"]]  # germany
    assert ids("berlin") == []
    assert ids("nairobi", network_id=world.network_ids["kenya"]) == [thika["id"]]
    assert ids("nairobi", city_id=world.city_ids["munich"]) == [munich["id"]]
    assert ids("nairobi", incident_type="wildfire") == []
    # Hidden answers exactly as missing.
    berlin = world.headers("manager", "berlin")
    for suffix in ("", "/diff", "/dry-run"):
        hidden = client.get(f"{API}/library/versions/{thika['id']}{suffix}", headers=berlin)
        missing = client.get(f"{API}/library/versions/2147480000{suffix}", headers=berlin)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"] == missing.json()["detail"].replace(
            "2147480000", str(thika["id"])
        )
    r = client.post(
        f"{API}/cities/{world.city_ids['berlin']}/library/versions/{thika['id']}/adopt",
        headers=berlin,
    )
    assert r.status_code == 404


def test_a_version_diffs_against_stock_and_another_citys(client: TestClient, world: World) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    upload(client, world, "munich", SMALL_FLOOD.replace("[30m, 2h]", "[1h, 2h]"))
    thika = publish(client, world, "thika")
    munich = publish(client, world, "munich")
    nairobi = world.headers("observer", "nairobi")

    stock = client.get(
        f"{API}/library/versions/{thika['id']}/diff", params={"against": "stock"}, headers=nairobi
    ).json()
    other = client.get(
        f"{API}/library/versions/{thika['id']}/diff",
        params={"against": "version", "other_version_id": munich["id"]},
        headers=nairobi,
    ).json()

    assert (
        stock["from_label"] == "stock flood" and "-title: Riverine or flash flood" in stock["diff"]
    )
    assert other["from_label"] == "Munich, flood v1"
    assert "-  ring_intervals: [1h, 2h]\n+  ring_intervals: [30m, 2h]\n" in other["diff"]


def test_a_city_publishes_and_adopts_only_for_itself(client: TestClient, world: World) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    v1 = publish(client, world, "thika")
    nairobi = world.city_ids["nairobi"]
    thika = world.headers("manager", "thika")
    publish_for = client.post(
        f"{API}/cities/{nairobi}/library/flood", json={"change_note": ""}, headers=thika
    )
    adopt_for = client.post(
        f"{API}/cities/{nairobi}/library/versions/{v1['id']}/adopt", headers=thika
    )
    assert publish_for.status_code == adopt_for.status_code == 403
    lineage = client.get(f"{API}/library/lineage", headers=world.headers("manager", "nairobi"))
    assert lineage.json() == []


def test_published_versions_cannot_be_changed(client: TestClient, world: World) -> None:
    upload(client, world, "thika", SMALL_FLOOD)
    v1 = publish(client, world, "thika")
    manager = world.headers("manager", "thika")
    for method in ("PUT", "PATCH", "DELETE"):
        r = client.request(method, f"{API}/library/versions/{v1['id']}", headers=manager)
        assert r.status_code == 405, (method, r.status_code)

    with pytest.raises(DatabaseError, match="immutable"), world.executor.db.engine.begin() as conn:
        conn.execute(text("UPDATE playbook_versions SET source = 'changed'"))
    upload(client, world, "thika", SMALL_FLOOD.replace("Small", "Big"))
    assert (
        "Small flood"
        in client.get(f"{API}/library/versions/{v1['id']}", headers=manager).json()["source"]
    )
