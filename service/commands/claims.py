"""Claiming requests and moving claims along their lifecycle.

A claim is one conditional UPDATE of the request (`claimed_quantity + n <= quantity`
and a claimable status), backed by a CHECK constraint, so two responders on two
replicas can never take the same unit. A retried claim with the same idempotency
key returns the first claim; the same key with another body is refused.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import case, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select

from service.commands.context import (
    CommandContext,
    audience_of,
    claim_cities,
    current_audience,
    fresh,
    locked,
    require_city,
    target_rings,
    visible_incident,
)
from service.commands.presenters import as_json, claim_public, request_public
from service.domain import lifecycles as lc
from service.domain.actors import Role
from service.domain.errors import (
    Forbidden,
    IdempotencyMismatch,
    IllegalTransition,
    Invalid,
)
from service.domain.events import EventType
from service.domain.quantities import check_claim_fits
from service.models import ClaimCreate, ClaimStatusChange
from service.persistence.tables import AidRequest, Claim, Incident


def fingerprint(request_id: int, body: ClaimCreate) -> str:
    canonical = json.dumps({"request_id": request_id, **body.model_dump()}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim_request(
    ctx: CommandContext, request_id: int, body: ClaimCreate, idempotency_key: str
) -> tuple[Claim, bool]:
    """Claim `body.quantity` units for the caller's city. Returns (claim, created)."""
    city_id = require_city(ctx.actor, Role.RESPONDER, Role.MANAGER)
    incident, request = locked(ctx.session, AidRequest, request_id, "request")

    # After the lock: a concurrent claim with this key has committed or not started.
    print_ = fingerprint(request_id, body)
    earlier = ctx.session.exec(
        select(Claim).where(
            col(Claim.city_id) == city_id, col(Claim.idempotency_key) == idempotency_key
        )
    ).one_or_none()
    if earlier is not None:
        if earlier.body_fingerprint != print_:
            raise IdempotencyMismatch(
                "this Idempotency-Key was already used for a different claim; "
                "use a new key for a new claim"
            )
        return earlier, False

    rings = target_rings(ctx.session, request_id)
    _check_may_claim(ctx, incident, request, city_id, rings.get(city_id))
    check_claim_fits(request.quantity, request.claimed_quantity, body.quantity)
    if not _take_units(ctx, request, body.quantity):
        # The conditional update is the arbiter; report what is actually left.
        request = fresh(ctx.session, AidRequest, request_id, "request")
        check_claim_fits(request.quantity, request.claimed_quantity, body.quantity)
        raise IllegalTransition("request", request.status, "claimed")

    claim = Claim(
        request_id=request_id,
        incident_id=request.incident_id,
        city_id=city_id,
        quantity=body.quantity,
        status=lc.ClaimStatus.CLAIMED.value,
        note=body.note,
        idempotency_key=idempotency_key,
        body_fingerprint=print_,
        claimed_by_token_id=ctx.actor.token_id,
        created_at=ctx.now,
        updated_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=incident.claim_acceptance_timeout_s),
    )
    ctx.session.add(claim)
    ctx.session.flush()
    ctx.emit(
        incident,
        EventType.CLAIM_MADE,
        {"claim": as_json(claim_public(claim)), "request": as_json(request_public(request))},
        cities=audience_of(request, rings),
    )
    return claim, True


def _check_may_claim(
    ctx: CommandContext, incident: Incident, request: AidRequest, city_id: int, ring: int | None
) -> None:
    if ring is None or ring > request.ring:
        visible_incident(
            ctx.session, ctx.actor, incident.id or 0, f"request {request.id} not found"
        )
        if city_id == request.city_id:
            raise Forbidden("a city cannot claim its own request")
        raise Forbidden("this request is not aimed at your city (yet)")
    check_claimable(incident.status, request.status)


def check_claimable(incident_status: str, request_status: str) -> None:
    """What a claim needs of the incident and the request, once the ring lets the city in."""
    lc.ensure_incident_active(lc.IncidentStatus(incident_status), "claim")
    status = lc.RequestStatus(request_status)
    if status not in lc.CLAIMABLE_REQUEST_STATUSES:
        why = (
            "nothing is left to claim"
            if status is lc.RequestStatus.CLAIMED
            else "the request is no longer open"
        )
        raise IllegalTransition("request", status, "claimed", why)


def _take_units(ctx: CommandContext, request: AidRequest, quantity: int) -> bool:
    """The one conditional UPDATE that commits units; False when they are no longer there.
    On success `request` carries the row as the update left it."""
    new_claimed = col(AidRequest.claimed_quantity) + quantity
    result = ctx.session.execute(
        update(AidRequest)
        .where(
            col(AidRequest.id) == request.id,
            col(AidRequest.status).in_([s.value for s in lc.CLAIMABLE_REQUEST_STATUSES]),
            new_claimed <= col(AidRequest.quantity),
        )
        .values(
            claimed_quantity=new_claimed,
            status=case(
                (new_claimed >= col(AidRequest.quantity), lc.RequestStatus.CLAIMED.value),
                else_=lc.RequestStatus.PARTIALLY_CLAIMED.value,
            ),
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
            raise Forbidden("only the requesting city's manager can accept or decline claims")
        return lc.Party.REQUESTER
    visible_incident(ctx.session, ctx.actor, incident.id or 0, f"claim {claim.id} not found")
    raise Forbidden("this claim belongs to another city")


def apply_claim_transition(
    ctx: CommandContext,
    incident: Incident,
    request: AidRequest,
    claim: Claim,
    asked: lc.ClaimStatus,
    party: lc.Party,
    body: ClaimStatusChange | None = None,
) -> None:
    kind = lc.RequestKind(request.kind)
    answer = body.answer if body else None
    current = lc.ClaimStatus(claim.status)
    lc.check_claim_transition(current, asked, party, kind, has_answer=answer is not None)
    if answer is not None and not (
        kind is lc.RequestKind.INFORMATION and asked is lc.ClaimStatus.RELEASED
    ):
        raise Invalid("an answer is given only when releasing a claim on an information request")

    claim.status = asked.value
    claim.updated_at = ctx.now
    if body is not None and body.note:
        claim.note = body.note
    if answer is not None:
        claim.answer = answer
    if asked is not lc.ClaimStatus.CLAIMED:
        claim.expires_at = None
    if asked in lc.EARLY_END_CLAIM_STATUSES:
        request.claimed_quantity -= claim.quantity
    if asked is lc.ClaimStatus.ON_SITE or (
        kind is lc.RequestKind.INFORMATION and asked is lc.ClaimStatus.RELEASED
    ):
        request.delivered_quantity += claim.quantity
    _settle_request(ctx, incident, request, claim)


def _settle_request(
    ctx: CommandContext, incident: Incident, request: AidRequest, claim: Claim
) -> None:
    """Recompute a non-final request's status from its quantities and record the change."""
    before = lc.RequestStatus(request.status)
    if before not in lc.FINAL_REQUEST_STATUSES:
        after = lc.request_status_for(
            request.quantity, request.claimed_quantity, request.delivered_quantity
        )
        if after is not before:
            lc.check_request_transition(before, after)
            request.status = after.value
            if after is lc.RequestStatus.FULFILLED:
                request.next_escalation_at = None
    request.updated_at = ctx.now
    ctx.session.add_all([claim, request])
    ctx.session.flush()
    audience = sorted(
        set(current_audience(ctx.session, request)) | claim_cities(ctx.session, request.id or 0)
    )
    request_data = {"request": as_json(request_public(request))}
    ctx.emit(
        incident,
        EventType.CLAIM_CHANGED,
        {"claim": as_json(claim_public(claim)), **request_data},
        cities=audience,
    )
    if (
        request.status == lc.RequestStatus.FULFILLED.value
        and before is not lc.RequestStatus.FULFILLED
    ):
        ctx.emit(incident, EventType.REQUEST_FULFILLED, request_data, cities=audience)
