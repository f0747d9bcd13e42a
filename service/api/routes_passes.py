"""Passes: a targeted city says it cannot help with a request."""

from __future__ import annotations

from fastapi import APIRouter, status

from service.api.deps import ActingCityActor, CurrentActor, IdPath, Limit, Offset, Parts
from service.commands import passes
from service.models import Page, PassCreate, PassPublic

router = APIRouter(tags=["passes"])


@router.post(
    "/requests/{request_id}/passes",
    response_model=PassPublic,
    status_code=status.HTTP_201_CREATED,
)
async def pass_request(
    request_id: IdPath, body: PassCreate, actor: ActingCityActor, parts: Parts
) -> PassPublic:
    """Pass on a request aimed at your city (`{}`, or with a `reason`), once per city.
    When every city of the request's current ring has passed, it moves to the next ring
    at once (`escalated_to_ring`)."""
    return await parts.executor.run(actor, passes.pass_request, request_id, body)


@router.get("/requests/{request_id}/passes", response_model=Page[PassPublic])
async def list_passes(
    request_id: IdPath, actor: CurrentActor, parts: Parts, limit: Limit = 50, offset: Offset = 0
) -> Page[PassPublic]:
    """The passes on a request (every city that can see its incident)."""
    return await parts.executor.read(actor, passes.list_passes, request_id, limit, offset)
