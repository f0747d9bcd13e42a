"""Offers over the ORM: a peer city offers units to an incident it can see; the
requesting city's manager accepts, declines or counters; the offering city accepts a
counter or withdraws; the sweeper expires offers nobody answered.

The rules are `service.domain.offers`'. Every move runs under the incident's lock,
and re-reads the offer after it, so a move and the offer's expiry (or two moves on
two replicas) never both happen. Accepting makes the claim through the claim command's
own code (`claims.claim_for_offer`): the request's units and the package's units and
cap hold as for any claim, in the same transaction as raising the request.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from service.commands import claims
from service.commands.aid_requests import add_request, compute_targets, resource_kind
from service.commands.context import (
    CommandContext,
    body_fingerprint,
    fresh,
    lock_incident,
    require_city,
    visible_incident,
)
from service.commands.offer_answers import record, state_of
from service.commands.presenters import offer_public
from service.domain import lifecycles as lc
from service.domain import offers as rules
from service.domain import rosters as roster_rules
from service.domain.actors import Role
from service.domain.errors import (
    Conflict,
    IdempotencyMismatch,
    Invalid,
    NotFound,
    OpenOffersLimit,
    OtherCity,
    RequestingManagerOnly,
)
from service.models import (
    AidRequestCreate,
    OfferCreate,
    OfferPublic,
    OfferStatusChange,
    Page,
)
from service.persistence.tables import AidRequest, Incident, Offer, PackageItem, RosterPackage

IDEMPOTENCY_MISMATCH = (
    "this Idempotency-Key was already used for a different offer; use a new key for a new offer"
)
# Open offers one city may have on one incident at once.
MAX_OPEN_OFFERS_PER_CITY = 100


def fingerprint(incident_id: int, body: OfferCreate) -> str:
    return body_fingerprint({"incident_id": incident_id, **body.model_dump(mode="json")})


# Making ---------------------------------------------------------------------------------


def make_offer(
    ctx: CommandContext, incident_id: int, body: OfferCreate, idempotency_key: str
) -> tuple[Offer, bool]:
    """Offer units to an incident the caller's city can see. Returns (offer, created)."""
    city_id = require_city(ctx.actor, Role.RESPONDER, Role.MANAGER)
    visible_incident(ctx.session, ctx.actor, incident_id)
    incident = lock_incident(ctx.session, incident_id)
    print_ = fingerprint(incident_id, body)
    earlier = ctx.session.exec(
        select(Offer).where(
            col(Offer.city_id) == city_id, col(Offer.idempotency_key) == idempotency_key
        )
    ).one_or_none()
    if earlier is not None:
        if earlier.body_fingerprint != print_:
            raise IdempotencyMismatch(IDEMPOTENCY_MISMATCH)
        return earlier, False
    expires_at = rules.expiry(body.expires_at, ctx.now)
    rules.check_new_offer(
        city_id=city_id,
        requesting_city_id=incident.city_id,
        incident_status=lc.IncidentStatus(incident.status),
        ready_at=body.ready_at,
        expires_at=expires_at,
        now=ctx.now,
    )
    resource_kind(ctx, body.resource, None)
    if body.request_id is not None:
        _request_to_fill(ctx, incident, body.request_id, body.resource)
    if body.package_id is not None:
        _check_package(ctx, city_id, body.package_id, body.resource, body.quantity)
    open_now = ctx.session.exec(
        select(func.count())
        .select_from(Offer)
        .where(
            col(Offer.incident_id) == incident_id,
            col(Offer.city_id) == city_id,
            col(Offer.status).in_(sorted(s.value for s in rules.OPEN_OFFER_STATUSES)),
        )
    ).one()
    if open_now >= MAX_OPEN_OFFERS_PER_CITY:
        raise OpenOffersLimit(open_now, MAX_OPEN_OFFERS_PER_CITY)
    offer = Offer(
        incident_id=incident_id,
        city_id=city_id,
        request_id=body.request_id,
        package_id=body.package_id,
        resource=body.resource,
        quantity=body.quantity,
        ready_at=body.ready_at,
        note=body.note,
        status=rules.OfferStatus.OPEN.value,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
        body_fingerprint=print_,
        offered_by_token_id=ctx.actor.token_id,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    record(ctx, incident, offer)
    return offer, True


def _request_to_fill(
    ctx: CommandContext, incident: Incident, request_id: int, resource: str
) -> AidRequest:
    request = ctx.session.get(AidRequest, request_id)
    if request is None or request.incident_id != incident.id:
        raise Invalid(f"request {request_id} is not a request of this incident")
    request = fresh(ctx.session, AidRequest, request_id, "request")
    rules.check_fills(
        offer_resource=resource,
        request_resource=request.resource,
        offer_incident_id=incident.id or 0,
        request_incident_id=request.incident_id,
    )
    if request.status not in {s.value for s in lc.CLAIMABLE_REQUEST_STATUSES}:
        raise Conflict(f"request {request_id} is {request.status}: nothing is left to fill")
    return request


def _check_package(
    ctx: CommandContext, city_id: int, package_id: int, resource: str, quantity: int
) -> None:
    """The package must be the offering city's, hold the resource and have the units
    left now (they are committed only when the offer is accepted)."""
    package = ctx.session.get(RosterPackage, package_id)
    if package is None or package.city_id != city_id:
        raise NotFound(f"package {package_id} not found")
    item = ctx.session.exec(
        select(PackageItem).where(
            col(PackageItem.package_id) == package_id, col(PackageItem.resource) == resource
        )
    ).one_or_none()
    if item is None:
        raise Invalid(f"package '{package.name}' holds no {resource}")
    tally = roster_rules.ItemTally(item.quantity, item.cap_quantity, item.committed_quantity)
    roster_rules.commit_units(tally, quantity, package_name=package.name)


# Moving ---------------------------------------------------------------------------------


def _locked_offer(ctx: CommandContext, offer_id: int) -> tuple[Incident, Offer]:
    """The offer's incident under its lock, and the offer read after it."""
    incident_id = ctx.session.exec(
        select(Offer.incident_id).where(col(Offer.id) == offer_id)
    ).one_or_none()
    if incident_id is None:
        raise NotFound(f"offer {offer_id} not found")
    incident = lock_incident(ctx.session, incident_id)
    offer = ctx.session.exec(
        select(Offer).where(col(Offer.id) == offer_id).execution_options(populate_existing=True)
    ).one()
    return incident, offer


def _party(ctx: CommandContext, incident: Incident, offer: Offer, city_id: int) -> rules.OfferParty:
    if offer.city_id == city_id:
        return rules.OfferParty.OFFERER
    if incident.city_id == city_id:
        if ctx.actor.role is not Role.MANAGER:
            raise RequestingManagerOnly("only the requesting city's manager can answer offers")
        return rules.OfferParty.REQUESTER
    visible_incident(ctx.session, ctx.actor, incident.id or 0, f"offer {offer.id} not found")
    raise OtherCity("this offer was made to another city's incident")


def change_offer_status(ctx: CommandContext, offer_id: int, body: OfferStatusChange) -> Offer:
    """Answer an offer (the requesting city's manager: accepted, declined, countered) or
    follow it up (the offering city: accepted after a counter, withdrawn)."""
    city_id = require_city(ctx.actor, Role.RESPONDER, Role.MANAGER)
    incident, offer = _locked_offer(ctx, offer_id)
    party = _party(ctx, incident, offer, city_id)
    asked = rules.OfferStatus(body.status)
    state = state_of(offer)
    counter = rules.counter_terms(state.terms, body.quantity, body.ready_at)
    if counter is not None:
        rules.check_ready(counter.ready_at, ctx.now)
    if body.request_id is not None and not (
        asked is rules.OfferStatus.ACCEPTED and party is rules.OfferParty.REQUESTER
    ):
        raise Invalid("request_id goes with the requesting manager's acceptance only")
    if body.reason is not None and asked not in (
        rules.OfferStatus.DECLINED,
        rules.OfferStatus.WITHDRAWN,
    ):
        raise Invalid("a reason goes with declined or withdrawn only")
    after = rules.move(state, asked, party, now=ctx.now, counter=counter, reason=body.reason)
    offer.status = after.status.value
    if after.countered is not None:
        offer.counter_quantity = after.countered.quantity
        offer.counter_ready_at = after.countered.ready_at
    if body.reason is not None:
        offer.end_reason = body.reason
    if after.status is rules.OfferStatus.ACCEPTED:
        _settle(ctx, incident, offer, rules.agreed(after), body.request_id)
    record(ctx, incident, offer)
    return offer


def _settle(
    ctx: CommandContext,
    incident: Incident,
    offer: Offer,
    terms: rules.Terms,
    request_id: int | None,
) -> None:
    """An accepted offer becomes a claim of the offering city, accepted: on the request
    it fills, or on a request raised for it now, in this transaction."""
    lc.ensure_incident_active(lc.IncidentStatus(incident.status), "accept an offer")
    request_id = request_id if request_id is not None else offer.request_id
    if request_id is not None:
        request = _request_to_fill(ctx, incident, request_id, offer.resource)
    else:
        kind = resource_kind(ctx, offer.resource, None)
        body = AidRequestCreate(
            resource=offer.resource,
            quantity=terms.quantity,
            notes=f"Raised on accepting offer {offer.id}",
        )
        request = add_request(ctx, incident, compute_targets(ctx, incident), body, kind)
    offer.request_id = request.id
    # Settled first: answering the request's offers once it fills skips this one.
    ctx.session.add(offer)
    ctx.session.flush()
    claim = claims.claim_for_offer(
        ctx,
        incident,
        request,
        city_id=offer.city_id,
        quantity=terms.quantity,
        package_id=offer.package_id,
        note=offer.note,
        idempotency_key=f"offer-{offer.id}",
    )
    offer.claim_id = claim.id


# Expiring (the sweeper) -----------------------------------------------------------------


def due_offer_expiries(ctx: CommandContext, batch: int) -> list[int]:
    rows = ctx.session.exec(
        select(Offer.id)
        .where(
            col(Offer.status).in_(sorted(s.value for s in rules.OPEN_OFFER_STATUSES)),
            col(Offer.expires_at) <= ctx.now,
        )
        .order_by(col(Offer.expires_at))
        .limit(batch)
    ).all()
    return [int(i) for i in rows if i is not None]


def expire_offer(ctx: CommandContext, offer_id: int) -> bool:
    """Expire an offer nobody answered, if it is still unanswered and due (re-checked
    under the incident's lock: on two replicas it expires once)."""
    try:
        incident, offer = _locked_offer(ctx, offer_id)
    except NotFound:
        return False
    state = state_of(offer)
    if not rules.is_due(state, ctx.now):
        return False
    after = rules.move(state, rules.OfferStatus.EXPIRED, rules.OfferParty.SYSTEM, now=ctx.now)
    offer.status = after.status.value
    record(ctx, incident, offer)
    return True


# Reading --------------------------------------------------------------------------------


def list_offers(
    ctx: CommandContext, incident_id: int, status: str | None, limit: int, offset: int
) -> Page[OfferPublic]:
    """The offers made to an incident, newest first, for every city that can see it."""
    visible_incident(ctx.session, ctx.actor, incident_id)
    where = [col(Offer.incident_id) == incident_id]
    if status is not None:
        where.append(col(Offer.status) == status)
    total = ctx.session.exec(select(func.count()).select_from(Offer).where(*where)).one()
    rows = ctx.session.exec(
        select(Offer).where(*where).order_by(col(Offer.id).desc()).limit(limit).offset(offset)
    ).all()
    data = [offer_public(o) for o in rows]
    next_offset = offset + len(data) if offset + len(data) < total else None
    return Page[OfferPublic](
        data=data, count=total, limit=limit, offset=offset, next_offset=next_offset
    )


def get_offer(ctx: CommandContext, offer_id: int) -> OfferPublic:
    offer = ctx.session.get(Offer, offer_id)
    missing = f"offer {offer_id} not found"
    if offer is None:
        raise NotFound(missing)
    visible_incident(ctx.session, ctx.actor, offer.incident_id, missing)
    return offer_public(offer)
