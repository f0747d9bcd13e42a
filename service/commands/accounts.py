"""Accounts: inviting and managing people, sign-up, sign-in bookkeeping and sessions.

Each function is one transaction (or one read) over a command context; the slow part
of a sign-in, hashing, happens between them, outside any transaction
(`service.accounts`)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, func, select, update

from service.account_models import PersonInvite, PersonPublic, PersonUpdate
from service.commands import totp as totp_commands
from service.commands.context import CommandContext
from service.domain import accounts as rules
from service.domain.actors import Actor
from service.domain.errors import Conflict, Forbidden, NotFound
from service.models import Page
from service.persistence.tables import City, Person, SignInThrottle, UserSession

INVITE_PREFIX = "ami_"
SESSION_PREFIX = "ams_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


def person_public(person: Person) -> PersonPublic:
    return PersonPublic.model_validate(
        {**person.model_dump(), "signed_up": person.password_hash is not None}
    )


# People -------------------------------------------------------------------------


def invite_person(ctx: CommandContext, body: PersonInvite) -> tuple[Person, str]:
    """A new person with a one-time sign-up code (returned once; only its hash is kept)."""
    rules.may_manage_people(ctx.actor)
    rules.may_grant(ctx.actor, body.roles)
    city_id = body.city_id
    if city_id is None and not ctx.actor.is_admin:
        city_id = ctx.actor.city_id  # a manager invites into their own city by default
    roles = rules.check_roles(body.roles, city_id)
    if not ctx.actor.is_admin and city_id != ctx.actor.city_id:
        raise Forbidden("a manager invites people of their own city only")
    if city_id is not None and ctx.session.get(City, city_id) is None:
        raise NotFound(f"city {city_id} not found")
    email = normal_email(body.email)
    if ctx.session.exec(select(Person.id).where(col(Person.email) == email)).first():
        raise Conflict("a person with this email already exists")
    code = INVITE_PREFIX + secrets.token_urlsafe(24)
    person = Person(
        email=email,
        display_name=body.display_name,
        city_id=city_id,
        roles=[r.value for r in roles],
        invite_hash=digest(code),
        invite_expires_at=ctx.now + timedelta(seconds=ctx.settings.invite_ttl_s),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    ctx.session.add(person)
    ctx.session.flush()
    return person, code


def has_admin_account(ctx: CommandContext) -> bool:
    admins = ctx.session.exec(select(Person.roles).where(col(Person.city_id).is_(None))).all()
    return any("admin" in roles for roles in admins)


def bootstrap_admin(ctx: CommandContext, email: str, name: str) -> tuple[Person, str]:
    """The first admin account, with a one-time sign-up code; refused once one exists."""
    if has_admin_account(ctx):
        raise Conflict("an admin account exists already: that admin invites the next ones")
    body = PersonInvite(email=email, display_name=name, roles=["admin"])
    return invite_person(ctx, body)


def managed_person(ctx: CommandContext, person_id: int) -> Person:
    """A person the actor may manage, or NotFound / Forbidden as the rules say."""
    person = ctx.session.get(Person, person_id)
    if person is None:
        rules.may_manage_city(ctx.actor, ctx.actor.city_id)  # a wrong role is still 403
        raise NotFound(f"person {person_id} not found")
    try:
        rules.may_manage_city(ctx.actor, person.city_id)
    except NotFound:
        raise NotFound(f"person {person_id} not found") from None
    return person


def update_person(
    ctx: CommandContext, person_id: int, body: PersonUpdate
) -> tuple[Person, list[int]]:
    """Change a person's name, roles or disabled flag. Disabling ends their sessions;
    returns the person and the ids of the sessions it ended."""
    person = managed_person(ctx, person_id)
    if person.id == ctx.actor.user_id and (body.disabled or body.roles is not None):
        raise Conflict("you cannot disable yourself or change your own roles")
    if body.roles is not None:
        rules.may_grant(ctx.actor, body.roles)
        roles = rules.check_roles(body.roles, person.city_id)
        person.roles = [r.value for r in roles]
    if body.display_name is not None:
        person.display_name = body.display_name
    ended: list[int] = []
    if body.disabled is not None:
        person.disabled = body.disabled
        if body.disabled:
            assert person.id is not None
            ended = end_sessions_of(ctx, person.id)
    person.updated_at = ctx.now
    ctx.session.add(person)
    ctx.session.flush()
    return person, ended


def list_people(
    ctx: CommandContext, city_id: int | None, limit: int, offset: int
) -> Page[PersonPublic]:
    """People the actor manages: a manager's own city, or any city (all, for an admin)."""
    if not ctx.actor.is_admin:
        rules.may_manage_city(ctx.actor, ctx.actor.city_id)
        if city_id is not None and city_id != ctx.actor.city_id:
            raise NotFound(f"city {city_id} not found")
        city_id = ctx.actor.city_id
    where = [] if city_id is None else [col(Person.city_id) == city_id]
    count = ctx.session.exec(select(func.count()).select_from(Person).where(*where)).one()
    rows = ctx.session.exec(
        select(Person).where(*where).order_by(col(Person.id)).limit(limit).offset(offset)
    ).all()
    end = offset + len(rows)
    return Page[PersonPublic](
        data=[person_public(p) for p in rows],
        count=count,
        limit=limit,
        offset=offset,
        next_offset=end if end < count else None,
    )


def get_person(ctx: CommandContext, person_id: int) -> PersonPublic:
    if ctx.actor.user_id == person_id:
        person = ctx.session.get(Person, person_id)
        assert person is not None
        return person_public(person)
    return person_public(managed_person(ctx, person_id))


# Sign-up --------------------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    person_id: int
    email: str
    display_name: str


def find_invited(ctx: CommandContext, code: str) -> Invited:
    """The person a live sign-up code invites, or NotFound."""
    person = ctx.session.exec(
        select(Person).where(col(Person.invite_hash) == digest(code))
    ).one_or_none()
    if (
        person is None
        or person.disabled
        or person.invite_expires_at is None
        or person.invite_expires_at <= ctx.now
    ):
        raise NotFound("this sign-up code is unknown, used or expired")
    assert person.id is not None
    return Invited(person.id, person.email, person.display_name)


def complete_sign_up(ctx: CommandContext, code: str, password_hash: str) -> Person:
    """Use the code (once) and set the password whose hash is given."""
    invited = find_invited(ctx, code)
    done = ctx.session.execute(
        update(Person)
        .where(col(Person.id) == invited.person_id, col(Person.invite_hash) == digest(code))
        .values(
            password_hash=password_hash,
            invite_hash=None,
            invite_expires_at=None,
            updated_at=ctx.now,
        )
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("this sign-up code is unknown, used or expired")
    person = ctx.session.get(Person, invited.person_id, populate_existing=True)
    assert person is not None
    return person


def set_password(ctx: CommandContext, person_id: int, password_hash: str) -> None:
    """Set a person's password hash (the bootstrap; a rehash after sign-in)."""
    person = ctx.session.get(Person, person_id)
    if person is None:
        raise NotFound(f"person {person_id} not found")
    person.password_hash = password_hash
    person.updated_at = ctx.now
    ctx.session.add(person)


# Sign-in throttling ------------------------------------------------------------------


def throttle_rule(ctx: CommandContext) -> rules.ThrottleRule:
    s = ctx.settings
    return rules.ThrottleRule(
        free=s.sign_in_free_failures,
        lock_after=s.sign_in_lock_after,
        lock_for=timedelta(seconds=s.sign_in_lock_s),
    )


def _throttles(ctx: CommandContext, keys: list[str]) -> dict[str, SignInThrottle]:
    rows = ctx.session.exec(select(SignInThrottle).where(col(SignInThrottle.key).in_(keys))).all()
    return {r.key: r for r in rows}


def _state(row: SignInThrottle | None) -> rules.Throttle | None:
    if row is None:
        return None
    return rules.Throttle(row.failures, row.last_failure_at, row.locked_until)


def wait_before_sign_in(ctx: CommandContext, keys: list[str]) -> timedelta:
    """How long any of `keys` (an account name, an address) must still wait."""
    rows = _throttles(ctx, keys)
    rule = throttle_rule(ctx)
    return max(
        (rules.wait_before_try(_state(rows.get(k)), ctx.now, rule) for k in keys),
        default=timedelta(0),
    )


def record_failed_sign_in(ctx: CommandContext, keys: list[str]) -> None:
    rows = _throttles(ctx, keys)
    rule = throttle_rule(ctx)
    for key in keys:
        after = rules.after_failure(_state(rows.get(key)), ctx.now, rule)
        row = rows.get(key) or SignInThrottle(key=key, last_failure_at=ctx.now)
        row.failures = after.failures
        row.last_failure_at = after.last_failure_at
        row.locked_until = after.locked_until
        ctx.session.add(row)


@dataclass(frozen=True)
class Credentials:
    """What a sign-in compares against: None when there is no usable account."""

    person_id: int | None
    password_hash: str | None
    # The second factor is on: a sign-in needs a code too.
    totp: bool = False
    # It is required of this person and still off: the session may only enrol.
    must_enrol: bool = False


def credentials_of(ctx: CommandContext, email: str) -> Credentials:
    person = ctx.session.exec(
        select(Person).where(col(Person.email) == normal_email(email))
    ).one_or_none()
    if person is None or person.disabled or person.password_hash is None:
        return Credentials(None, None)
    must_enrol = not person.totp_enabled and totp_commands.needs_totp(ctx, person)
    return Credentials(person.id, person.password_hash, person.totp_enabled, must_enrol)


# Sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    secret: str
    csrf_token: str
    person: PersonPublic


def start_session(
    ctx: CommandContext, person_id: int, account_key: str, enrol_only: bool = False
) -> Started:
    """A new session (a new id at every sign-in: no fixation); the account's failures
    are forgotten. An `enrol_only` session may only enrol a second factor (and sign out)."""
    person = ctx.session.get(Person, person_id)
    if person is None or person.disabled:
        raise NotFound("the account is gone or disabled")
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    ctx.session.add(
        UserSession(
            id_hash=digest(secret),
            person_id=person_id,
            csrf_hash=digest(csrf),
            enrol_only=enrol_only,
            created_at=ctx.now,
            last_seen_at=ctx.now,
        )
    )
    throttled = ctx.session.get(SignInThrottle, account_key)
    if throttled is not None:
        ctx.session.delete(throttled)
    ctx.session.flush()
    return Started(secret, csrf, person_public(person))


@dataclass(frozen=True)
class SessionActor:
    actor: Actor
    csrf_hash: str  # the SHA-256 of the CSRF token its writes must send
    # The session was last seen long enough ago to be worth writing down again.
    stale: bool


def session_times(ctx: CommandContext) -> rules.SessionTimes:
    return rules.SessionTimes(
        idle=timedelta(seconds=ctx.settings.session_idle_timeout_s),
        absolute=timedelta(seconds=ctx.settings.session_absolute_timeout_s),
    )


def actor_for_session(
    ctx: CommandContext, *, secret: str | None = None, session_id: int | None = None
) -> SessionActor | None:
    """The actor of a live session of an enabled person, by its secret or its id."""
    query = select(UserSession, Person).join(Person, col(Person.id) == col(UserSession.person_id))
    if secret is not None:
        query = query.where(col(UserSession.id_hash) == digest(secret))
    else:
        query = query.where(col(UserSession.id) == session_id)
    row = ctx.session.exec(query).one_or_none()
    if row is None:
        return None
    record, person = row
    times = session_times(ctx)
    alive = rules.session_alive(
        record.created_at, record.last_seen_at, record.ended_at, ctx.now, times
    )
    if not alive or person.disabled or not person.roles:
        return None
    actor = Actor(
        role=rules.acting_role(person.roles),
        city_id=person.city_id,
        user_id=person.id,
        display_name=person.display_name,
        session_id=record.id,
        enrol_only=record.enrol_only,
    )
    # Written down at most every tenth of the idle timeout (and every minute at most),
    # not on every request.
    stale = ctx.now - record.last_seen_at >= min(times.idle / 10, timedelta(minutes=1))
    return SessionActor(actor, record.csrf_hash, stale)


def touch_session(ctx: CommandContext, session_id: int) -> None:
    ctx.session.execute(
        update(UserSession)
        .where(col(UserSession.id) == session_id, col(UserSession.ended_at).is_(None))
        .values(last_seen_at=ctx.now)
    )


def end_session(ctx: CommandContext, session_id: int) -> list[int]:
    ctx.session.execute(
        update(UserSession)
        .where(col(UserSession.id) == session_id, col(UserSession.ended_at).is_(None))
        .values(ended_at=ctx.now)
    )
    return [session_id]


def end_sessions_of(ctx: CommandContext, person_id: int) -> list[int]:
    """End every open session of a person ("sign out everywhere"); their ids."""
    ids = list(
        ctx.session.exec(
            select(UserSession.id).where(
                col(UserSession.person_id) == person_id, col(UserSession.ended_at).is_(None)
            )
        ).all()
    )
    if ids:
        ctx.session.execute(
            update(UserSession).where(col(UserSession.id).in_(ids)).values(ended_at=ctx.now)
        )
    return [int(i) for i in ids if i is not None]


def ended_among(ctx: CommandContext, session_ids: set[int]) -> set[int]:
    """Those of `session_ids` no longer alive (ended, timed out, or their person disabled)."""
    alive = {sid for sid in session_ids if actor_for_session(ctx, session_id=sid) is not None}
    return session_ids - alive


def password_hash_of(ctx: CommandContext, person_id: int) -> str | None:
    person = ctx.session.get(Person, person_id)
    return None if person is None else person.password_hash


def change_password(
    ctx: CommandContext, person_id: int, password_hash: str, keep_session_id: int
) -> list[int]:
    """Set a signed-in person's new password hash and end their other sessions (this
    one, `keep_session_id`, stays signed in); the ended sessions' ids."""
    person = ctx.session.get(Person, person_id)
    if person is None:
        raise NotFound(f"person {person_id} not found")
    person.password_hash = password_hash
    person.updated_at = ctx.now
    ctx.session.add(person)
    ids = [
        int(i)
        for i in ctx.session.exec(
            select(UserSession.id).where(
                col(UserSession.person_id) == person_id,
                col(UserSession.ended_at).is_(None),
                col(UserSession.id) != keep_session_id,
            )
        ).all()
        if i is not None
    ]
    if ids:
        ctx.session.execute(
            update(UserSession).where(col(UserSession.id).in_(ids)).values(ended_at=ctx.now)
        )
    return ids
