"""`POST /api/v1/requests/{request_id}/claims`, the busiest write, answered ahead of the
router (pure ASGI middleware, just inside the body gate).

Under load a REST claim spent about half of the replica's CPU in FastAPI's machinery
around the claim (matching the path against every route, solving the route's
dependencies, building the response), not in the claim. The body gate
(`service.api.body_limits`) has already authenticated the caller and read the body as
strict JSON, and kept both in the request's scope. For a claim whose id,
`Idempotency-Key` and body hold the edge contract's shapes, this lane does what the
route `claim_request` does, with the same parts:

- the caller admitted as every route admits it (`deps.admitted`: a session still to
  enrol a second factor, a token's scopes), then the command gate
  (`edge.require_command_role`);
- the body read as the route reads it (`edge.read_fields(ClaimCreate, ...)`);
- the claim made by `Executor.claim`, answered by `claim_response`, which the route
  answers with too;
- a refusal answered by the app's own handler for it (`answer_exception`), as the
  router would have.

Anything else, a malformed id, a missing or malformed key, a body the model refuses,
goes on to the route unchanged, whose validation explains it in its usual words. The
route stays the documented one (OpenAPI) and the only one when the lane is off
(`AIDMESH_REST_CLAIM_LANE=false`). tests/api/test_claim_lane.py checks that both
answer alike, byte for byte; the claims benchmark compares them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Response, status
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.body_limits import answer_exception, read_document
from service.api.deps import admitted, remembered_actor
from service.domain.actors import Actor
from service.edge import MAX_ID, IdempotencyKeyText, read_fields, require_command_role
from service.models import ClaimCreate, ClaimPublic

TEMPLATE = "/requests/{request_id}/claims"
"""The route the lane answers, under the API prefix."""

_KEY = TypeAdapter(Annotated[str, IdempotencyKeyText])


def claim_response(claim: ClaimPublic, created: bool) -> Response:
    """The answer to a claim: 201 with the claim, marked `Idempotent-Replayed` when the
    key's first claim is returned again. The route and the lane both answer with it."""
    headers = None if created else {"Idempotent-Replayed": "true"}
    return Response(
        claim.model_dump_json(by_alias=True),
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
        headers=headers,
    )


class ClaimLane:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        prefix = prefix.rstrip("/")
        self.path = re.compile(re.escape(prefix) + r"/requests/([1-9][0-9]{0,9})/claims")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = self.path.fullmatch(scope["path"])
            actor = remembered_actor(scope) if found else None
            if found is not None and actor is not None and int(found[1]) <= MAX_ID:
                request_id = int(found[1])
                if await self._claim(scope, receive, send, actor, request_id):
                    return
        await self.app(scope, receive, send)

    async def _claim(
        self, scope: Scope, receive: Receive, send: Send, actor: Actor, request_id: int
    ) -> bool:
        """Answer the claim and return True; or, when its shapes are not the contract's,
        return False with the body unread, for the route."""
        read, document = read_document(scope)
        if not read:
            return False
        try:
            key = _KEY.validate_python(Headers(scope=scope).get("idempotency-key"))
            fields = read_fields(ClaimCreate, document)
        except ValidationError:
            return False
        # Named for the request log and metrics, as the router names the route it picks.
        scope["endpoint"] = ClaimLane
        scope["path_params"] = {"request_id": request_id}
        try:
            admitted(actor, "POST", scope["path"], TEMPLATE)
            require_command_role(actor)
            parts: Any = scope["app"].state.parts
            claim, created = await parts.executor.claim(actor, request_id, fields, key)
        except Exception as exc:
            await answer_exception(scope, receive, send, exc, close=False)
            return True
        await claim_response(claim, created)(scope, receive, send)
        return True
