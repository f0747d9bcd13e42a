"""The service's command ops over the websocket, registered with the endpoint when the
app is wired: `claim`, `claim_status`, `pass`, `offer` and `offer_status`, the websocket forms of
`POST /requests/{id}/claims`, `POST /claims/{id}/status`, `POST /requests/{id}/passes`,
`POST /incidents/{id}/offers` and `POST /offers/{id}/status`.

Each is held to the edge contract (`service.edge`) as its REST route is: the same
role gate, the same shapes (an idempotency key is the header's), unknown fields
refused, and every error answered with the same status and detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Strict

from realtime.connection import Viewer
from realtime.protocol import Op, error
from service import edge
from service.commands import claims, offers, passes
from service.commands.presenters import claim_public, offer_public
from service.domain import tokens as token_rules
from service.domain.actors import Actor
from service.executor import Executor
from service.live import actor_of, refusal_of
from service.models import (
    ClaimCreate,
    ClaimStatusChange,
    Id,
    OfferCreate,
    OfferStatusChange,
    PassCreate,
)
from service.sessions import Sessions

M = TypeVar("M", bound=BaseModel)

REVOKED = "invalid or revoked token"


class ClaimOp(ClaimCreate):
    """`{"op": "claim", ...}`: the REST body, with the path's id and the header's key."""

    request_id: Id
    idempotency_key: Annotated[str, Strict(), edge.IdempotencyKeyText]


class ClaimStatusOp(ClaimStatusChange):
    """`{"op": "claim_status", ...}`: the REST body, with the path's id."""

    claim_id: Id


class PassOp(PassCreate):
    """`{"op": "pass", ...}`: the REST body, with the path's id."""

    request_id: Id


class OfferOp(OfferCreate):
    """`{"op": "offer", ...}`: the REST body, with the path's id and the header's key."""

    incident_id: Id
    idempotency_key: Annotated[str, Strict(), edge.IdempotencyKeyText]


class OfferStatusOp(OfferStatusChange):
    """`{"op": "offer_status", ...}`: the REST body, with the path's id."""

    offer_id: Id


class CommandOp(Generic[M]):
    """A command op: its fields are `params`' fields; `execute` runs it for an actor
    allowed to send commands, whose token is still active."""

    __slots__ = ("execute", "executor", "fields", "name", "params")

    def __init__(
        self,
        name: str,
        params: type[M],
        execute: Callable[[Actor, M], Awaitable[dict[str, Any]]],
        executor: Executor,
    ) -> None:
        self.name = name
        self.params = params
        self.execute = execute
        self.executor = executor
        self.fields = frozenset(params.model_fields)

    def read(self, viewer: Viewer, fields: dict[str, Any]) -> M:
        try:
            actor = edge.require_command_role(actor_of(viewer))
            if not token_rules.may_send_commands(actor.scopes):
                assert actor.scopes is not None
                raise token_rules.scope_refused(actor.scopes)
            return edge.read_fields(self.params, fields)
        except Exception as exc:
            raise _refusal(exc, self.name) from None

    async def run(self, viewer: Viewer, params: M) -> dict[str, Any]:
        actor = actor_of(viewer)
        try:
            # The token or session is checked again: one revoked, expired or ended
            # since the handshake is refused.
            if not await self._still_valid(actor):
                return error(401, REVOKED)
            return await self.execute(actor, params)
        except Exception as exc:
            raise _refusal(exc, self.name) from None

    async def _still_valid(self, actor: Actor) -> bool:
        if actor.session_id is not None:
            return await Sessions(self.executor).actor_by_id(actor.session_id) is not None
        if actor.token_id is None:
            return False
        return await self.executor.tokens.actor_for_token_id(actor.token_id) is not None


def _refusal(exc: Exception, op: str) -> Exception:
    """The edge contract's answer to `exc` as a `Refusal`; an error it does not know
    (a bug) as itself, for the endpoint's 500."""
    answer = edge.answer_for(exc, f"websocket {op}")
    return exc if answer is None else refusal_of(answer)


def command_ops(executor: Executor) -> dict[str, Op]:
    """The command ops by name, for `WebsocketEndpoint(ops=...)`."""

    async def claim(actor: Actor, params: ClaimOp) -> dict[str, Any]:
        body = ClaimCreate(quantity=params.quantity, note=params.note, package_id=params.package_id)
        made, created = await executor.claim(actor, params.request_id, body, params.idempotency_key)
        return {
            "type": "ack",
            "status": 201,
            "replayed": not created,
            "result": made.model_dump(mode="json"),
        }

    async def claim_status(actor: Actor, params: ClaimStatusOp) -> dict[str, Any]:
        change = ClaimStatusChange.model_validate(params.model_dump(exclude={"claim_id"}))
        claim = await executor.run(actor, claims.change_claim_status, params.claim_id, change)
        return {"type": "ack", "status": 200, "result": claim_public(claim).model_dump(mode="json")}

    async def pass_op(actor: Actor, params: PassOp) -> dict[str, Any]:
        body = PassCreate(reason=params.reason)
        made = await executor.run(actor, passes.pass_request, params.request_id, body)
        return {"type": "ack", "status": 201, "result": made.model_dump(mode="json")}

    async def offer(actor: Actor, params: OfferOp) -> dict[str, Any]:
        body = OfferCreate.model_validate(
            params.model_dump(exclude={"incident_id", "idempotency_key"})
        )
        made, created = await executor.run(
            actor, offers.make_offer, params.incident_id, body, params.idempotency_key
        )
        return {
            "type": "ack",
            "status": 201,
            "replayed": not created,
            "result": offer_public(made).model_dump(mode="json"),
        }

    async def offer_status(actor: Actor, params: OfferStatusOp) -> dict[str, Any]:
        change = OfferStatusChange.model_validate(params.model_dump(exclude={"offer_id"}))
        moved = await executor.run(actor, offers.change_offer_status, params.offer_id, change)
        return {"type": "ack", "status": 200, "result": offer_public(moved).model_dump(mode="json")}

    return {
        "claim": CommandOp("claim", ClaimOp, claim, executor),
        "offer": CommandOp("offer", OfferOp, offer, executor),
        "offer_status": CommandOp("offer_status", OfferStatusOp, offer_status, executor),
        "claim_status": CommandOp("claim_status", ClaimStatusOp, claim_status, executor),
        "pass": CommandOp("pass", PassOp, pass_op, executor),
    }
