"""Offers: a peer city offers units to an incident; the requesting city answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.api.deps import (
    ActingCityActor,
    CurrentActor,
    IdempotencyKey,
    IdPath,
    Limit,
    Offset,
    Parts,
)
from service.commands import offers
from service.commands.presenters import offer_public
from service.models import OfferCreate, OfferPublic, OfferStatusChange, Page

router = APIRouter(tags=["offers"])

OfferStatusQuery = Annotated[
    str | None,
    Query(
        pattern="^(open|countered|accepted|declined|withdrawn|expired)$",
        description="Only offers in this status.",
    ),
]


@router.post(
    "/incidents/{incident_id}/offers",
    response_model=OfferPublic,
    status_code=status.HTTP_201_CREATED,
)
async def make_offer(
    incident_id: IdPath,
    body: OfferCreate,
    key: IdempotencyKey,
    actor: ActingCityActor,
    parts: Parts,
    response: Response,
) -> OfferPublic:
    """Offer units to an active incident your city can see, unasked (a manager or
    responder of a peer city): a resource and quantity, when they are ready, an optional
    note, expiry (a day by default), package and open request to fill. Retrying with the
    same `Idempotency-Key` returns the first offer."""
    offer, created = await parts.executor.run(actor, offers.make_offer, incident_id, body, key)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return offer_public(offer)


@router.get("/incidents/{incident_id}/offers", response_model=Page[OfferPublic])
async def list_offers(
    incident_id: IdPath,
    actor: CurrentActor,
    parts: Parts,
    status: OfferStatusQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[OfferPublic]:
    """The offers made to an incident, newest first (every city that can see it)."""
    return await parts.executor.read(actor, offers.list_offers, incident_id, status, limit, offset)


@router.get("/offers/{offer_id}", response_model=OfferPublic)
async def get_offer(offer_id: IdPath, actor: CurrentActor, parts: Parts) -> OfferPublic:
    return await parts.executor.read(actor, offers.get_offer, offer_id)


@router.post("/offers/{offer_id}/status", response_model=OfferPublic)
async def change_offer_status(
    offer_id: IdPath, body: OfferStatusChange, actor: ActingCityActor, parts: Parts
) -> OfferPublic:
    """Answer an offer made to your city's incident (its managers): `accepted` (it
    becomes an accepted claim, on a request raised for it or on the open `request_id`
    it fills), `declined` with a `reason`, or `countered` with another `quantity` or
    `ready_at`. The offering city accepts a counter (`accepted`) or `withdrawn`s."""
    offer = await parts.executor.run(actor, offers.change_offer_status, offer_id, body)
    return offer_public(offer)
