"""Signing in with an OpenID Connect provider (issue #19), against a real, certified
provider (npm's oidc-provider, run by Node.js on a loopback port): the code flow with
PKCE, state and nonce; groups mapped to a city and roles; an unmapped person, a tampered
or replayed state and an expired sign-in refused; and the provider's configuration,
whose client secret is never answered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import col, select

from service.commands.oidc import CALLBACK_PATH
from service.persistence.tables import ExternalIdentity, PendingSignIn, Person
from service.sessions import CSRF_COOKIE, SESSION_COOKIE
from service.settings import Settings
from tests.accounts.oidc import PEOPLE, provider_body, sign_in_at_provider, start_provider
from tests.accounts.people import API, make_person
from tests.procs import OidcProvider
from tests.support import FakeClock, World, missing

BASE = "http://testserver"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OidcProvider, str]]:
    if OidcProvider.node() is None:
        missing("the OpenID Connect tests need Node.js (node and npm)")
    running, secret = start_provider(tmp_path_factory.mktemp("oidc"), [BASE + CALLBACK_PATH])
    try:
        yield running, secret
    finally:
        running.stop()


@pytest.fixture
def provider_id(client: TestClient, world: World, provider: tuple[OidcProvider, str]) -> int:
    """Nairobi's own provider, with the groups-to-roles rules of tests/accounts/oidc.py."""
    running, secret = provider
    r = client.put(
        f"{API}/cities/{world.city_ids['nairobi']}/sign-in-provider",
        json=provider_body(running, secret),
        headers=world.headers("admin"),
    )
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def _to_provider(client: TestClient, provider_id: int, next_path: str = "/board") -> str:
    r = client.get(
        f"/auth/oidc/{provider_id}/start", params={"next": next_path}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


def _back(client: TestClient, callback_url: str) -> Response:
    return client.get(callback_url.removeprefix(BASE), follow_redirects=False)


def _sign_in(
    client: TestClient, provider_id: int, login: str, next_path: str = "/board"
) -> Response:
    callback = sign_in_at_provider(_to_provider(client, provider_id, next_path), login, BASE)
    return _back(client, callback)


def test_the_trip_to_the_provider_asks_a_code_with_pkce_s256_state_and_nonce(
    client: TestClient, provider_id: int, provider: tuple[OidcProvider, str]
) -> None:
    location = _to_provider(client, provider_id)
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(provider[0].issuer + "/auth?")
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [BASE + CALLBACK_PATH]
    assert "openid" in query["scope"][0].split()
    assert query["state"][0] != query["nonce"][0]
    # The verifier never leaves the server; the state's cookie is this browser's.
    assert "code_verifier" not in query
    assert client.cookies.get("aidmesh_oidc_state") == query["state"][0]


def test_a_mapped_person_signs_in_with_the_roles_of_their_groups(
    client: TestClient, world: World, provider_id: int
) -> None:
    r = _sign_in(client, provider_id, "bruno", "/manage")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/manage"
    set_cookie = " ".join(r.headers.get_list("set-cookie"))
    assert f"{SESSION_COOKIE}=" in set_cookie and "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie or "samesite=lax" in set_cookie.lower()
    csrf = client.cookies[CSRF_COOKIE]
    me = client.get(f"{API}/me").json()
    assert (me["role"], me["city_id"]) == ("manager", world.city_ids["nairobi"])
    person = client.get(f"{API}/people/{me['user_id']}").json()
    assert person["roles"] == ["manager", "responder"]
    assert (person["email"], person["display_name"]) == (
        PEOPLE["bruno"]["email"],
        PEOPLE["bruno"]["name"],
    )
    assert person["signed_up"] is False  # no password: the provider is the way in
    # The session is a full one: its writes go through with the CSRF token.
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "Signed in with the provider"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 201, r.text


def test_signing_in_again_finds_the_same_person_by_issuer_and_subject(
    client: TestClient, world: World, provider_id: int
) -> None:
    first = _sign_in(client, provider_id, "amina")
    first_session = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    second = _sign_in(client, provider_id, "amina")
    assert first.status_code == second.status_code == 303
    assert client.cookies[SESSION_COOKIE] != first_session  # a new session id each time
    with world.executor.db.read() as session:
        people = session.exec(
            select(Person).where(col(Person.email) == PEOPLE["amina"]["email"])
        ).all()
        identities = session.exec(select(ExternalIdentity)).all()
    assert len(people) == 1 and people[0].roles == ["responder"]
    assert [(i.subject, i.person_id) for i in identities] == [("amina", people[0].id)]


def test_an_invited_person_with_the_providers_verified_email_is_linked_not_doubled(
    client: TestClient, world: World, provider_id: int
) -> None:
    invited = make_person(world.executor, world, ["observer"], "nairobi", PEOPLE["amina"]["email"])
    r = _sign_in(client, provider_id, "amina")
    assert r.status_code == 303, r.text
    me = client.get(f"{API}/me").json()
    assert me["user_id"] == invited.id
    assert me["role"] == "responder"  # the provider's groups decide from now on


def test_an_unmapped_person_gets_no_account_and_no_session(
    client: TestClient, world: World, provider_id: int
) -> None:
    r = _sign_in(client, provider_id, "zawadi")
    assert r.status_code == 403
    assert "Your account is not yet mapped" in r.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get(f"{API}/me").status_code == 401
    with world.executor.db.read() as session:
        assert session.exec(select(Person).where(col(Person.email).contains("zawadi"))).all() == []
        assert session.exec(select(ExternalIdentity)).all() == []


def test_a_tampered_state_is_refused_and_the_real_one_still_works_once(
    client: TestClient, provider_id: int
) -> None:
    callback = sign_in_at_provider(_to_provider(client, provider_id), "amina", BASE)
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    state = query["state"]
    tampered = {**query, "state": state[:-1] + ("A" if state[-1] != "A" else "B")}
    r = client.get(f"{parts.path}?{urlencode(tampered)}", follow_redirects=False)
    assert r.status_code == 400
    assert "did not start in this browser, or its address was changed" in r.text
    assert SESSION_COOKIE not in client.cookies
    # A state the server never gave, even with a matching cookie, is refused too.
    client.cookies.set("aidmesh_oidc_state", tampered["state"], path="/auth/oidc")
    r = client.get(f"{parts.path}?{urlencode(tampered)}", follow_redirects=False)
    assert r.status_code == 400 and "unknown or was used already" in r.text
    assert SESSION_COOKIE not in client.cookies


def test_a_state_works_once(client: TestClient, provider_id: int) -> None:
    callback = sign_in_at_provider(_to_provider(client, provider_id), "amina", BASE)
    state_cookie = client.cookies["aidmesh_oidc_state"]
    assert _back(client, callback).status_code == 303
    client.cookies.clear()
    client.cookies.set("aidmesh_oidc_state", state_cookie, path="/auth/oidc")
    r = _back(client, callback)
    assert r.status_code == 400
    assert SESSION_COOKIE not in client.cookies


def test_a_sign_in_that_took_too_long_is_refused(
    client: TestClient, world: World, provider_id: int, clock: FakeClock, settings: Settings
) -> None:
    callback = sign_in_at_provider(_to_provider(client, provider_id), "amina", BASE)
    clock.advance(timedelta(seconds=settings.oidc_sign_in_ttl_s + 1))
    r = _back(client, callback)
    assert r.status_code == 400
    assert "This sign-in has expired" in r.text
    assert SESSION_COOKIE not in client.cookies
    with world.executor.db.read() as session:
        assert session.exec(select(PendingSignIn)).all() == []  # used up all the same


def test_the_providers_refusal_is_shown_and_makes_no_session(
    client: TestClient, provider_id: int
) -> None:
    r = client.get(f"{CALLBACK_PATH}?error=access_denied&state=whatever", follow_redirects=False)
    assert r.status_code == 401
    assert "It answered access_denied." in r.text
    assert SESSION_COOKIE not in client.cookies


def test_a_forged_code_is_refused_by_the_provider(client: TestClient, provider_id: int) -> None:
    callback = sign_in_at_provider(_to_provider(client, provider_id), "amina", BASE)
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    r = client.get(
        f"{parts.path}?{urlencode({**query, 'code': 'forged-' + query['code'][7:]})}",
        follow_redirects=False,
    )
    assert r.status_code == 502
    assert "refused the code (invalid_grant)" in r.text
    assert SESSION_COOKIE not in client.cookies


# Configuration ------------------------------------------------------------------------


def test_the_client_secret_is_never_answered(
    client: TestClient, world: World, provider: tuple[OidcProvider, str]
) -> None:
    running, secret = provider
    nairobi = world.city_ids["nairobi"]
    path = f"{API}/cities/{nairobi}/sign-in-provider"
    manager = world.headers("manager", "nairobi")
    answers = [client.put(path, json=provider_body(running, secret), headers=manager)]
    # Left out later, the stored secret is kept.
    answers.append(
        client.put(path, json=provider_body(running, None, label="EMS"), headers=manager)
    )
    answers.append(client.get(path, headers=manager))
    for r in answers:
        assert r.status_code == 200, r.text
        assert secret not in r.text
    body = answers[-1].json()
    assert body["client_secret_set"] is True and body["label"] == "EMS"
    assert body["redirect_uri"] == BASE + CALLBACK_PATH
    assert body["rules"][0] == {
        "claim": "groups",
        "value": "nairobi-dispatch",
        "city_id": nairobi,
        "roles": ["responder"],
    }
    buttons = client.get("/auth/oidc/providers").json()
    assert buttons == [
        {"id": body["id"], "label": "EMS", "start_url": f"/auth/oidc/{body['id']}/start"}
    ]
    assert client.delete(path, headers=manager).status_code == 204
    assert client.get(path, headers=manager).status_code == 404
    assert client.get("/auth/oidc/providers").json() == []


def test_a_first_provider_needs_its_secret(
    client: TestClient, world: World, provider: tuple[OidcProvider, str]
) -> None:
    r = client.put(
        f"{API}/cities/{world.city_ids['nairobi']}/sign-in-provider",
        json=provider_body(provider[0], None),
        headers=world.headers("admin"),
    )
    assert r.status_code == 422
    assert "client_secret" in r.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"rules": [{"claim": "groups", "value": "x", "roles": ["admin"]}]}, "roles"),
        ({"issuer": "http://idp.example.org"}, "https"),
        ({"issuer": "https://user:pw@idp.example.org"}, "credentials"),
    ],
)
def test_a_provider_grants_city_roles_only_and_is_reached_over_https(
    client: TestClient, world: World, change: dict[str, object], error: str
) -> None:
    body = {
        "label": "EMS",
        "issuer": "https://idp.example.org",
        "client_id": "aidmesh",
        "client_secret": "s",
        **change,
    }
    r = client.put(
        f"{API}/cities/{world.city_ids['nairobi']}/sign-in-provider",
        json=body,
        headers=world.headers("admin"),
    )
    assert r.status_code == 422, r.text
    assert error in r.text


def test_a_citys_rules_map_to_that_city_only(client: TestClient, world: World) -> None:
    body = {
        "label": "EMS",
        "issuer": "https://idp.example.org",
        "client_id": "aidmesh",
        "client_secret": "s",
        "rules": [
            {
                "claim": "groups",
                "value": "x",
                "city_id": world.city_ids["thika"],
                "roles": ["observer"],
            }
        ],
    }
    r = client.put(
        f"{API}/cities/{world.city_ids['nairobi']}/sign-in-provider",
        json=body,
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 422
    assert "is not the provider's city nor a member of its network" in r.text


def test_a_networks_provider_maps_to_its_member_cities(client: TestClient, world: World) -> None:
    network = client.get(f"{API}/networks", headers=world.headers("admin")).json()["data"]
    kenya = next(n for n in network if n["slug"] == "kenya")
    path = f"{API}/networks/{kenya['id']}/sign-in-provider"
    rule = {"claim": "groups", "value": "ems", "roles": ["responder"]}
    body = {
        "label": "Kenya EMS",
        "issuer": "https://idp.example.org",
        "client_id": "aidmesh",
        "client_secret": "s",
        "rules": [{**rule, "city_id": world.city_ids["thika"]}],
    }
    r = client.put(path, json=body, headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["network_id"] == kenya["id"] and r.json()["city_id"] is None
    for rules, error in (
        ([{**rule, "city_id": world.city_ids["berlin"]}], "nor a member of its network"),
        ([rule], "a network's rule names its city_id"),
    ):
        r = client.put(path, json={**body, "rules": rules}, headers=world.headers("admin"))
        assert r.status_code == 422 and error in r.text, r.text
    r = client.put(path, json=body, headers=world.headers("manager", "nairobi"))
    assert r.status_code == 403


def test_a_networks_provider_signs_people_into_the_member_city_their_groups_name(
    client: TestClient, world: World, provider: tuple[OidcProvider, str]
) -> None:
    running, secret = provider
    networks = client.get(f"{API}/networks", headers=world.headers("admin")).json()["data"]
    kenya = next(n for n in networks if n["slug"] == "kenya")
    thika = world.city_ids["thika"]
    body = provider_body(
        running,
        secret,
        label="Kenya EMS",
        rules=[
            {
                "claim": "groups",
                "value": "nairobi-dispatch",
                "city_id": thika,
                "roles": ["observer"],
            }
        ],
    )
    r = client.put(
        f"{API}/networks/{kenya['id']}/sign-in-provider", json=body, headers=world.headers("admin")
    )
    assert r.status_code == 200, r.text
    r = _sign_in(client, int(r.json()["id"]), "amina")
    assert r.status_code == 303, r.text
    me = client.get(f"{API}/me").json()
    assert (me["role"], me["city_id"]) == ("observer", thika)
