"""The TOTP second factor (issue #19): enrolment answers the secret once, a current code
turns it on and off, sign-in then needs a code (a `code` field beside the password),
wrong codes count toward the sign-in throttle, a code works once, and a city can require
it of its managers, who may then only enrol until they have it."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import text
from starlette.websockets import WebSocketDisconnect

from service.executor import Executor
from service.main import create_app
from service.sessions import CSRF_COOKIE, SESSION_COOKIE
from service.settings import Settings
from tests.accounts.people import API, PASSWORD, Signed, make_person, sign_in
from tests.support import FakeClock, World


def _code(secret: str, clock: FakeClock, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30 * steps))


def _not(code: str) -> str:
    """A well-formed code that is not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _sign_in(client: TestClient, email: str, code: str | None = None) -> Response:
    body = {"email": email, "password": PASSWORD}
    if code is not None:
        body["code"] = code
    r = client.post(f"{API}/auth/sign-in", json=body)
    client.cookies.clear()
    return r


def _signed(r: Response) -> Signed:
    assert r.status_code == 200, r.text
    return Signed(r.cookies[SESSION_COOKIE], r.cookies[CSRF_COOKIE])


def _enrol(client: TestClient, signed: Signed, clock: FakeClock) -> str:
    r = client.post(f"{API}/auth/totp/enrol", headers=signed.write)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    uri = r.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    assert "issuer=aidmesh" in uri
    r = client.post(
        f"{API}/auth/totp/confirm", json={"code": _code(secret, clock)}, headers=signed.write
    )
    assert r.status_code == 200, r.text
    assert r.json()["totp_enabled"] is True
    assert "secret" not in r.text
    return str(secret)


def test_enrol_confirm_then_sign_in_needs_a_code_that_works_once(
    client: TestClient, world: World, executor: Executor, clock: FakeClock
) -> None:
    person = make_person(executor, world, ["responder"], "nairobi", "two@nairobi.example")
    signed = sign_in(client, person.email)
    assert (
        client.get(f"{API}/people/{person.id}", headers=signed.read).json()["totp_enabled"] is False
    )
    secret = _enrol(client, signed, clock)
    # The secret is never answered again.
    r = client.get(f"{API}/people/{person.id}", headers=signed.read)
    assert r.json()["totp_enabled"] is True and secret not in r.text
    assert client.get(f"{API}/me", headers=signed.read).status_code == 200
    # Enrolling again while on is refused (it would answer a new secret).
    assert client.post(f"{API}/auth/totp/enrol", headers=signed.write).status_code == 409

    clock.advance(timedelta(seconds=30))
    r = _sign_in(client, person.email)
    assert r.status_code == 401 and "code" in r.json()["detail"]
    assert _sign_in(client, person.email, _not(_code(secret, clock))).status_code == 401
    code = _code(secret, clock)
    _signed(_sign_in(client, person.email, code))
    # The same code again, within its window: refused (no replay).
    r = _sign_in(client, person.email, code)
    assert r.status_code == 401 and r.json()["detail"] == "wrong or already used code"
    # Nor an older step's code, once a later one was used.
    assert _sign_in(client, person.email, _code(secret, clock, -1)).status_code == 401
    # The next step's code works (a clock a little ahead), once the throttle's short
    # wait after three failures has passed.
    clock.advance(timedelta(seconds=5))
    _signed(_sign_in(client, person.email, _code(secret, clock, 1)))
    # Two steps away is too far.
    clock.advance(timedelta(seconds=60))
    assert _sign_in(client, person.email, _code(secret, clock, 2)).status_code == 401
    clock.advance(timedelta(seconds=5))
    assert _sign_in(client, person.email, _code(secret, clock, -2)).status_code == 401


def test_the_secret_is_kept_only_in_its_column_and_a_wrong_confirm_code_leaves_it_off(
    client: TestClient, world: World, executor: Executor, clock: FakeClock
) -> None:
    person = make_person(executor, world, ["observer"], "nairobi", "off@nairobi.example")
    signed = sign_in(client, person.email)
    secret = client.post(f"{API}/auth/totp/enrol", headers=signed.write).json()["secret"]
    r = client.post(
        f"{API}/auth/totp/confirm",
        json={"code": _not(_code(secret, clock))},
        headers=signed.write,
    )
    assert r.status_code == 422 and r.json()["detail"] == "wrong or already used code"
    # Not on yet: signing in needs no code.
    _signed(_sign_in(client, person.email))
    with executor.db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT totp_secret, totp_enabled FROM people WHERE id = :i"), {"i": person.id}
        ).one()
    # Stored with the prefix the log scrubber redacts.
    assert row.totp_secret == "ats_" + secret and not row.totp_enabled


def test_turning_it_off_needs_a_current_unused_code(
    client: TestClient, world: World, executor: Executor, clock: FakeClock
) -> None:
    person = make_person(executor, world, ["manager"], "nairobi", "undo@nairobi.example")
    signed = sign_in(client, person.email)
    secret = _enrol(client, signed, clock)
    used = _code(secret, clock)  # used by the confirmation
    r = client.post(f"{API}/auth/totp/disable", json={"code": used}, headers=signed.write)
    assert r.status_code == 422
    clock.advance(timedelta(seconds=30))
    r = client.post(
        f"{API}/auth/totp/disable", json={"code": _code(secret, clock)}, headers=signed.write
    )
    assert r.status_code == 200, r.text
    assert r.json()["totp_enabled"] is False
    assert (
        client.post(
            f"{API}/auth/totp/disable", json={"code": _code(secret, clock)}, headers=signed.write
        ).status_code
        == 409
    )
    _signed(_sign_in(client, person.email))


def test_tokens_have_no_second_factor_and_cookie_writes_need_csrf(
    client: TestClient, world: World, executor: Executor
) -> None:
    r = client.post(f"{API}/auth/totp/enrol", headers=world.headers("manager", "nairobi"))
    assert r.status_code == 403
    person = make_person(executor, world, ["observer"], "nairobi", "csrf@nairobi.example")
    signed = sign_in(client, person.email)
    assert client.post(f"{API}/auth/totp/enrol", headers=signed.read).status_code == 403
    assert client.post(f"{API}/auth/totp/enrol").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "12345"},
        {"code": "1234567"},
        {"code": "12a456"},
        {"code": 123456},
        {"code": "123456", "extra": 1},
    ],
)
def test_bad_code_bodies_are_422(
    client: TestClient, world: World, executor: Executor, body: dict[str, object]
) -> None:
    person = make_person(executor, world, ["observer"], "nairobi", "bad@nairobi.example")
    signed = sign_in(client, person.email)
    for path in ("/auth/totp/confirm", "/auth/totp/disable"):
        assert client.post(f"{API}{path}", json=body, headers=signed.write).status_code == 422
    if body:
        sign_in_body = {"email": person.email, "password": PASSWORD, **body}
        assert client.post(f"{API}/auth/sign-in", json=sign_in_body).status_code == 422


def test_wrong_codes_count_toward_the_sign_in_throttle_and_lock(
    settings: Settings, world: World, executor: Executor, clock: FakeClock
) -> None:
    person = make_person(executor, world, ["responder"], "nairobi", "lock@nairobi.example")
    with TestClient(create_app(settings, clock=clock), client=("192.0.2.40", 50000)) as client:
        secret = _enrol(client, sign_in(client, person.email), clock)
        statuses: list[int] = []
        for _ in range(4 * settings.sign_in_lock_after):
            clock.advance(timedelta(seconds=30))
            r = _sign_in(client, person.email, _not(_code(secret, clock)))
            statuses.append(r.status_code)
            if r.status_code == 429:
                wait = int(r.headers["Retry-After"])
                if wait >= settings.sign_in_lock_s - 31:
                    break
                clock.advance(timedelta(seconds=wait))
        else:
            raise AssertionError(f"never locked: {statuses}")
        assert statuses[: settings.sign_in_free_failures] == [401] * settings.sign_in_free_failures
        # Locked: even the right password and code wait.
        r = _sign_in(client, person.email, _code(secret, clock))
        assert r.status_code == 429
    # Another address is locked out of this account as well (the per-account count).
    with TestClient(create_app(settings, clock=clock), client=("192.0.2.41", 50000)) as other:
        assert _sign_in(other, person.email, _code(secret, clock)).status_code == 429
        clock.advance(timedelta(seconds=settings.sign_in_lock_s + 1))
        _signed(_sign_in(other, person.email, _code(secret, clock)))


def test_wrong_codes_to_turn_it_off_are_throttled_too(
    settings: Settings, world: World, executor: Executor, clock: FakeClock
) -> None:
    person = make_person(executor, world, ["responder"], "nairobi", "guess@nairobi.example")
    with TestClient(create_app(settings, clock=clock), client=("192.0.2.42", 50000)) as client:
        signed = sign_in(client, person.email)
        secret = _enrol(client, signed, clock)
        seen: set[int] = set()
        for _ in range(settings.sign_in_free_failures + 1):
            clock.advance(timedelta(seconds=30))
            r = client.post(
                f"{API}/auth/totp/disable",
                json={"code": _not(_code(secret, clock))},
                headers=signed.write,
            )
            seen.add(r.status_code)
        assert seen == {422}
        r = client.post(
            f"{API}/auth/totp/disable", json={"code": _code(secret, clock)}, headers=signed.write
        )
        assert r.status_code == 429 and "Retry-After" in r.headers


def test_a_city_that_requires_it_lets_its_managers_without_it_only_enrol(
    client: TestClient, world: World, executor: Executor, clock: FakeClock
) -> None:
    nairobi = world.city_ids["nairobi"]
    manager = make_person(executor, world, ["manager"], "nairobi", "boss@nairobi.example")
    responder = make_person(executor, world, ["responder"], "nairobi", "crew@nairobi.example")
    path = f"{API}/cities/{nairobi}/managers-need-totp"
    # Only the admin sets it.
    r = client.put(path, json={"required": True}, headers=world.headers("manager", "nairobi"))
    assert r.status_code == 403
    r = client.put(
        f"{API}/cities/999999/managers-need-totp",
        json={"required": True},
        headers=world.headers("admin"),
    )
    assert r.status_code == 404
    r = client.put(path, json={"required": True}, headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["managers_need_totp"] is True
    assert (
        client.get(f"{API}/cities/{nairobi}", headers=world.headers("admin")).json()[
            "managers_need_totp"
        ]
        is True
    )

    # A responder of that city is not concerned.
    r = _sign_in(client, responder.email)
    assert r.status_code == 200 and r.json()["enrol_only"] is False
    r = _sign_in(client, manager.email)
    assert r.status_code == 200 and r.json()["enrol_only"] is True
    limited = _signed(r)
    r = client.get(f"{API}/incidents", headers=limited.read)
    assert r.status_code == 403 and "enrol" in r.json()["detail"]
    r = client.post(f"{API}/people", headers=limited.write, json={})
    assert r.status_code == 403
    assert client.get(f"{API}/me", headers=limited.read).status_code == 200
    # Nor does the websocket let it watch the board.
    socket = {"cookie": f"{SESSION_COOKIE}={limited.session}", "origin": "http://testserver"}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws", headers=socket) as ws:
        ws.receive_json()
    secret = _enrol(client, limited, clock)
    # Enrolled: the same session is a full one now, on the websocket too.
    assert client.get(f"{API}/incidents", headers=limited.read).status_code == 200
    with client.websocket_connect("/ws", headers=socket) as ws:
        assert ws.receive_json()["type"] == "welcome"
    # It cannot be turned off while the city requires it.
    clock.advance(timedelta(seconds=30))
    r = client.post(
        f"{API}/auth/totp/disable", json={"code": _code(secret, clock)}, headers=limited.write
    )
    assert r.status_code == 409
    r = _sign_in(client, manager.email, _code(secret, clock, 1))
    assert r.status_code == 200 and r.json()["enrol_only"] is False


def test_the_service_can_require_it_of_its_admins(
    settings: Settings, world: World, executor: Executor, clock: FakeClock
) -> None:
    admin = make_person(executor, world, ["admin"], None, "chief@aidmesh.example")
    manager = make_person(executor, world, ["manager"], "nairobi", "plain@nairobi.example")
    strict = settings.model_copy(update={"admins_need_totp": True})
    with TestClient(create_app(strict, clock=clock)) as client:
        r = _sign_in(client, admin.email)
        assert r.status_code == 200 and r.json()["enrol_only"] is True
        limited = _signed(r)
        assert client.get(f"{API}/people", headers=limited.read).status_code == 403
        _enrol(client, limited, clock)
        assert client.get(f"{API}/people", headers=limited.read).status_code == 200
        # A manager of a city that does not require it is not concerned.
        assert _sign_in(client, manager.email).json()["enrol_only"] is False
