"""People and sign-in: invitations, roles and disabling by a city's managers (the admin
for any city), sign-up with an invitation's code, password sign-in into a session
cookie, sign-out and sign-out everywhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Request, Response, status

from realtime import control
from service import passwords
from service.account_models import (
    ManagersNeedTotp,
    PasswordChange,
    PasswordChanged,
    PersonInvite,
    PersonInvited,
    PersonPublic,
    PersonUpdate,
    SessionStarted,
    SignedOut,
    SignIn,
    SignUp,
    TotpCodeBody,
    TotpEnrolment,
)
from service.api.deps import (
    AppParts,
    CurrentActor,
    IdPath,
    IdQuery,
    Limit,
    ManagerOrAdminActor,
    Offset,
    Parts,
)
from service.commands import accounts
from service.commands import totp as totp_commands
from service.commands.context import CommandContext
from service.domain.accounts import acting_role
from service.domain.actors import SYSTEM, Actor
from service.domain.errors import Invalid
from service.models import CityPublic, Page
from service.persistence.tables import City, Person
from service.queries import city_public
from service.sessions import CSRF_COOKIE, SESSION_COOKIE

router = APIRouter()

SIGN_IN = "/auth/sign-in"
SIGN_UP = "/auth/sign-up"
# The writes a caller makes before it has a session or a token.
PUBLIC_WRITES = (("POST", SIGN_IN), ("POST", SIGN_UP))
WRONG_CREDENTIALS = "wrong email or password"
CODE_NEEDED = "this account has a second factor: send the current code of its app as `code`"


@router.post(
    "/people", response_model=PersonInvited, status_code=status.HTTP_201_CREATED, tags=["people"]
)
async def invite_person(
    body: PersonInvite, actor: ManagerOrAdminActor, parts: Parts, request: Request
) -> PersonInvited:
    """Invite a person: a city's manager into their own city, the admin into any city
    (or as another admin). The answer carries the one-time sign-up code, shown once."""
    person, code = await parts.executor.run(actor, accounts.invite_person, body)
    assert person.invite_expires_at is not None
    return PersonInvited.model_validate(
        {
            **accounts.person_public(person).model_dump(),
            "invite_code": code,
            # In the fragment, so the code never reaches a server log or a Referer.
            "invite_url": f"{request.base_url}board#signup={code}",
            "invite_expires_at": person.invite_expires_at,
        }
    )


@router.get("/people", response_model=Page[PersonPublic], tags=["people"])
async def list_people(
    actor: ManagerOrAdminActor,
    parts: Parts,
    city_id: IdQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[PersonPublic]:
    """A manager's own city's people; the admin's of every city, or of `city_id`."""
    return await parts.executor.read(actor, accounts.list_people, city_id, limit, offset)


@router.get("/people/{person_id}", response_model=PersonPublic, tags=["people"])
async def get_person(person_id: IdPath, actor: CurrentActor, parts: Parts) -> PersonPublic:
    """One person: yourself, or someone you manage."""
    return await parts.executor.read(actor, accounts.get_person, person_id)


@router.patch("/people/{person_id}", response_model=PersonPublic, tags=["people"])
async def update_person(
    person_id: IdPath, body: PersonUpdate, actor: ManagerOrAdminActor, parts: Parts
) -> PersonPublic:
    """Change a person's name or roles, or disable them: a disabled person's sessions
    end at once, and their open websockets close."""
    person, ended = await parts.executor.run(actor, accounts.update_person, person_id, body)
    _announce_ended(parts, ended)
    return accounts.person_public(person)


@router.post(SIGN_UP, response_model=PersonPublic, tags=["sign-in"])
async def sign_up(body: SignUp, parts: Parts) -> PersonPublic:
    """Use an invitation's code to choose a password (at least 12 characters, and not
    guessable). The code works once."""
    invited = await parts.executor.read(SYSTEM, accounts.find_invited, body.code)
    passwords.check_strength(body.password, [invited.email, invited.display_name])
    hashed = await to_thread.run_sync(passwords.hash_password, body.password)
    person = await parts.executor.run(SYSTEM, accounts.complete_sign_up, body.code, hashed)
    return accounts.person_public(person)


@router.post(SIGN_IN, response_model=SessionStarted, tags=["sign-in"])
async def sign_in(
    body: SignIn, parts: Parts, request: Request, response: Response
) -> SessionStarted:
    """Sign in with email and password: a new session in an HttpOnly cookie, and the
    CSRF token its writes must send as `X-CSRF-Token`.

    Failed sign-ins are counted per account name and per address, whether the account
    exists or not: past a few, each try must wait longer (429 with Retry-After), and
    then the name or address is locked for a while (429 as well).

    With the second factor on, `code` (the app's current code) is needed as well; a
    wrong or already used code counts as a failed sign-in. Where the city requires a
    second factor of its managers and this one has none, the session is `enrol_only`."""
    account_key = "account:" + accounts.normal_email(body.email)
    keys = [account_key, "address:" + (request.client.host if request.client else "?")]
    wait = await parts.executor.read(SYSTEM, accounts.wait_before_sign_in, keys)
    if wait > timedelta(0):
        raise _too_many(wait)
    found = await parts.executor.read(SYSTEM, accounts.credentials_of, body.email)
    # The same work whether or not the account exists (a decoy hash when it does not).
    matches = await to_thread.run_sync(
        passwords.verify_password, found.password_hash, body.password
    )
    if not matches or found.person_id is None:
        await parts.executor.run(SYSTEM, accounts.record_failed_sign_in, keys)
        raise _refused(WRONG_CREDENTIALS)
    if found.totp:
        if body.code is None:
            raise _refused(CODE_NEEDED)
        used = await parts.executor.run(
            SYSTEM, totp_commands.use_sign_in_code, found.person_id, body.code
        )
        if not used:
            # Counted like a wrong password, for the account and the address alike.
            await parts.executor.run(SYSTEM, accounts.record_failed_sign_in, keys)
            raise _refused(totp_commands.WRONG_CODE)
    started = await parts.executor.run(
        SYSTEM, accounts.start_session, found.person_id, account_key, found.must_enrol
    )
    set_session_cookies(response, request, started.secret, started.csrf_token)
    person = started.person
    return SessionStarted(
        user_id=person.id,
        display_name=person.display_name,
        role=acting_role(person.roles).value,
        roles=person.roles,
        city_id=person.city_id,
        csrf_token=started.csrf_token,
        enrol_only=found.must_enrol,
    )


@router.post("/auth/totp/enrol", response_model=TotpEnrolment, tags=["sign-in"])
async def enrol_totp(actor: CurrentActor, parts: Parts) -> TotpEnrolment:
    """Start a TOTP second factor: a new secret and its otpauth:// URI for an
    authenticator app, answered this once (enrolling again replaces a secret not yet
    confirmed). It is on only once `POST /auth/totp/confirm` sends a current code."""
    enrolment = await parts.executor.run(actor, totp_commands.begin_enrolment)
    return TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.uri)


@router.post("/auth/totp/confirm", response_model=PersonPublic, tags=["sign-in"])
async def confirm_totp(
    body: TotpCodeBody, actor: CurrentActor, parts: Parts, request: Request
) -> PersonPublic:
    """Turn the second factor on with a current code of the enrolled secret. From now
    on, signing in needs a code as well. Wrong codes count as failed sign-ins."""
    person = await _with_code(actor, parts, request, totp_commands.confirm_enrolment, body)
    return accounts.person_public(person)


@router.post("/auth/totp/disable", response_model=PersonPublic, tags=["sign-in"])
async def disable_totp(
    body: TotpCodeBody, actor: CurrentActor, parts: Parts, request: Request
) -> PersonPublic:
    """Turn the second factor off with a current code (refused where a city requires it
    of its managers). Wrong codes count as failed sign-ins."""
    person = await _with_code(actor, parts, request, totp_commands.turn_off, body)
    return accounts.person_public(person)


@router.put("/cities/{city_id}/managers-need-totp", response_model=CityPublic, tags=["cities"])
async def set_managers_need_totp(
    city_id: IdPath, body: ManagersNeedTotp, actor: CurrentActor, parts: Parts
) -> CityPublic:
    """The admin requires (or no longer requires) a second factor of a city's managers:
    one without it, at sign-in, may only enrol one."""
    city = await parts.executor.run(
        actor, totp_commands.set_managers_need_totp, city_id, body.required
    )
    return await parts.executor.read(SYSTEM, _city_public, city.id)


def _city_public(ctx: CommandContext, city_id: int) -> CityPublic:
    city = ctx.session.get(City, city_id)
    assert city is not None
    return city_public(ctx.session, city)


async def _with_code(
    actor: Actor,
    parts: Parts,
    request: Request,
    command: Callable[[CommandContext, str], Person],
    body: TotpCodeBody,
) -> Person:
    """Run a command that checks a TOTP code, throttled like sign-ins: per account and
    per address, slowed and then locked after wrong codes."""
    if actor.user_id is None:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="a second factor is for signed-in people: tokens have none",
        )
    _, keys = await _throttled(parts, actor, actor.user_id, request)
    try:
        return await parts.executor.run(actor, command, body.code)
    except Invalid:
        await parts.executor.run(SYSTEM, accounts.record_failed_sign_in, keys)
        raise


def _refused(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


@router.post("/auth/sign-out", response_model=SignedOut, tags=["sign-in"])
async def sign_out(actor: CurrentActor, parts: Parts, response: Response) -> SignedOut:
    """End this session (its websockets close too)."""
    session_id = _session_of(actor)
    ended = await parts.executor.run(actor, accounts.end_session, session_id)
    _announce_ended(parts, ended)
    _clear_cookies(response)
    return SignedOut(sessions_ended=len(ended))


@router.post("/auth/sign-out-everywhere", response_model=SignedOut, tags=["sign-in"])
async def sign_out_everywhere(actor: CurrentActor, parts: Parts, response: Response) -> SignedOut:
    """End every session of yours, on every device, and close their websockets."""
    _session_of(actor)
    assert actor.user_id is not None
    ended = await parts.executor.run(actor, accounts.end_sessions_of, actor.user_id)
    _announce_ended(parts, ended)
    _clear_cookies(response)
    return SignedOut(sessions_ended=len(ended))


@router.post("/auth/password", response_model=PasswordChanged, tags=["sign-in"])
async def change_password(
    body: PasswordChange, actor: CurrentActor, parts: Parts, request: Request
) -> PasswordChanged:
    """Change your password: the current one is required (a wrong one counts as a failed
    sign-in), the new one follows the sign-up rules. Your other sessions are signed out
    (and their websockets closed); this one stays signed in."""
    if actor.session_id is None or actor.user_id is None:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="a password is a signed-in person's: a token is rotated instead",
        )
    me, keys = await _throttled(parts, actor, actor.user_id, request)
    stored = await parts.executor.read(SYSTEM, accounts.password_hash_of, actor.user_id)
    if not await to_thread.run_sync(passwords.verify_password, stored, body.current_password):
        await parts.executor.run(SYSTEM, accounts.record_failed_sign_in, keys)
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN, detail="the current password is wrong"
        )
    if body.new_password == body.current_password:
        raise Invalid("the new password is the current one: choose another")
    passwords.check_strength(body.new_password, [me.email, me.display_name])
    hashed = await to_thread.run_sync(passwords.hash_password, body.new_password)
    ended = await parts.executor.run(
        actor, accounts.change_password, actor.user_id, hashed, actor.session_id
    )
    _announce_ended(parts, ended)
    return PasswordChanged(other_sessions_ended=len(ended))


def _session_of(actor: Actor) -> int:
    if actor.session_id is None:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="signing out is for sessions: a token is revoked instead",
        )
    return actor.session_id


def _announce_ended(parts: Parts, session_ids: list[int]) -> None:
    if session_ids:
        parts.executor.announce(control.sessions_ended(session_ids))


async def _throttled(
    parts: AppParts, actor: Actor, user_id: int, request: Request
) -> tuple[PersonPublic, list[str]]:
    """A signed-in person about to have a secret checked again, and the throttle's keys
    for it (their account and their address); a 429 while either is slowed or locked."""
    me = await parts.executor.read(actor, accounts.get_person, user_id)
    address = request.client.host if request.client else "?"
    keys = ["account:" + accounts.normal_email(me.email), "address:" + address]
    wait = await parts.executor.read(SYSTEM, accounts.wait_before_sign_in, keys)
    if wait > timedelta(0):
        raise _too_many(wait)
    return me, keys


def _too_many(wait: timedelta) -> HTTPException:
    seconds = max(1, math.ceil(wait.total_seconds()))
    return HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many failed sign-ins: try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def set_session_cookies(response: Response, request: Request, secret: str, csrf: str) -> None:
    """The cookies of a new session, whichever way it was signed in."""
    secure = request.url.scheme == "https"
    common = {"path": "/", "samesite": "lax", "secure": secure}
    # The session id: never readable by scripts. The CSRF token: read by the pages,
    # which send it back as a header (a cross-site page can neither read nor set it).
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)  # type: ignore[arg-type]


def _clear_cookies(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/")
