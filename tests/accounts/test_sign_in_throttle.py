"""Password guessing (issue #19, part 2; RELIABILITY S12): failed sign-ins are slowed per
account and per address (429 with Retry-After), then locked for a while, and nothing in
the answers tells an existing account from an unknown one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.domain.accounts import Throttle, ThrottleRule, after_failure, wait_before_try
from service.executor import Executor
from service.main import create_app
from service.settings import Settings
from tests.accounts.people import API, PASSWORD, make_person
from tests.support import FakeClock, World

WRONG = "not-the-password-at-all-42"


def _try(client: TestClient, email: str, password: str = WRONG) -> Response:
    return client.post(f"{API}/auth/sign-in", json={"email": email, "password": password})


def _at(settings: Settings, clock: FakeClock, address: str) -> TestClient:
    return TestClient(create_app(settings, clock=clock), client=(address, 50000))


def _guess_until_locked(
    client: TestClient, clock: FakeClock, settings: Settings, email: str | None = None
) -> list[tuple[int, str, str | None]]:
    """Guess wrong passwords (for `email`, or a new account name each time), waiting
    out each Retry-After, until the lock; every answer."""
    answers: list[tuple[int, str, str | None]] = []
    for n in range(4 * settings.sign_in_lock_after):
        r = _try(client, email or f"sprayed-{n}@nairobi.example")
        retry_after = r.headers.get("Retry-After")
        answers.append((r.status_code, r.json()["detail"], retry_after))
        if r.status_code == 429:
            wait = int(retry_after or 0)
            if wait >= settings.sign_in_lock_s - 1:
                return answers
            clock.advance(timedelta(seconds=wait))
    raise AssertionError(f"never locked: {answers}")


@pytest.fixture
def person(executor: Executor, world: World) -> str:
    return make_person(executor, world, ["manager"], "nairobi", "guessed@nairobi.example").email


def test_guessing_one_account_gets_429_with_retry_after_then_a_lock_even_for_the_right_password(
    settings: Settings, clock: FakeClock, person: str
) -> None:
    with _at(settings, clock, "192.0.2.10") as client:
        statuses = []
        for _ in range(settings.sign_in_free_failures):
            statuses.append(_try(client, person).status_code)
        assert statuses == [401] * settings.sign_in_free_failures
        slowed = _try(client, person)
        assert slowed.status_code == 429
        assert int(slowed.headers["Retry-After"]) >= 1
        # The right password is not even checked while the account must wait.
        assert _try(client, person, PASSWORD).status_code == 429
        answers = _guess_until_locked(client, clock, settings, person)
        locked = answers[-1]
        assert locked[0] == 429 and int(locked[2] or 0) >= settings.sign_in_lock_s - 1
        assert _try(client, person, PASSWORD).status_code == 429
        # From another address the account is still locked (per account, not only address).
    with _at(settings, clock, "198.51.100.7") as elsewhere:
        assert _try(elsewhere, person, PASSWORD).status_code == 429
        clock.advance(timedelta(seconds=settings.sign_in_lock_s))
        assert _try(elsewhere, person, PASSWORD).status_code == 200


def test_guessing_many_accounts_from_one_address_gets_429_then_a_lock(
    settings: Settings, clock: FakeClock, person: str
) -> None:
    with _at(settings, clock, "203.0.113.5") as client:
        answers = _guess_until_locked(client, clock, settings)
        free = settings.sign_in_free_failures
        assert [status for status, _, _ in answers[:free]] == [401] * free
        assert answers[free][0] == 429
        r = _try(client, person, PASSWORD)  # a real account, from the locked address
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= settings.sign_in_lock_s - 1
    with _at(settings, clock, "203.0.113.6") as other_address:
        assert _try(other_address, person, PASSWORD).status_code == 200


def test_an_existing_and_an_unknown_account_get_the_same_answers(
    settings: Settings, clock: FakeClock, person: str
) -> None:
    start = clock.now
    with _at(settings, clock, "192.0.2.20") as client:
        known = _guess_until_locked(client, clock, settings, person)
    clock.now = start
    with _at(settings, clock, "192.0.2.21") as client:
        unknown = _guess_until_locked(client, clock, settings, "nobody@nairobi.example")
    assert known == unknown
    assert {status for status, _, _ in known} == {401, 429}


def test_a_disabled_or_not_yet_signed_up_person_gets_the_same_answer_as_a_wrong_password(
    client: TestClient, world: World
) -> None:
    r = client.post(
        f"{API}/people",
        json={"email": "pending@thika.example", "display_name": "Pending", "roles": ["observer"]},
        headers=world.headers("manager", "thika"),
    )
    assert r.status_code == 201
    pending = _try(client, "pending@thika.example", PASSWORD)
    unknown = _try(client, "never@thika.example", PASSWORD)
    assert (
        (pending.status_code, pending.json())
        == (unknown.status_code, unknown.json())
        == (
            401,
            {"detail": "wrong email or password"},
        )
    )


# The rule itself -------------------------------------------------------------------------

RULE = ThrottleRule(free=2, lock_after=5, lock_for=timedelta(minutes=15))


def _failures(n: int, clock: FakeClock) -> Throttle | None:
    state = None
    for _ in range(n):
        state = after_failure(state, clock.now, RULE)
    return state


def test_the_wait_doubles_after_the_free_failures_and_the_lock_comes_at_lock_after(
    clock: FakeClock,
) -> None:
    assert wait_before_try(_failures(1, clock), clock.now, RULE) == timedelta(0)
    assert wait_before_try(_failures(2, clock), clock.now, RULE) == timedelta(seconds=1)
    assert wait_before_try(_failures(3, clock), clock.now, RULE) == timedelta(seconds=2)
    assert wait_before_try(_failures(4, clock), clock.now, RULE) == timedelta(seconds=4)
    locked = _failures(5, clock)
    assert locked is not None and locked.locked_until == clock.now + RULE.lock_for
    assert wait_before_try(locked, clock.now, RULE) == RULE.lock_for
    later = clock.now + RULE.lock_for
    assert wait_before_try(locked, later, RULE) == timedelta(0)
    assert after_failure(locked, later, RULE).failures == 1  # the lock ran out: afresh


def test_old_failures_are_forgotten(clock: FakeClock) -> None:
    state = _failures(4, clock)
    much_later = clock.now + RULE.forget_after
    assert wait_before_try(state, much_later, RULE) == timedelta(0)
    assert after_failure(state, much_later, RULE).failures == 1
