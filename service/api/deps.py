"""Dependencies every route shares: the app's parts, the database session and the calling actor."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlmodel import Session
from starlette.requests import cookie_parser
from starlette.types import Scope

from realtime.bus import EventBus
from service.domain import tokens as token_rules
from service.domain.actors import Actor, Role, role_refused
from service.edge import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_ID,
    require_command_role,
    token_shaped,
)
from service.executor import Executor
from service.logs import note_caller
from service.models import PlainDigits
from service.persistence.db import Database
from service.sessions import CSRF_HEADER, SESSION_COOKIE
from service.settings import Settings


@dataclass
class AppParts:
    """Everything the lifespan built, reachable from routes through `request.app.state.parts`."""

    settings: Settings
    db: Database
    bus: EventBus
    executor: Executor
    tickets: Any = None
    gateway: Any = None
    sweeper: Any = None
    drain: Any = None  # service.drain.Drain: set while the replica shuts down
    sessions: Any = None  # service.sessions.Sessions
    webhooks: Any = None  # service.webhooks.WebhookParts
    providers: Any = None  # service.oidc_client.ProviderClient


# Dependencies that do no I/O are coroutines: FastAPI runs a plain `def` dependency in a
# worker thread, a hop that costs more than the dependency itself.
async def get_parts(request: Request) -> AppParts:
    parts: AppParts = request.app.state.parts
    return parts


Parts = Annotated[AppParts, Depends(get_parts)]


def get_session(parts: Parts) -> Iterator[Session]:
    with parts.db.read() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="A token issued by `POST /api/v1/tokens`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


MISSING_TOKEN = "missing bearer token: send 'Authorization: Bearer <token>'"  # noqa: S105
_ACTOR = "aidmesh.actor"  # where a request's scope keeps the actor it was authenticated as


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_REFUSED = (
    "missing or wrong X-CSRF-Token header: a write made with a session cookie sends the "
    "token its sign-in gave (also in the aidmesh_csrf cookie)"
)


async def authenticate(parts: AppParts, headers: Mapping[str, str], method: str = "GET") -> Actor:
    """The actor of the request's bearer token or, without one, of its session cookie
    (a write must then carry the session's CSRF token); or a 401 (403 for CSRF)."""
    authorization = headers.get("authorization")
    if authorization is None:
        cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if cookie:
            return await _session_actor(parts, cookie, headers, method)
    scheme, secret = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized(MISSING_TOKEN)
    if not token_shaped(secret):
        raise _unauthorized("invalid or revoked token")
    # A connection of its own, returned to the pool at once: a write route must not
    # hold a read connection while its command waits for another one.
    actor = await parts.executor.tokens.actor_for_secret(secret)
    if actor is None:
        raise _unauthorized("invalid or revoked token")
    note_caller(actor.role.value, actor.city_id)
    return actor


async def _session_actor(
    parts: AppParts, cookie: str, headers: Mapping[str, str], method: str
) -> Actor:
    found = await parts.sessions.by_secret(cookie)
    if found is None:
        raise _unauthorized("session expired or signed out: sign in again")
    if method not in SAFE_METHODS:
        sent = headers.get(CSRF_HEADER, "").encode("utf-8", "replace")
        if not secrets.compare_digest(sha256(sent).hexdigest(), found.csrf_hash):
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=CSRF_REFUSED)
    actor: Actor = found.actor
    note_caller(actor.role.value, actor.city_id)
    return actor


def remember_actor(scope: Scope, actor: Actor) -> None:
    """Keep the actor for the route (the body gate authenticates before the router runs)."""
    scope.setdefault("state", {})[_ACTOR] = actor


def remembered_actor(scope: Scope) -> Actor | None:
    """The actor the body gate authenticated this request as, if it did."""
    known = scope.get("state", {}).get(_ACTOR)
    return known if isinstance(known, Actor) else None


# What a session that must first enrol a second factor may do (see `Sessions`).
ENROL_ONLY_PATHS = frozenset(
    "/api/v1" + path
    for path in (
        "/me",
        "/auth/totp/enrol",
        "/auth/totp/confirm",
        "/auth/sign-out",
        "/auth/sign-out-everywhere",
    )
)
ENROL_FIRST = (
    "a second factor is required of you: enrol one (POST /auth/totp/enrol, then "
    "POST /auth/totp/confirm) before anything else"
)


async def current_actor(
    request: Request,
    parts: Parts,
    # Declared for the OpenAPI security scheme; the header is read by `authenticate`.
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    known = remembered_actor(request.scope)
    actor = known or await authenticate(parts, request.headers, request.method)
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path).removeprefix("/api/v1")
    return admitted(actor, request.method, request.url.path, template)


def admitted(actor: Actor, method: str, path: str, template: str) -> Actor:
    """What every route asks of its caller once the credential is valid: a session that
    must first enrol a second factor reaches only the enrolment paths, and a token with
    scopes writes only where they allow (`template` is the route's, under the API prefix)."""
    if actor.enrol_only and path not in ENROL_ONLY_PATHS:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=ENROL_FIRST)
    if (
        actor.scopes is not None
        and method not in SAFE_METHODS
        and not token_rules.may_write(actor.scopes, method, template)
    ):
        raise token_rules.scope_refused(actor.scopes)
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_roles(*roles: Role) -> object:
    async def check(actor: CurrentActor) -> Actor:
        if actor.role not in roles:
            raise role_refused(actor, *roles)
        return actor

    return Depends(check)


AdminActor = Annotated[Actor, require_roles(Role.ADMIN)]
ManagerActor = Annotated[Actor, require_roles(Role.MANAGER)]
ManagerOrAdminActor = Annotated[Actor, require_roles(Role.MANAGER, Role.ADMIN)]


async def command_actor(actor: CurrentActor) -> Actor:
    """The caller, if its role may send commands (the edge contract's one gate)."""
    return require_command_role(actor)


ActingCityActor = Annotated[Actor, Depends(command_actor)]

IdPath = Annotated[int, PlainDigits, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, PlainDigits, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, PlainDigits, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, PlainDigits, Query(ge=0, le=MAX_ID, description="Items to skip.")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Unique per claim attempt; a retry with the same key returns the first claim.",
    ),
]
NoteIdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Optional, unique per intended note; a retry with the same key returns "
        "the first note and adds nothing.",
    ),
]
