"""The scheduled steps: escalate, expire claims, expire requests, remind managers.

Due work is found in the database, never held in memory, so a restart loses
nothing. Each step runs in its own transaction under the incident's lock and
re-checks that it is still due, so however many replicas sweep at once, each
step happens exactly once (the second replica finds the ring already moved, the
claim already expired).
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from service.commands.aid_requests import end_request
from service.commands.claims import apply_claim_transition
from service.commands.context import (
    CommandContext,
    fresh,
    locked,
)
from service.commands.escalation import escalate_while_uncovered, move_outward
from service.commands.presenters import as_json, claim_public
from service.domain import lifecycles as lc
from service.domain.errors import NotFound
from service.domain.events import EventType
from service.domain.rings import LAST_RING
from service.persistence.tables import AidRequest, Claim

_OPEN = [s.value for s in lc.CLAIMABLE_REQUEST_STATUSES]
_NOT_FINAL = [s.value for s in lc.RequestStatus if s not in lc.FINAL_REQUEST_STATUSES]
SWEEP_BATCH = 200


# Finding due work (reads) -----------------------------------------------------------


def due_escalations(ctx: CommandContext) -> list[tuple[int, int]]:
    """(request id, its current ring) of requests whose ring interval has passed."""
    rows = ctx.session.exec(
        select(AidRequest.id, AidRequest.ring)
        .where(
            col(AidRequest.status).in_(_OPEN),
            col(AidRequest.next_escalation_at).is_not(None),
            col(AidRequest.next_escalation_at) <= ctx.now,
            col(AidRequest.ring) < LAST_RING,
        )
        .order_by(col(AidRequest.next_escalation_at))
        .limit(SWEEP_BATCH)
    ).all()
    return [(int(i), int(r)) for i, r in rows if i is not None]


def due_claim_expiries(ctx: CommandContext) -> list[int]:
    rows = ctx.session.exec(
        select(Claim.id)
        .where(
            col(Claim.status) == lc.ClaimStatus.CLAIMED.value,
            col(Claim.expires_at).is_not(None),
            col(Claim.expires_at) <= ctx.now,
        )
        .limit(SWEEP_BATCH)
    ).all()
    return [int(i) for i in rows if i is not None]


def due_request_expiries(ctx: CommandContext) -> list[int]:
    rows = ctx.session.exec(
        select(AidRequest.id)
        .where(
            col(AidRequest.status).in_(_NOT_FINAL),
            col(AidRequest.needed_by).is_not(None),
            col(AidRequest.needed_by) <= ctx.now,
        )
        .limit(SWEEP_BATCH)
    ).all()
    return [int(i) for i in rows if i is not None]


def due_reminders(ctx: CommandContext) -> list[int]:
    """Claims awaiting acceptance for half their timeout, not yet reminded of."""
    rows = ctx.session.exec(
        select(Claim.id, Claim.created_at, Claim.expires_at)
        .where(
            col(Claim.status) == lc.ClaimStatus.CLAIMED.value,
            col(Claim.reminded_at).is_(None),
            col(Claim.expires_at).is_not(None),
        )
        .limit(SWEEP_BATCH * 5)
    ).all()
    return [
        int(i)
        for i, created, expires in rows
        if i is not None and expires is not None and ctx.now >= created + (expires - created) / 2
    ][:SWEEP_BATCH]


# One step each (writes) ---------------------------------------------------------------


def escalate_request(ctx: CommandContext, request_id: int, from_ring: int) -> bool:
    """Move a request from `from_ring` outward, if it is still there and still due."""
    try:
        incident, request = locked(ctx.session, AidRequest, request_id, "request")
    except NotFound:
        return False
    if (
        request.ring != from_ring
        or request.status not in _OPEN
        or request.next_escalation_at is None
        or request.next_escalation_at > ctx.now
    ):
        return False
    move_outward(ctx, incident, request, "timer")
    escalate_while_uncovered(ctx, incident, request)
    return True


def expire_claim(ctx: CommandContext, claim_id: int) -> bool:
    try:
        incident, claim = locked(ctx.session, Claim, claim_id, "claim")
    except NotFound:
        return False
    if (
        claim.status != lc.ClaimStatus.CLAIMED.value
        or claim.expires_at is None
        or claim.expires_at > ctx.now
    ):
        return False
    request = fresh(ctx.session, AidRequest, claim.request_id, "request")
    apply_claim_transition(ctx, incident, request, claim, lc.ClaimStatus.EXPIRED, lc.Party.SYSTEM)
    return True


def expire_request(ctx: CommandContext, request_id: int) -> bool:
    try:
        incident, request = locked(ctx.session, AidRequest, request_id, "request")
    except NotFound:
        return False
    if request.status not in _NOT_FINAL or request.needed_by is None or request.needed_by > ctx.now:
        return False
    end_request(ctx, incident, request, lc.RequestStatus.EXPIRED, EventType.REQUEST_EXPIRED)
    return True


def remind_manager(ctx: CommandContext, claim_id: int) -> bool:
    try:
        incident, claim = locked(ctx.session, Claim, claim_id, "claim")
    except NotFound:
        return False
    if claim.status != lc.ClaimStatus.CLAIMED.value or claim.reminded_at is not None:
        return False
    claim.reminded_at = ctx.now
    ctx.session.add(claim)
    waiting = ctx.now - claim.created_at
    ctx.emit(
        incident,
        EventType.CLAIM_REMINDER,
        {
            "claim": as_json(claim_public(claim)),
            "waiting_s": int(waiting / timedelta(seconds=1)),
            "expires_at": claim.expires_at.isoformat() if claim.expires_at else None,
        },
        cities=[incident.city_id],
    )
    return True
