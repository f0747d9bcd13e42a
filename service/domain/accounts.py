"""Accounts as rules over plain values: which roles a person may hold, who may manage
whom, the role a person's session acts with, when a session has ended, and how failed
sign-ins are slowed and locked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.domain.actors import Actor, Role
from service.domain.errors import Forbidden, Invalid, NotFound

# When a person holds several roles, the session acts with the strongest of them.
ROLE_ORDER = (Role.ADMIN, Role.MANAGER, Role.RESPONDER, Role.OBSERVER)


def check_roles(roles: Iterable[str], city_id: int | None) -> list[Role]:
    """The roles, in `ROLE_ORDER`, if a person may hold them with that city; else `Invalid`.

    An admin belongs to no city and holds no other role; everyone else belongs to one."""
    try:
        held = {Role(r) for r in roles}
    except ValueError:
        names = ", ".join(r.value for r in ROLE_ORDER)
        raise Invalid(f"roles are {names}") from None
    if not held:
        raise Invalid("a person needs at least one role")
    if Role.ADMIN in held:
        if len(held) > 1 or city_id is not None:
            raise Invalid("an admin belongs to no city and holds no other role")
    elif city_id is None:
        raise Invalid("a manager, responder or observer needs a city_id")
    return [r for r in ROLE_ORDER if r in held]


def acting_role(roles: Iterable[str]) -> Role:
    """The role a person's session acts with: the strongest one they hold."""
    held = set(roles)
    for role in ROLE_ORDER:
        if role.value in held:
            return role
    raise Invalid("a person needs at least one role")


def may_manage_people(actor: Actor) -> None:
    """Managers (of a city) and the admin manage people; nobody else."""
    if not actor.is_admin and (actor.role is not Role.MANAGER or actor.city_id is None):
        raise Forbidden(f"this needs a manager or admin (you are {actor.role.value})")


def may_manage_city(actor: Actor, city_id: int | None) -> None:
    """A city's managers manage its people, the admin everyone's; otherwise `Forbidden`
    (or `NotFound` for another city's people, who stay hidden from a manager)."""
    may_manage_people(actor)
    if actor.is_admin:
        return
    if city_id != actor.city_id:
        raise NotFound("person not found")


def may_grant(actor: Actor, roles: Iterable[str]) -> None:
    """Only the admin makes admins."""
    if Role.ADMIN.value in set(roles) and not actor.is_admin:
        raise Forbidden("only an admin can make an admin")


@dataclass(frozen=True)
class SessionTimes:
    idle: timedelta
    absolute: timedelta


def session_alive(
    created_at: datetime,
    last_seen_at: datetime,
    ended_at: datetime | None,
    now: datetime,
    limits: SessionTimes,
) -> bool:
    """A session lives until it is ended, idle for `idle`, or `absolute` old."""
    if ended_at is not None:
        return False
    return now - last_seen_at < limits.idle and now - created_at < limits.absolute


@dataclass(frozen=True)
class ThrottleRule:
    """Failed sign-ins: the first `free` pass unhindered; each one after that must wait
    `delay` doubled per failure (up to `max_delay`) before the next try; at `lock_after`
    failures the key is locked for `lock_for`. Failures older than `forget_after` are
    forgotten."""

    free: int = 3
    delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(seconds=60)
    lock_after: int = 10
    lock_for: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Throttle:
    """One key's state: failures counted, the last one, and a lock."""

    failures: int
    last_failure_at: datetime
    locked_until: datetime | None


def wait_before_try(state: Throttle | None, now: datetime, rule: ThrottleRule) -> timedelta:
    """How long the key must still wait before a sign-in is even checked (zero: go on)."""
    if state is None or now - state.last_failure_at >= rule.forget_after:
        return timedelta(0)
    if state.locked_until is not None and now < state.locked_until:
        return state.locked_until - now
    if state.failures < rule.free or state.failures >= rule.lock_after:
        return timedelta(0)
    delay: timedelta = min(rule.delay * 2 ** (state.failures - rule.free), rule.max_delay)
    left: timedelta = state.last_failure_at + delay - now
    return max(left, timedelta(0))


def after_failure(state: Throttle | None, now: datetime, rule: ThrottleRule) -> Throttle:
    """The key's state after one more failed sign-in."""
    if state is None or now - state.last_failure_at >= rule.forget_after:
        failures = 1
    elif state.locked_until is not None and now >= state.locked_until:
        failures = 1  # the lock has run out: start again
    else:
        failures = state.failures + 1
    locked_until = now + rule.lock_for if failures >= rule.lock_after else None
    return Throttle(failures=failures, last_failure_at=now, locked_until=locked_until)
