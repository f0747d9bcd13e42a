"""Sessions (issue #19, part 3): HttpOnly SameSite=Lax cookies (Secure over https) that
point at a server-side record holding only a hash of the id; a new id at every sign-in;
idle and absolute timeouts; sign-out and sign-out everywhere; CSRF refused on every
write route made with a cookie."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.routes_accounts import PUBLIC_WRITES
from service.executor import Executor
from service.main import create_app
from service.sessions import CSRF_COOKIE, SESSION_COOKIE
from service.settings import Settings
from tests.accounts.people import API, PASSWORD, Signed, make_person, sign_in
from tests.support import FakeClock, World


def _set_cookie_headers(client: TestClient, email: str) -> dict[str, str]:
    r = client.post(f"{API}/auth/sign-in", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {header.split("=", 1)[0]: header for header in r.headers.get_list("set-cookie")}


def test_the_session_cookie_is_httponly_samesite_lax_and_the_csrf_cookie_readable(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["observer"], "nairobi", "flags@nairobi.example")
    cookies = _set_cookie_headers(client, person.email)
    session = cookies[SESSION_COOKIE].lower()
    assert "httponly" in session
    assert "samesite=lax" in session
    assert "path=/" in session
    assert "secure" not in session  # served over plain http here
    csrf = cookies[CSRF_COOKIE].lower()
    assert "httponly" not in csrf and "samesite=lax" in csrf


def test_cookies_are_secure_when_served_over_https(
    settings: Settings, world: World, clock: FakeClock, executor: Executor
) -> None:
    person = make_person(executor, world, ["observer"], "nairobi", "https@nairobi.example")
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="https://aidmesh.example") as https:
        cookies = _set_cookie_headers(https, person.email)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        assert "secure" in cookies[name].lower().split("; "), cookies[name]


def test_only_a_hash_of_the_session_id_is_stored_and_each_sign_in_gets_a_new_id(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["observer"], "nairobi", "hash@nairobi.example")
    # A session id planted before sign-in (fixation) is not the one sign-in hands out.
    planted = "ams_" + "A" * 43
    client.cookies.set(SESSION_COOKIE, planted)
    first = sign_in(client, person.email)
    second = sign_in(client, person.email)
    assert len({planted, first.session, second.session}) == 3
    with executor.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT id_hash, csrf_hash FROM user_sessions")).all()
    assert len(stored) == 2
    for session in (first.session, second.session):
        assert all(session not in row.id_hash for row in stored)
    for csrf in (first.csrf, second.csrf):
        assert all(csrf != row.csrf_hash for row in stored)
    assert (
        client.get(f"{API}/me", headers={"Cookie": f"{SESSION_COOKIE}={planted}"}).status_code
        == 401
    )


def test_a_session_ends_after_the_idle_timeout(
    client: TestClient, world: World, executor: Executor, clock: FakeClock, settings: Settings
) -> None:
    person = make_person(executor, world, ["observer"], "nairobi", "idle@nairobi.example")
    signed = sign_in(client, person.email)
    idle = timedelta(seconds=settings.session_idle_timeout_s)
    clock.advance(idle - timedelta(seconds=1))
    assert client.get(f"{API}/me", headers=signed.read).status_code == 200  # and seen again
    clock.advance(idle - timedelta(seconds=1))
    assert client.get(f"{API}/me", headers=signed.read).status_code == 200
    clock.advance(idle)
    r = client.get(f"{API}/me", headers=signed.read)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_a_session_ends_at_the_absolute_timeout_however_busy(
    client: TestClient, world: World, executor: Executor, clock: FakeClock, settings: Settings
) -> None:
    person = make_person(executor, world, ["observer"], "nairobi", "busy@nairobi.example")
    signed = sign_in(client, person.email)
    step = timedelta(seconds=settings.session_idle_timeout_s) / 2
    lived = timedelta(0)
    absolute = timedelta(seconds=settings.session_absolute_timeout_s)
    while lived + step < absolute:
        clock.advance(step)
        lived += step
        assert client.get(f"{API}/me", headers=signed.read).status_code == 200, lived
    clock.advance(absolute - lived)
    assert client.get(f"{API}/me", headers=signed.read).status_code == 401


def test_sign_out_ends_one_session_and_sign_out_everywhere_all_of_that_persons(
    client: TestClient, world: World, executor: Executor
) -> None:
    person = make_person(executor, world, ["responder"], "thika", "everywhere@thika.example")
    other = make_person(executor, world, ["responder"], "thika", "other@thika.example")
    laptop, phone, tablet = (sign_in(client, person.email) for _ in range(3))
    theirs = sign_in(client, other.email)
    r = client.post(f"{API}/auth/sign-out", headers=laptop.write)
    assert r.status_code == 200 and r.json() == {"sessions_ended": 1}
    assert {c.split("=")[0] for c in r.headers.get_list("set-cookie")} == {
        SESSION_COOKIE,
        CSRF_COOKIE,
    }  # both cleared
    assert client.get(f"{API}/me", headers=laptop.read).status_code == 401
    assert client.get(f"{API}/me", headers=phone.read).status_code == 200
    r = client.post(f"{API}/auth/sign-out-everywhere", headers=phone.write)
    assert r.status_code == 200 and r.json() == {"sessions_ended": 2}
    for ended in (phone, tablet):
        assert client.get(f"{API}/me", headers=ended.read).status_code == 401
    assert client.get(f"{API}/me", headers=theirs.read).status_code == 200
    # A token is revoked, not signed out.
    r = client.post(f"{API}/auth/sign-out", headers=world.headers("responder", "thika"))
    assert r.status_code == 403


# CSRF ----------------------------------------------------------------------------------


def _write_routes(client: TestClient) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    public = {(m, API + p) for m, p in PUBLIC_WRITES}
    routes = [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith(API)
        for method in operations
        if method.upper() in {"POST", "PUT", "PATCH", "DELETE"}
    ]
    return sorted(set(routes) - public)


@pytest.fixture
def admin_session(client: TestClient, world: World, executor: Executor) -> Iterator[Signed]:
    person = make_person(executor, world, ["admin"], None, "root@network.example")
    yield sign_in(client, person.email)


def test_every_cookie_authenticated_write_route_refuses_a_missing_or_wrong_csrf_token(
    client: TestClient, admin_session: Signed, executor: Executor
) -> None:
    routes = _write_routes(client)
    assert len(routes) >= 30
    with executor.db.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    for method, template in routes:
        path = template.replace("{", "").replace("}", "")
        path = "/".join(
            "1" if part.endswith("_id") or part in ("id", "attempt") else part
            for part in path.split("/")
        )
        for headers in (
            admin_session.read,  # no token at all
            {**admin_session.read, "X-CSRF-Token": "not-the-token"},
            {**admin_session.read, "X-CSRF-Token": ""},
        ):
            r = client.request(method, path, json={}, headers={**headers, "Idempotency-Key": "k"})
            assert r.status_code == 403, (method, template, r.status_code, r.text)
            assert "X-CSRF-Token" in r.json()["detail"], (method, template)
    with executor.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == before
    # The control: with the session's token the same caller writes.
    r = client.post(
        f"{API}/networks", json={"slug": "csrf-ok", "name": "CSRF ok"}, headers=admin_session.write
    )
    assert r.status_code == 201, r.text


def test_a_csrf_token_of_another_session_is_refused(
    client: TestClient, world: World, executor: Executor, admin_session: Signed
) -> None:
    person = make_person(executor, world, ["manager"], "nairobi", "mgr@nairobi.example")
    theirs = sign_in(client, person.email)
    mixed = {**admin_session.read, "X-CSRF-Token": theirs.csrf}
    r = client.post(f"{API}/networks", json={"slug": "mixed", "name": "Mixed"}, headers=mixed)
    assert r.status_code == 403


def test_token_callers_need_no_csrf_token(client: TestClient, world: World) -> None:
    r = client.post(
        f"{API}/networks",
        json={"slug": "by-token", "name": "By token"},
        headers=world.headers("admin"),
    )
    assert r.status_code == 201, r.text
