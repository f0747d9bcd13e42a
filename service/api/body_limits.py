"""The gate every API request with a body passes before the router sees it (pure ASGI).

A body costs memory and parsing time, so nobody gets to spend them without a valid
token, and nobody more than the route's cap. In order, before any of the body is read:

1. the bearer token is looked up (401), and the actor is kept for the route's
   dependencies, so the token is looked up once per request;
2. a declared `Content-Length` over the route's cap is refused (413);
3. a media type other than JSON is refused (415);

then the body is read, counting bytes as they stream in (413 the moment the cap is
passed, without buffering the rest), and read as strict JSON by `service.wire` (400:
not UTF-8, a byte order mark, duplicate keys, NaN, nesting deeper than 32). Only then
does FastAPI see the body, unchanged, and validate it against the route's model.

An answer given before the whole body was read closes the connection (`Connection:
close`): otherwise the server would have to read, and throw away, whatever the client
still sends. Refusals are exceptions mapped by the app's own handlers
(`service/api/errors.py`), so they read like every other error.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Collection, Mapping
from email.message import Message as MimeMessage
from typing import Any

from fastapi import HTTPException, status
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import authenticate, remember_actor
from service.wire import WireError, decode

DEFAULT_CAP = 64 * 1024
"""Every route's cap unless `BODY_CAPS` names it: the longest valid body of any of them
(an incident with a 5,000-character description) fits even with every character
written as a `\\u` escape."""

BODY_CAPS: Mapping[tuple[str, str], int] = {
    # An information request's answer: 20,000 characters, and a note.
    ("POST", "/claims/{claim_id}/status"): 512 * 1024,
    # A playbook's YAML: 200,000 characters, as UTF-8.
    ("PUT", "/cities/{city_id}/playbooks/{incident_type}"): 1024 * 1024,
}
"""Caps larger than the default, by method and route (under the API prefix), in bytes."""

XML_DOCUMENT_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/incidents/import/cap"),
    ("POST", "/incidents/import/edxl-rm"),
)
"""Routes whose body is an XML document the route parses itself (`service.interop.safe_xml`):
the token and the cap are checked here, the media type and the parse there."""


class _Gone(Exception):
    """The client went away before its body was complete: nobody is left to answer."""


class BodyLimits:
    """Pure ASGI middleware for the paths under `prefix`; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        caps: Mapping[tuple[str, str], int] = BODY_CAPS,
        default_cap: int = DEFAULT_CAP,
        xml_cap: int = DEFAULT_CAP,
        public: Collection[tuple[str, str]] = (),
    ) -> None:
        """`public`: (method, path) of the routes that take a body from callers who
        are not signed in yet (sign-in, sign-up); their body is read without a caller."""
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.public = frozenset((method, self.prefix + path) for method, path in public)
        self.default_cap = default_cap
        self._caps = [
            (method, compile_path(self.prefix + template)[0], cap, False)
            for (method, template), cap in caps.items()
        ] + [
            (method, compile_path(self.prefix + template)[0], xml_cap, True)
            for method, template in XML_DOCUMENT_ROUTES
        ]

    def cap_for(self, method: str, path: str) -> int:
        return self._route(method, path)[0]

    def _route(self, method: str, path: str) -> tuple[int, bool]:
        """The route's cap, and whether its body is an XML document rather than JSON."""
        for cap_method, pattern, cap, xml in self._caps:
            if cap_method == method and pattern.match(path):
                return cap, xml
        return self.default_cap, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix + "/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        body: bytes | None = None
        try:
            declared = _declared_length(headers)
            if declared != 0:  # without a body, the route's dependencies authenticate
                body = await self._admit(scope, receive, headers, declared)
        except _Gone:
            return
        except WireError as exc:  # read in full: the connection can go on
            await answer_exception(scope, receive, send, exc, close=False)
            return
        except Exception as exc:  # answered by the app's own error handlers
            await answer_exception(scope, receive, send, exc, close=True)
            return
        await self.app(scope, receive if body is None else replay(body, receive), send)

    async def _admit(
        self, scope: Scope, receive: Receive, headers: Headers, declared: int | None
    ) -> bytes:
        """The body, read once the token and the declared length allow; or an exception."""
        cap, xml = self._route(scope["method"], scope["path"])
        if (scope["method"], scope["path"]) not in self.public:
            parts = scope["app"].state.parts
            remember_actor(scope, await authenticate(parts, headers, scope["method"]))
        if declared is not None and declared > cap:
            raise _too_large(cap)
        if not xml:
            _check_media_type(headers.get("content-type"))
        body = await _read(receive, cap)
        if body and not xml:  # an empty stream is no body, as a Content-Length of 0 is
            scope.setdefault("state", {})[_DOCUMENT] = decode(body)
        return body


_DOCUMENT = "aidmesh.document"  # where a request's scope keeps its body, read as JSON


def read_document(scope: Scope) -> tuple[bool, Any]:
    """(True, the JSON body the gate read) for the app's middleware and routes; (False,
    None) when the request had no JSON body."""
    state = scope.get("state", {})
    return (True, state[_DOCUMENT]) if _DOCUMENT in state else (False, None)


def _declared_length(headers: Headers) -> int | None:
    """The body's declared length, 0 when there is none, None when it is streamed."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None
    length = headers.get("content-length")
    if length is None:
        return 0
    if not re.fullmatch(r"[0-9]{1,19}", length):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Content-Length is not a length")
    return int(length)


def _too_large(cap: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the body is larger than this route's limit of {cap} bytes",
    )


def _check_media_type(content_type: str | None) -> None:
    """JSON, as UTF-8; a body without a Content-Type is read as JSON too."""
    if content_type is None:
        return
    parsed = MimeMessage()
    parsed["content-type"] = content_type
    charset = parsed.get_param("charset")
    if parsed.get_content_type() != "application/json" or (
        isinstance(charset, str) and charset.lower() != "utf-8"
    ):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the body as 'application/json' (UTF-8), not {content_type[:60]!r}",
        )


async def _read(receive: Receive, cap: int) -> bytes:
    """The whole body, or a 413 as soon as more than `cap` bytes have come in."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then listens for disconnects."""
    pending = True

    async def next_message() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return next_message


async def answer_exception(
    scope: Scope, receive: Receive, send: Send, exc: Exception, *, close: bool
) -> None:
    """Answer `exc` with the app's handler for it, as the router would have."""
    handlers = scope["app"].exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc
    request = Request(scope, receive)
    if inspect.iscoroutinefunction(handler):
        response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    if close:
        response.headers["connection"] = "close"
    await response(scope, receive, send)
