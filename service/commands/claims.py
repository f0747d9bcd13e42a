"""Claiming requests and moving claims along their lifecycle, over the ORM.

The rules are the claim core's (`service.domain.claims`): this module reads the rows
a decision needs, asks the core, and writes what it decided. A claim is one
conditional UPDATE of the request (applied only where the request is as the decision
saw it), backed by a CHECK constraint, so two responders on two replicas can never
take the same unit. A retried claim with the same idempotency key returns the first
claim; the same key with another body is refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select

from service.commands import offer_answers, rosters
from service.commands.context import (
    CommandContext,
    audience_of,
    body_fingerprint,
    claim_cities,
    current_audience,
    fresh,
    locked,
    require_city,
    target_rings,
    visible_incident,
)
from service.commands.escalation import escalate_while_uncovered
from service.commands.presenters import as_json, claim_public, request_public
from service.domain import claims as rules
from service.domain import dispatch
from service.domain import lifecycles as lc
from service.domain import rosters as roster_rules
from service.domain.actors import Role
from service.domain.errors import (
    OtherCity,
    RequestingManagerOnly,
    RequestNotOpen,
)
from service.domain.events import EventType
from service.models import ClaimCreate, ClaimStatusChange
from service.persistence.tables import AidRequest, Claim, Incident


def fingerprint(request_id: int, body: ClaimCreate) -> str:
    fields = body.model_dump()
    if fields["package_id"] is None:
        del fields["package_id"]  # a claim not from a roster keeps the fingerprint it had
    return body_fingerprint({"request_id": request_id, **fields})


def claim_request(
    ctx: CommandContext, request_id: int, body: ClaimCreate, idempotency_key: str
) -> tuple[Claim, bool]:
    """Claim `body.quantity` units for the caller's city. Returns (claim, created)."""
    city_id = require_city(ctx.actor, Role.RESPONDER, Role.MANAGER)
    incident, request = locked(ctx.session, AidRequest, request_id, "request")

    # After the lock: a concurrent claim with this key has committed or not started.
    ask = rules.ClaimAsk(city_id, body.quantity, fingerprint(request_id, body))
    earlier = ctx.session.exec(
        select(Claim).where(
            col(Claim.city_id) == city_id, col(Claim.idempotency_key) == idempotency_key
        )
    ).one_or_none()
    rings = target_rings(ctx.session, request_id)
    decision = _decide(incident, request, ask, rings, earlier)
    if isinstance(decision, rules.Replay):
        assert earlier is not None
        return earlier, False
    if isinstance(decision, rules.OutOfReach):
        visible_incident(
            ctx.session, ctx.actor, incident.id or 0, f"request {request.id} not found"
        )
        raise decision.refusal
    while not _take_units(ctx, request, decision):
        # The conditional update is the arbiter: decide again on the row as it is now
        # (under the incident lock it never changes; the condition guards regardless).
        request = fresh(ctx.session, AidRequest, request_id, "request")
        decision = _decide(incident, request, ask, rings, earlier)
        if not isinstance(decision, rules.Take):
            raise RequestNotOpen(request.status, "claimed")
    claim = _record_claim(
        ctx,
        incident,
        request,
        city_id,
        body,
        idempotency_key,
        ask.fingerprint,
        audience_of(request, rings),
    )
    offer_answers.answer_offers(ctx, incident, request)
    return claim, True


def _record_claim(
    ctx: CommandContext,
    incident: Incident,
    request: AidRequest,
    city_id: int,
    body: ClaimCreate,
    idempotency_key: str,
    body_fingerprint: str,
    audience: list[int],
) -> Claim:
    """Once the request's units are taken: commit the package's units (when the claim is
    made from one), write the claim and record `claim.made` for `audience`."""
    package = None
    if body.package_id is not None:
        package = rosters.commit_from_package(
            ctx, city_id, body.package_id, request.resource, body.quantity
        )
    claim = Claim(
        request_id=request.id or 0,
        incident_id=request.incident_id,
        city_id=city_id,
        quantity=body.quantity,
        status=lc.ClaimStatus.CLAIMED.value,
        note=body.note,
        idempotency_key=idempotency_key,
        body_fingerprint=body_fingerprint,
        claimed_by_token_id=ctx.actor.token_id,
        created_at=ctx.now,
        updated_at=ctx.now,
        expires_at=rules.claim_expires_at(ctx.now, incident.claim_acceptance_timeout_s),
        package_id=body.package_id,
    )
    ctx.session.add(claim)
    ctx.session.flush()
    data = {"claim": as_json(claim_public(claim)), "request": as_json(request_public(request))}
    if package is not None:
        data["package"] = package
    ctx.emit(incident, EventType.CLAIM_MADE, data, cities=audience)
    return claim


def claim_for_offer(
    ctx: CommandContext,
    incident: Incident,
    request: AidRequest,
    *,
    city_id: int,
    quantity: int,
    package_id: int | None,
    note: str,
    idempotency_key: str,
) -> Claim:
    """The claim an accepted offer makes for the offering city (the incident locked),
    through the claim core as every claim: the request's units and the package's units
    and cap hold. The requesting city has accepted it already, so it is made and
    accepted at once, whatever ring the request has reached."""
    body = ClaimCreate(quantity=quantity, note=note, package_id=package_id)
    ask = rules.ClaimAsk(city_id, quantity, fingerprint(request.id or 0, body))
    rings = target_rings(ctx.session, request.id or 0)
    rules.check_claimable(lc.IncidentStatus(incident.status), lc.RequestStatus(request.status))
    decision = rules.Take(quantity, rules.take_units(tally_of(request), quantity))
    if not _take_units(ctx, request, decision):
        # The incident is locked: the request cannot have moved; the database says so.
        raise RequestNotOpen(request.status, "claimed", "it changed meanwhile")
    audience = sorted({*audience_of(request, rings), city_id})
    claim = _record_claim(
        ctx, incident, request, city_id, body, idempotency_key, ask.fingerprint, audience
    )
    apply_claim_transition(
        ctx, incident, request, claim, lc.ClaimStatus.ACCEPTED, lc.Party.REQUESTER
    )
    offer_answers.answer_offers(ctx, incident, request)
    return claim


def tally_of(request: AidRequest) -> rules.Tally:
    return rules.Tally(
        quantity=request.quantity,
        claimed_quantity=request.claimed_quantity,
        delivered_quantity=request.delivered_quantity,
        status=lc.RequestStatus(request.status),
    )


def _decide(
    incident: Incident,
    request: AidRequest,
    ask: rules.ClaimAsk,
    rings: dict[int, int],
    earlier: Claim | None,
) -> rules.Decision:
    target = rules.ClaimTarget(
        city_id=request.city_id,
        ring=request.ring,
        tally=tally_of(request),
        incident_status=lc.IncidentStatus(incident.status),
    )
    return rules.decide_claim(
        target,
        ask,
        city_ring=rings.get(ask.city_id),
        earlier_fingerprint=earlier.body_fingerprint if earlier is not None else None,
    )


def _take_units(ctx: CommandContext, request: AidRequest, take: rules.Take) -> bool:
    """The one conditional UPDATE that commits the units the core decided to take: it
    applies only where the request is still as the decision saw it (the incident lock
    makes that certain; the condition keeps the database the arbiter regardless, and
    the CHECK constraint backs `claimed_quantity <= quantity`). False when it did not
    apply. On success `request` carries the row as the update left it."""
    before = tally_of(request)
    result = ctx.session.execute(
        update(AidRequest)
        .where(
            col(AidRequest.id) == request.id,
            col(AidRequest.claimed_quantity) == before.claimed_quantity,
            col(AidRequest.status) == before.status.value,
            col(AidRequest.status).in_([s.value for s in lc.CLAIMABLE_REQUEST_STATUSES]),
            col(AidRequest.quantity) >= take.after.claimed_quantity,
        )
        .values(
            claimed_quantity=take.after.claimed_quantity,
            status=take.after.status.value,
            updated_at=ctx.now,
        )
        .returning(
            col(AidRequest.claimed_quantity), col(AidRequest.status), col(AidRequest.updated_at)
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if result is None:
        return False
    # The row as it is now, without reading it again (and without marking it changed).
    for name, value in zip(("claimed_quantity", "status", "updated_at"), result, strict=True):
        set_committed_value(request, name, value)
    return True


def change_claim_status(ctx: CommandContext, claim_id: int, body: ClaimStatusChange) -> Claim:
    """Move a claim along its lifecycle, keeping the request's quantities in step."""
    city_id = require_city(ctx.actor, Role.RESPONDER, Role.MANAGER)
    incident, claim = locked(ctx.session, Claim, claim_id, "claim")
    request = fresh(ctx.session, AidRequest, claim.request_id, "request")
    party = _party(ctx, incident, claim, city_id)
    apply_claim_transition(ctx, incident, request, claim, lc.ClaimStatus(body.status), party, body)
    return claim


def _party(ctx: CommandContext, incident: Incident, claim: Claim, city_id: int) -> lc.Party:
    if claim.city_id == city_id:
        return lc.Party.RESPONDER
    if incident.city_id == city_id:
        if ctx.actor.role is not Role.MANAGER:
            raise RequestingManagerOnly(
                "only the requesting city's manager can accept or decline claims"
            )
        return lc.Party.REQUESTER
    visible_incident(ctx.session, ctx.actor, incident.id or 0, f"claim {claim.id} not found")
    raise OtherCity("this claim belongs to another city")


def apply_claim_transition(
    ctx: CommandContext,
    incident: Incident,
    request: AidRequest,
    claim: Claim,
    asked: lc.ClaimStatus,
    party: lc.Party,
    body: ClaimStatusChange | None = None,
) -> None:
    answer = body.answer if body else None
    journey = _journey(body)
    reason = body.reason if body else None
    dispatch.check_move_details(asked, journey, reason, now=ctx.now)
    before = lc.RequestStatus(request.status)
    claim_before = lc.ClaimStatus(claim.status)
    after = rules.move_claim(
        tally_of(request),
        current=lc.ClaimStatus(claim.status),
        asked=asked,
        party=party,
        kind=lc.RequestKind(request.kind),
        quantity=claim.quantity,
        answer_given=answer is not None,
    )
    claim.status = asked.value
    claim.updated_at = ctx.now
    if body is not None and body.note:
        claim.note = body.note
    if answer is not None:
        claim.answer = answer
    if asked is lc.ClaimStatus.EN_ROUTE:
        for name in journey.__slots__:
            setattr(claim, name, getattr(journey, name))
    if reason is not None:
        claim.end_reason = reason
    if not rules.claim_keeps_expiry(asked):
        claim.expires_at = None
    unclaimed_before = request.quantity - request.claimed_quantity
    request.claimed_quantity = after.claimed_quantity
    request.delivered_quantity = after.delivered_quantity
    request.status = after.status.value
    if after.status is lc.RequestStatus.FULFILLED:
        request.next_escalation_at = None
    package = None
    if roster_rules.gives_back(claim_before, asked):
        package = rosters.give_back(ctx, claim, request.resource)
    _record_change(ctx, incident, request, claim, before, package)
    if request.quantity - request.claimed_quantity > unclaimed_before:
        # More is unclaimed than the ring's cover was judged against.
        escalate_while_uncovered(ctx, incident, request)


def _journey(body: ClaimStatusChange | None) -> dispatch.Dispatch:
    if body is None:
        return dispatch.Dispatch()
    return dispatch.Dispatch(
        eta_at=body.eta,
        team_lead=body.team_lead,
        team_size=body.team_size,
        vehicle=body.vehicle,
        contact=body.contact,
    )


def _record_change(
    ctx: CommandContext,
    incident: Incident,
    request: AidRequest,
    claim: Claim,
    before: lc.RequestStatus,
    package: dict[str, Any] | None,
) -> None:
    """Write the claim and its request, and emit what changed."""
    request.updated_at = ctx.now
    ctx.session.add_all([claim, request])
    ctx.session.flush()
    audience = sorted(
        set(current_audience(ctx.session, request)) | claim_cities(ctx.session, request.id or 0)
    )
    request_data = {"request": as_json(request_public(request))}
    data = {"claim": as_json(claim_public(claim)), **request_data}
    if package is not None:
        data["package"] = package
    ctx.emit(incident, EventType.CLAIM_CHANGED, data, cities=audience)
    if (
        request.status == lc.RequestStatus.FULFILLED.value
        and before is not lc.RequestStatus.FULFILLED
    ):
        ctx.emit(incident, EventType.REQUEST_FULFILLED, request_data, cities=audience)
