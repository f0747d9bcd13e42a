"""The REST side of the edge contract: each error `service.edge` maps, as an HTTP answer
`{"detail": ..., "code": ..., "params": {...}}` with its status (and Retry-After on a 503)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service import edge


class Message(BaseModel):
    detail: str
    code: str | None = None
    params: dict[str, Any] | None = None


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


def install(app: FastAPI) -> None:
    async def _mapped(request: Request, exc: Exception) -> JSONResponse:
        answer = edge.answer_for(exc, f"{request.method} {request.url.path}")
        if answer is None:  # not reached: answer_for maps every class of MAPPED
            raise exc
        return respond(answer)

    for mapped in edge.MAPPED:
        app.add_exception_handler(mapped, _mapped)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(edge.validation_answer(exc.errors()))

    _document_422(app)


def respond(answer: edge.Answer) -> JSONResponse:
    """The HTTP response of an edge answer: `{"detail": ..., "code": ..., "params": {...}}`,
    Retry-After on a 503."""
    return JSONResponse(
        {"detail": answer.detail, "code": answer.code, "params": dict(answer.params)},
        status_code=answer.status,
        headers={"Retry-After": "1"} if answer.retry else None,
    )


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
