"""Changing one's password: the current one is required, the new one follows the sign-up
rules, and the person's other sessions end."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from service.executor import Executor
from tests.accounts.people import API, PASSWORD, make_person, sign_in
from tests.support import World

NEW = "violet-harbour-93-thimble-crane"
EMAIL = "wanjiru@nairobi.example"


def _change(client: TestClient, headers: dict[str, str], current: str, new: str) -> int:
    r = client.post(
        f"{API}/auth/password",
        json={"current_password": current, "new_password": new},
        headers=headers,
    )
    assert r.status_code >= 400 or r.json()["other_sessions_ended"] >= 0, r.text
    if r.status_code >= 400:
        assert r.json()["detail"], r.text
    return r.status_code


def test_a_new_password_ends_the_other_sessions_and_keeps_this_one(
    client: TestClient, executor: Executor, world: World
) -> None:
    make_person(executor, world, ["manager"], "nairobi", EMAIL)
    here, laptop, phone = (sign_in(client, EMAIL) for _ in range(3))
    r = client.post(
        f"{API}/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=here.write,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"other_sessions_ended": 2}

    assert client.get(f"{API}/me", headers=here.read).status_code == 200
    for other in (laptop, phone):
        assert client.get(f"{API}/me", headers=other.read).status_code == 401
    r = client.post(f"{API}/auth/sign-in", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 401
    client.cookies.clear()
    assert sign_in(client, EMAIL, NEW).session


def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(
    client: TestClient, executor: Executor, world: World
) -> None:
    make_person(executor, world, ["responder"], "thika", EMAIL, name="Wanjiru Kamau")
    here, other = sign_in(client, EMAIL), sign_in(client, EMAIL)
    assert _change(client, here.write, "not-my-password-at-all", NEW) == 403
    for weak in ("short", "wanjiru kamau 1", "password1234", PASSWORD, "x" * 257, ""):
        assert _change(client, here.write, PASSWORD, weak) == 422, weak
    assert client.get(f"{API}/me", headers=other.read).status_code == 200
    assert sign_in(client, EMAIL, PASSWORD).session


def test_wrong_current_passwords_are_throttled_like_sign_ins(
    client: TestClient, executor: Executor, world: World
) -> None:
    make_person(executor, world, ["observer"], "thika", EMAIL)
    here = sign_in(client, EMAIL)
    statuses = [_change(client, here.write, f"guess-{n}", NEW) for n in range(12)]
    assert statuses[0] == 403 and 429 in statuses
    # Locked now, even with the right password.
    assert _change(client, here.write, PASSWORD, NEW) == 429


def test_a_token_or_a_write_without_the_csrf_token_cannot_change_a_password(
    client: TestClient, executor: Executor, world: World
) -> None:
    make_person(executor, world, ["manager"], "nairobi", EMAIL)
    here = sign_in(client, EMAIL)
    assert _change(client, world.headers("manager", "nairobi"), PASSWORD, NEW) == 403
    assert _change(client, here.read, PASSWORD, NEW) == 403
    assert _change(client, {}, PASSWORD, NEW) == 401
    assert sign_in(client, EMAIL, PASSWORD).session


def test_bad_password_change_bodies_are_422_and_change_nothing(
    client: TestClient, executor: Executor, world: World
) -> None:
    make_person(executor, world, ["manager"], "nairobi", EMAIL)
    here = sign_in(client, EMAIL)
    headers = {**here.write, "content-type": "application/json"}
    bodies: list[bytes] = [
        b"{",
        b"[]",
        b'"text"',
        json.dumps({"current_password": PASSWORD}).encode(),
        json.dumps({"new_password": NEW}).encode(),
        json.dumps({"current_password": PASSWORD, "new_password": 12345678901234}).encode(),
        json.dumps({"current_password": PASSWORD, "new_password": NEW, "role": "admin"}).encode(),
        b'{"current_password": "' + PASSWORD.encode() + b'", "new_password": "\\ud800abc"}',
    ]
    for body in bodies:
        r = client.post(f"{API}/auth/password", content=body, headers=headers)
        assert r.status_code in (400, 422), (body, r.status_code, r.text)
        assert r.json()["detail"], body
        assert NEW not in r.text and PASSWORD not in r.text, body
    assert sign_in(client, EMAIL, PASSWORD).session
