"""What every offer move records, and answering a request's open offers once it fills up.

Kept apart from `service.commands.offers` so that the claim command, which fills
requests, can answer their offers without importing the offer commands (which claim).
"""

from __future__ import annotations

from sqlmodel import col, select

from service.commands.context import CommandContext
from service.commands.presenters import as_json, offer_public
from service.domain import lifecycles as lc
from service.domain import offers as rules
from service.domain.events import EventType
from service.persistence.tables import AidRequest, Incident, Offer

EVENT_OF = {
    rules.OfferStatus.OPEN: EventType.OFFER_MADE,
    rules.OfferStatus.COUNTERED: EventType.OFFER_COUNTERED,
    rules.OfferStatus.ACCEPTED: EventType.OFFER_ACCEPTED,
    rules.OfferStatus.DECLINED: EventType.OFFER_DECLINED,
    rules.OfferStatus.WITHDRAWN: EventType.OFFER_WITHDRAWN,
    rules.OfferStatus.EXPIRED: EventType.OFFER_EXPIRED,
}


def state_of(offer: Offer) -> rules.OfferState:
    countered = None
    if offer.counter_quantity is not None and offer.counter_ready_at is not None:
        countered = rules.Terms(offer.counter_quantity, offer.counter_ready_at)
    return rules.OfferState(
        status=rules.OfferStatus(offer.status),
        terms=rules.Terms(offer.quantity, offer.ready_at),
        countered=countered,
        expires_at=offer.expires_at,
    )


def record(ctx: CommandContext, incident: Incident, offer: Offer) -> None:
    """Write the offer and emit the event of the status it is now in: to the requesting
    city's and the offering city's inboxes (and every viewer of the incident's board)."""
    offer.updated_at = ctx.now
    ctx.session.add(offer)
    ctx.session.flush()
    ctx.emit(
        incident,
        EVENT_OF[rules.OfferStatus(offer.status)],
        {"offer": as_json(offer_public(offer))},
        cities=[incident.city_id, offer.city_id],
    )


def answer_offers(ctx: CommandContext, incident: Incident, request: AidRequest) -> int:
    """Once `request` is fully claimed, or has ended (cancelled, expired), decline the
    open offers aimed at it (the incident is locked). Returns how many were answered."""
    status = lc.RequestStatus(request.status)
    if status is lc.RequestStatus.CLAIMED:
        why = rules.filled_reason(request.id or 0)
    elif status in lc.FINAL_REQUEST_STATUSES:
        why = f"request {request.id} is {status.value}"
    else:
        return 0
    waiting = ctx.session.exec(
        select(Offer).where(
            col(Offer.request_id) == request.id,
            col(Offer.status).in_(sorted(s.value for s in rules.OPEN_OFFER_STATUSES)),
        )
    ).all()
    for offer in waiting:
        state = state_of(offer)
        # One past its expiry that the sweeper has not reached yet expires instead.
        if rules.is_due(state, ctx.now):
            asked = rules.OfferStatus.EXPIRED
        else:
            asked = rules.OfferStatus.DECLINED
            offer.end_reason = why
        after = rules.move(state, asked, rules.OfferParty.SYSTEM, now=ctx.now)
        offer.status = after.status.value
        record(ctx, incident, offer)
    return len(waiting)
