"""People for the accounts tests: made through the invite and sign-up commands, signed
in through the API, with the session cookie and CSRF token each test needs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from service import passwords
from service.account_models import PersonInvite
from service.commands.accounts import complete_sign_up, invite_person
from service.domain.actors import SYSTEM
from service.executor import Executor
from service.sessions import CSRF_COOKIE, SESSION_COOKIE
from tests.support import World

API = "/api/v1"
PASSWORD = "amber-kettle-orbit-47-lantern"


@cache
def password_hash() -> str:
    """Hashed once per test run, with Argon2id at its lightest (one pass over 8 MiB): the
    service verifies a hash with the cost written in it, so the many sign-ins of the
    tests stay cheap while the service's own hashes keep its default cost."""
    hashed = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert passwords.verify_password(hashed, PASSWORD)
    return hashed


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    display_name: str


def make_person(
    executor: Executor,
    world: World,
    roles: list[str],
    city: str | None,
    email: str,
    name: str | None = None,
) -> Person:
    """A person who has signed up (their password is `PASSWORD`)."""
    body = PersonInvite(
        email=email,
        display_name=name or email.split("@")[0].title(),
        roles=roles,  # type: ignore[arg-type]
        city_id=world.city_ids[city] if city else None,
    )
    (person, code), _ = executor.run_sync(SYSTEM, invite_person, body)
    executor.run_sync(SYSTEM, complete_sign_up, code, password_hash())
    assert person.id is not None
    return Person(person.id, person.email, person.display_name)


@dataclass(frozen=True)
class Signed:
    """A signed-in session: its cookie and CSRF token, as headers for each request."""

    session: str
    csrf: str

    @property
    def read(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.session}"}

    @property
    def write(self) -> dict[str, str]:
        return {**self.read, "X-CSRF-Token": self.csrf}


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Signed:
    """Sign in and take the cookies out of the client's jar (each test sends them itself,
    so that two sessions can live in one client)."""
    r = client.post(f"{API}/auth/sign-in", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    session = r.cookies[SESSION_COOKIE]
    csrf = r.cookies[CSRF_COOKIE]
    assert csrf == r.json()["csrf_token"]
    client.cookies.clear()
    return Signed(session, csrf)
