"""The edge contract: what REST and the websocket both hold a client to, and how both answer.

Shapes of what a client names (ids, idempotency keys, tokens), the one gate for who may
send commands, unknown fields refused, and one mapping from every error to a status
and a message. `service.api` adapts it to HTTP responses; `service.live` and
`service.live_ops` to websocket error frames. Neither transport imports the other.

Every answer carries a stable `code` (snake_case) and `params` (plain values) beside its
`detail`, for a client that words refusals in its own language; `detail` stays English.

    error                          status  code                       detail
    DomainError  NotFound            404   the class's code           the command's sentence
                 Forbidden           403   (service.domain.errors)
                 Invalid             422
                 Conflict            409
                 (any other)         400
    WireError                        400   unreadable                 why it cannot be read
    pydantic ValidationError         422   invalid_input {issues}     issues by location
    a pool with no free connection   503   database_busy              BUSY
    database unavailable             503   database_unavailable       DATABASE_UNAVAILABLE
    database connection lost         503   database_connection_lost   CONNECTION_LOST
    Redis unavailable                503   redis_unavailable          REDIS_UNAVAILABLE
    any other database error         500   internal_error             INTERNAL (logged)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from psycopg_pool import PoolTimeout as AsyncPoolTimeout
from pydantic import BaseModel, StringConstraints, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.domain import errors as de
from service.domain.actors import Actor, Role, role_refused
from service.wire import WireError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# Shapes -------------------------------------------------------------------------------

MAX_ID = 2_147_483_647
"""The largest id a client may name: the range of the database's integer ids."""

IDEMPOTENCY_KEY_MAX = 200
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
"""Printable ASCII without spaces: a key is an opaque token, never text."""
IDEMPOTENCY_KEY_RULE = f"1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters, no spaces"

IdempotencyKeyText = StringConstraints(
    min_length=1, max_length=IDEMPOTENCY_KEY_MAX, pattern=IDEMPOTENCY_KEY_PATTERN
)
"""The idempotency key's constraints, for a header (REST) or a field (a websocket op)."""

TOKEN_MAX = 200
_TOKEN = re.compile(rf"[\x21-\x7e]{{1,{TOKEN_MAX}}}")


def token_shaped(secret: str) -> bool:
    """Could `secret` be a token at all? One that cannot is refused without a lookup."""
    return _TOKEN.fullmatch(secret) is not None


# Who may send commands -----------------------------------------------------------------

COMMAND_ROLES = (Role.MANAGER, Role.RESPONDER)


def require_command_role(actor: Actor) -> Actor:
    """The gate for commands a city's people send (claims and their moves): `Forbidden`
    for any other role, with the same sentence on every transport."""
    if actor.role not in COMMAND_ROLES:
        raise role_refused(actor, *COMMAND_ROLES)
    return actor


# Unknown fields -------------------------------------------------------------------------

EXTRA_FIELD = "Extra inputs are not permitted"


def unknown_fields(document: Mapping[str, Any], known: Collection[str]) -> list[dict[str, Any]]:
    """An issue for each field of `document` not in `known`, in the shape a REST body's
    422 lists it (pydantic's `extra_forbidden`), or none."""
    return [
        {"loc": [name], "msg": EXTRA_FIELD, "type": "extra_forbidden"}
        for name in document
        if name not in known
    ]


def read_fields(model: type[M], fields: Mapping[str, Any]) -> M:
    """`fields` as `model` (which forbids unknown fields), or `ValidationError`."""
    return model.model_validate(fields)


def validation_detail(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """Validation errors without the echoed input, which may not even be encodable."""
    return [
        {
            "loc": [p if isinstance(p, int | str) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "invalid")),
            "type": str(e.get("type", "value_error")),
        }
        for e in errors
    ]


# Errors to answers ----------------------------------------------------------------------

# No connection came free in time, from the ORM's pool or the claims pool: 503, retry.
POOL_EXHAUSTED = (PoolTimeout, AsyncPoolTimeout)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)

BUSY = "the database is busy; retry shortly"
DATABASE_UNAVAILABLE = "the database is unavailable; retry shortly"
CONNECTION_LOST = "the database connection was lost; retry shortly"
REDIS_UNAVAILABLE = "Redis is unavailable (failing over?); retry shortly"
INTERNAL = "internal error"

_STATUS: list[tuple[type[de.DomainError], int]] = [
    (de.NotFound, 404),
    (de.Forbidden, 403),
    (de.Invalid, 422),
    (de.Conflict, 409),
]


MAPPED: tuple[type[Exception], ...] = (
    de.DomainError,
    WireError,
    ValidationError,
    *POOL_EXHAUSTED,
    *REDIS_DOWN,
    DBAPIError,
)
"""Every error class `answer_for` answers (and its subclasses)."""


UNREADABLE = "unreadable"
INVALID_INPUT = "invalid_input"
DATABASE_BUSY = "database_busy"
DATABASE_DOWN = "database_unavailable"
DATABASE_LOST = "database_connection_lost"
REDIS_DOWN_CODE = "redis_unavailable"
INTERNAL_ERROR = "internal_error"
RATE_LIMITED = "rate_limited"
"""Too many requests (the REST rate limit, `service.api.rate_limit`): {rate} per second."""

EDGE_CODES = (
    UNREADABLE,
    INVALID_INPUT,
    DATABASE_BUSY,
    DATABASE_DOWN,
    DATABASE_LOST,
    REDIS_DOWN_CODE,
    INTERNAL_ERROR,
    RATE_LIMITED,
)
"""The codes of the answers that are not domain errors."""


def error_codes() -> list[str]:
    """Every code an error answer can carry: the domain tree's and the edge's own."""
    return [*de.codes(), *EDGE_CODES]


@dataclass(frozen=True, slots=True)
class Answer:
    """What a client is told about an error: a status, a detail (a sentence, or issues
    by location), and the refusal's `code` and `params` for a client to word it in its
    own language. A 503 is worth retrying after a second."""

    status: int
    detail: Any
    code: str = de.DomainError.code
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def retry(self) -> bool:
        return self.status == 503


def status_for(exc: de.DomainError) -> int:
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 400


def answer_for(exc: BaseException, where: str) -> Answer | None:
    """The answer to `exc`, logged as its kind deserves (`where` names the request or
    op); None for an error the contract does not know, which is a bug."""
    if isinstance(exc, de.DomainError):
        return Answer(status_for(exc), exc.detail, exc.code, exc.params)
    if isinstance(exc, WireError):
        return Answer(400, exc.detail, UNREADABLE)
    if isinstance(exc, ValidationError):
        return validation_answer(exc.errors())
    if isinstance(exc, POOL_EXHAUSTED):
        log.warning("database pool exhausted on %s", where)
        return Answer(503, BUSY, DATABASE_BUSY)
    if isinstance(exc, REDIS_DOWN):
        # No master (a failover under way, or Redis down): only what needs Redis fails;
        # Redis carries live events only, so claims and tickets do not.
        log.warning("Redis unavailable on %s: %s", where, exc)
        return Answer(503, REDIS_UNAVAILABLE, REDIS_DOWN_CODE)
    if isinstance(exc, OperationalError):
        log.warning("database unavailable on %s: %s", where, exc.orig)
        return Answer(503, DATABASE_UNAVAILABLE, DATABASE_DOWN)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            log.warning("database connection lost on %s", where)
            return Answer(503, CONNECTION_LOST, DATABASE_LOST)
        log.error("database error on %s", where, exc_info=exc)
        return Answer(500, INTERNAL, INTERNAL_ERROR)
    return None


def validation_answer(errors: Sequence[Any]) -> Answer:
    """The 422 of validation errors (a REST body's or a websocket op's): the issues by
    location as `detail`, and as `params.issues` each issue's `loc`, pydantic `type`
    and, for a bound, its `limit`."""
    return Answer(
        422,
        validation_detail(errors),
        INVALID_INPUT,
        {"issues": [validation_issue(e) for e in errors]},
    )


# The pydantic context keys that name a bound (greater_than: gt, too_long: max_length, …).
_LIMITS = ("gt", "ge", "lt", "le", "min_length", "max_length", "multiple_of", "max_digits")


def validation_issue(error: Any) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "loc": [p if isinstance(p, int | str) else str(p) for p in error.get("loc", ())],
        "type": str(error.get("type", "value_error")),
    }
    context = error.get("ctx") or {}
    for key in _LIMITS:
        if key in context:
            bound = context[key]
            is_number = isinstance(bound, int | float) and not isinstance(bound, bool)
            issue["limit"] = bound if is_number else str(bound)
            break
    return issue
