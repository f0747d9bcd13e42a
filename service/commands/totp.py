"""The TOTP second factor: enrolment (a secret, shown once), confirming it with a code,
turning it off with a code, using a code at sign-in (once: a used step is written down),
and a city's rule that its managers sign in with one.

Each function is one transaction over a command context (its clock is the codes' clock)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, update

from service import totp
from service.commands.context import CommandContext
from service.domain.actors import Role
from service.domain.errors import Conflict, Forbidden, Invalid, NotFound
from service.persistence.tables import City, Person, UserSession

WRONG_CODE = "wrong or already used code"


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


def _own_person(ctx: CommandContext) -> Person:
    if ctx.actor.user_id is None:
        raise Forbidden("a second factor is for signed-in people: tokens have none")
    person = ctx.session.get(Person, ctx.actor.user_id)
    if person is None or person.disabled:
        raise NotFound("the account is gone or disabled")
    return person


def begin_enrolment(ctx: CommandContext) -> Enrolment:
    """A new secret for the actor (replacing one not yet confirmed); answered this once."""
    person = _own_person(ctx)
    if person.totp_enabled:
        raise Conflict("the second factor is on already: turn it off first to enrol again")
    secret = totp.new_secret()
    person.totp_secret = totp.stored(secret)
    person.totp_last_step = None
    person.updated_at = ctx.now
    ctx.session.add(person)
    return Enrolment(secret, totp.provisioning_uri(secret, person.email))


def _use(ctx: CommandContext, person: Person, code: str) -> bool:
    """Whether `code` is a current code of the person's secret not used before; if so,
    its step is written down (in the same statement that checks it) so it works once."""
    if person.totp_secret is None:
        return False
    step = totp.code_step(totp.unstored(person.totp_secret), code, ctx.now)
    if step is None:
        return False
    done = ctx.session.execute(
        update(Person)
        .where(
            col(Person.id) == person.id,
            col(Person.totp_last_step).is_(None) | (col(Person.totp_last_step) < step),
        )
        .values(totp_last_step=step)
    )
    ctx.session.refresh(person)
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def confirm_enrolment(ctx: CommandContext, code: str) -> Person:
    """Turn the second factor on with a current code of the enrolled secret; an
    enrol-only session (see `needs_enrolment`) becomes a full one."""
    person = _own_person(ctx)
    if person.totp_enabled:
        raise Conflict("the second factor is on already")
    if person.totp_secret is None:
        raise Conflict("enrol first: POST /auth/totp/enrol")
    if not _use(ctx, person, code):
        raise Invalid(WRONG_CODE)
    person.totp_enabled = True
    person.updated_at = ctx.now
    ctx.session.add(person)
    if ctx.actor.session_id is not None:
        ctx.session.execute(
            update(UserSession)
            .where(col(UserSession.id) == ctx.actor.session_id)
            .values(enrol_only=False)
        )
    ctx.session.flush()
    return person


def turn_off(ctx: CommandContext, code: str) -> Person:
    """Turn the second factor off with a current code (not where it is required)."""
    person = _own_person(ctx)
    if not person.totp_enabled:
        raise Conflict("the second factor is off already")
    if needs_totp(ctx, person):
        raise Conflict("your city requires a second factor of its managers: it stays on")
    if not _use(ctx, person, code):
        raise Invalid(WRONG_CODE)
    person.totp_enabled = False
    person.totp_secret = None
    person.totp_last_step = None
    person.updated_at = ctx.now
    ctx.session.add(person)
    ctx.session.flush()
    return person


def use_sign_in_code(ctx: CommandContext, person_id: int, code: str) -> bool:
    """Whether `code` is a good, unused code of the person's second factor (used now)."""
    person = ctx.session.get(Person, person_id)
    if person is None or not person.totp_enabled:
        return False
    return _use(ctx, person, code)


def needs_totp(ctx: CommandContext, person: Person) -> bool:
    """Whether the person must sign in with a second factor: a manager of a city that
    requires it, or an admin when the service requires it of its admins."""
    if Role.ADMIN.value in person.roles:
        return ctx.settings.admins_need_totp
    if Role.MANAGER.value in person.roles and person.city_id is not None:
        city = ctx.session.get(City, person.city_id)
        return city is not None and city.managers_need_totp
    return False


def set_managers_need_totp(ctx: CommandContext, city_id: int, required: bool) -> City:
    """The admin's switch: whether a city's managers must sign in with a second factor."""
    if not ctx.actor.is_admin:
        raise Forbidden(f"this needs an admin (you are {ctx.actor.role.value})")
    city = ctx.session.get(City, city_id)
    if city is None:
        raise NotFound(f"city {city_id} not found")
    city.managers_need_totp = required
    ctx.session.add(city)
    ctx.session.flush()
    return city
