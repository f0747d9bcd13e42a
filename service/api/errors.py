"""One place that maps errors to HTTP answers: `{"detail": ...}` with the right status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout as AsyncPoolTimeout
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.domain import errors as de
from service.wire import WireError

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[de.DomainError], int]] = [
    (de.NotFound, status.HTTP_404_NOT_FOUND),
    (de.Forbidden, status.HTTP_403_FORBIDDEN),
    (de.Invalid, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (de.Conflict, status.HTTP_409_CONFLICT),
]


class Message(BaseModel):
    detail: str


def _answer(description: str) -> dict[str, Any]:
    return {"model": Message, "description": description}


# Documented on every API route, so clients (and schema checkers) know them.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _answer(
        "The body could not be read as JSON: not UTF-8, a byte order mark, a duplicate key, "
        "NaN, or nested deeper than 32 levels"
    ),
    401: _answer("No token, or an unknown or revoked one"),
    403: _answer("Your role or city may not do this"),
    404: _answer("Not there, or not visible to your city"),
    409: _answer("The current state refuses this change"),
    413: _answer("The body is over this route's size limit (see the README's limits table)"),
    415: _answer("The body is not sent as application/json"),
    429: _answer("Too many requests for this token; wait for Retry-After seconds"),
    503: _answer(
        "The database, or Redis (websocket tickets) during a failover, is unavailable;"
        " retry after Retry-After seconds"
    ),
}


def status_for(exc: de.DomainError) -> int:
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return status.HTTP_400_BAD_REQUEST


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the echoed input, which may not even be encodable."""
    return [
        {
            "loc": [p if isinstance(p, int | str) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "invalid")),
            "type": str(e.get("type", "value_error")),
        }
        for e in errors
    ]


# No connection came free in time, from the ORM's pool or the claims pool: 503, retry.
POOL_EXHAUSTED = (PoolTimeout, AsyncPoolTimeout)
BUSY = "the database is busy; retry shortly"


def install(app: FastAPI) -> None:
    @app.exception_handler(de.DomainError)
    async def _domain(_: Request, exc: de.DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=status_for(exc))

    @app.exception_handler(WireError)
    async def _wire(_: Request, exc: WireError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": validation_detail(exc.errors())},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    async def _pool(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database pool exhausted on %s %s", request.method, request.url.path)
        return _unavailable(BUSY)

    for exhausted in POOL_EXHAUSTED:
        app.add_exception_handler(exhausted, _pool)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return _unavailable("the database is unavailable; retry shortly")

    async def _redis(request: Request, exc: Exception) -> JSONResponse:
        # No master (a failover under way, or Redis down): only what needs Redis fails;
        # Redis carries live events only, so claims and tickets do not.
        log.warning("Redis unavailable on %s %s: %s", request.method, request.url.path, exc)
        return _unavailable("Redis is unavailable (failing over?); retry shortly")

    for unavailable in (RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(unavailable, _redis)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return _unavailable("the database connection was lost; retry shortly")
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "internal error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
        )

    _document_422(app)


# A 422 says what was wrong in one of two shapes: request validation lists its issues
# by location; a command names the problem in one sentence (or, for a document such as
# a playbook, lists its problems by line). FastAPI documents only the first.
_ISSUE: dict[str, Any] = {
    "title": "Issue",
    "type": "object",
    "required": ["msg", "type"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "line": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "location": {"type": "string"},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
}


def _document_422(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = generate().get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["Issue"] = _ISSUE
                schemas["HTTPValidationError"]["properties"]["detail"] = {
                    "title": "Detail",
                    "anyOf": [
                        {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
                        {"type": "string"},
                    ],
                }
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )
