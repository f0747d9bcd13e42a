"""People (issue #19, part 1): a city's managers invite, disable and change the roles of
their own city's people, the admin those of any city; sign-up uses the invitation's code
once; events name the person who acted."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.executor import Executor
from tests.accounts.people import API, PASSWORD, make_person, sign_in
from tests.support import World


def test_a_manager_invites_into_their_own_city_and_the_code_signs_up_once(
    client: TestClient, world: World
) -> None:
    manager = world.headers("manager", "nairobi")
    r = client.post(
        f"{API}/people",
        json={
            "email": "Wanjiru@Nairobi.example",
            "display_name": "Wanjiru",
            "roles": ["responder"],
        },
        headers=manager,
    )
    assert r.status_code == 201, r.text
    invited = r.json()
    assert invited["city_id"] == world.city_ids["nairobi"]
    assert invited["email"] == "wanjiru@nairobi.example"
    assert invited["signed_up"] is False
    assert invited["invite_url"].endswith(f"/board#signup={invited['invite_code']}")
    code = invited["invite_code"]
    r = client.post(f"{API}/auth/sign-up", json={"code": code, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["signed_up"] is True
    again = client.post(f"{API}/auth/sign-up", json={"code": code, "password": PASSWORD})
    assert again.status_code == 404
    signed = sign_in(client, "WANJIRU@nairobi.example")
    me = client.get(f"{API}/me", headers=signed.read).json()
    assert me["user_id"] == invited["id"]
    assert me["display_name"] == "Wanjiru"
    assert (me["role"], me["city_id"], me["token_id"]) == ("responder", invited["city_id"], None)


def test_short_or_guessable_passwords_are_refused(client: TestClient, world: World) -> None:
    r = client.post(
        f"{API}/people",
        json={"email": "amani@thika.example", "display_name": "Amani", "roles": ["observer"]},
        headers=world.headers("manager", "thika"),
    )
    code = r.json()["invite_code"]
    for weak in ("short-pw-1", "password1234", "amani@thika.example", "qwertyuiop123"):
        r = client.post(f"{API}/auth/sign-up", json={"code": code, "password": weak})
        assert r.status_code == 422, (weak, r.text)
    # The code is still good after the refusals.
    ok = client.post(f"{API}/auth/sign-up", json={"code": code, "password": PASSWORD})
    assert ok.status_code == 200, ok.text


def test_a_manager_manages_only_their_own_citys_people_and_makes_no_admin(
    client: TestClient, world: World, executor: Executor
) -> None:
    thika_person = make_person(executor, world, ["responder"], "thika", "kamau@thika.example")
    own = make_person(executor, world, ["observer"], "nairobi", "achieng@nairobi.example")
    manager = world.headers("manager", "nairobi")
    listed = client.get(f"{API}/people", headers=manager).json()
    assert [p["id"] for p in listed["data"]] == [own.id]
    assert client.get(f"{API}/people/{thika_person.id}", headers=manager).status_code == 404
    r = client.patch(f"{API}/people/{thika_person.id}", json={"disabled": True}, headers=manager)
    assert r.status_code == 404
    r = client.post(
        f"{API}/people",
        json={
            "email": "x@t.example",
            "display_name": "X",
            "roles": ["responder"],
            "city_id": world.city_ids["thika"],
        },
        headers=manager,
    )
    assert r.status_code == 403
    r = client.post(
        f"{API}/people",
        json={"email": "y@t.example", "display_name": "Y", "roles": ["admin"]},
        headers=manager,
    )
    assert r.status_code == 403
    r = client.patch(f"{API}/people/{own.id}", json={"roles": ["admin"]}, headers=manager)
    assert r.status_code == 403
    r = client.patch(
        f"{API}/people/{own.id}", json={"roles": ["manager", "responder"]}, headers=manager
    )
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["manager", "responder"]
    for role in ("responder", "observer"):
        assert (
            client.get(f"{API}/people", headers=world.headers(role, "nairobi")).status_code == 403
        )
    admin = world.headers("admin")
    r = client.get(f"{API}/people", headers=admin)
    assert r.status_code == 200, r.text
    everyone = r.json()
    assert {p["id"] for p in everyone["data"]} == {own.id, thika_person.id}
    by_city = client.get(
        f"{API}/people", params={"city_id": world.city_ids["thika"]}, headers=admin
    ).json()
    assert [p["id"] for p in by_city["data"]] == [thika_person.id]
    r = client.patch(f"{API}/people/{thika_person.id}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True


def test_roles_must_fit_the_city(client: TestClient, world: World) -> None:
    admin = world.headers("admin")
    cases = [
        {"email": "a@x.example", "display_name": "A", "roles": ["manager"]},  # no city
        {
            "email": "b@x.example",
            "display_name": "B",
            "roles": ["admin"],
            "city_id": world.city_ids["thika"],
        },
        {"email": "c@x.example", "display_name": "C", "roles": ["admin", "manager"]},
        {"email": "d@x.example", "display_name": "D", "roles": []},
        {
            "email": "e@x.example",
            "display_name": "E",
            "roles": ["mayor"],
            "city_id": world.city_ids["thika"],
        },
    ]
    for body in cases:
        r = client.post(f"{API}/people", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
    r = client.post(
        f"{API}/people",
        json={"email": "root@x.example", "display_name": "Root", "roles": ["admin"]},
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["city_id"] is None
    dup = client.post(
        f"{API}/people",
        json={"email": "ROOT@x.example", "display_name": "R", "roles": ["admin"]},
        headers=admin,
    )
    assert dup.status_code == 409


def test_disabling_a_person_ends_their_sessions(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["responder"], "nairobi", "otieno@nairobi.example")
    signed = sign_in(client, person.email)
    assert client.get(f"{API}/me", headers=signed.read).status_code == 200
    r = client.patch(
        f"{API}/people/{person.id}",
        json={"disabled": True},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 200, r.text
    assert client.get(f"{API}/me", headers=signed.read).status_code == 401
    r = client.post(f"{API}/auth/sign-in", json={"email": person.email, "password": PASSWORD})
    assert r.status_code == 401


def test_events_and_the_audit_trail_name_the_person_who_acted(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(
        executor, world, ["manager"], "nairobi", "njeri@nairobi.example", name="Njeri Mwangi"
    )
    signed = sign_in(client, person.email)
    r = client.post(
        f"{API}/incidents", json={"incident_type": "flood", "title": "River"}, headers=signed.write
    )
    assert r.status_code == 201, r.text
    events = client.get(f"{API}/incidents/{r.json()['id']}/events", headers=signed.read).json()
    first = events["data"][0]
    assert first["actor_user_id"] == person.id
    assert first["actor_name"] == "Njeri Mwangi"
    assert (first["actor_role"], first["actor_city_id"]) == ("manager", world.city_ids["nairobi"])
    # A token has no person.
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "Token"},
        headers=world.headers("manager", "nairobi"),
    )
    by_token = client.get(f"{API}/incidents/{r.json()['id']}/events", headers=signed.read).json()[
        "data"
    ][0]
    assert (by_token["actor_user_id"], by_token["actor_name"]) == (None, None)
    assert by_token["actor_role"] == "manager"
