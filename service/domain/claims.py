"""The claim core: what a claim, a claim's transition and a request's end do to a request.

Pure functions over plain values. The ORM command (`service.commands.claims`), the
PostgreSQL batch path (`service.adapters.pg_claims`) and the sweeps all decide through
these, and keep only the reading and writing of rows: no path re-derives a rule.

A request's quantities are its `Tally`: `claimed_quantity` counts the units of its
committed claims (see `lifecycles.COMMITTED_CLAIM_STATUSES`), `delivered_quantity`
those on site or answered; a non-final request's status follows from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from service.domain import lifecycles as lc
from service.domain.errors import (
    Forbidden,
    IdempotencyMismatch,
    IllegalTransition,
    Invalid,
    NotAimedAtCity,
    OwnRequest,
    RequestNotOpen,
)
from service.domain.quantities import check_claim_fits


@dataclass(frozen=True, slots=True)
class Tally:
    """A request's quantities and status."""

    quantity: int
    claimed_quantity: int
    delivered_quantity: int
    status: lc.RequestStatus


@dataclass(frozen=True, slots=True)
class ClaimTarget:
    """What deciding a claim needs to know of a request and its incident."""

    city_id: int  # the requesting city
    ring: int  # the ring the request has reached
    tally: Tally
    incident_status: lc.IncidentStatus


@dataclass(frozen=True, slots=True)
class ClaimAsk:
    """One city's claim: how many units, and the fingerprint of its body."""

    city_id: int
    quantity: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Replay:
    """The same key and body were claimed before: answer with that claim."""


@dataclass(frozen=True, slots=True)
class OutOfReach:
    """The request does not reach the city. The caller first answers NotFound if the city
    cannot see the incident at all (that needs more reading), else raises `refusal`."""

    refusal: Forbidden


@dataclass(frozen=True, slots=True)
class Take:
    """Make the claim: `quantity` units, leaving the request at `after`."""

    quantity: int
    after: Tally


Decision = Replay | OutOfReach | Take

IDEMPOTENCY_MISMATCH = (
    "this Idempotency-Key was already used for a different claim; use a new key for a new claim"
)


def ring_reaches(target_ring: int | None, request_ring: int) -> bool:
    """Whether a request that has reached `request_ring` reaches a city targeted at
    `target_ring` (None: the city is no target of the request)."""
    return target_ring is not None and target_ring <= request_ring


def reached_cities(rings: Mapping[int, int], request_ring: int) -> set[int]:
    """The cities of `rings` (city id → its target ring) the request reaches now."""
    return {city for city, ring in rings.items() if ring_reaches(ring, request_ring)}


def audience(request_city_id: int, request_ring: int, rings: Mapping[int, int]) -> list[int]:
    """The inboxes a request's events go to: the cities it reaches now, and its own."""
    return sorted({request_city_id, *reached_cities(rings, request_ring)})


def claim_expires_at(now: datetime, acceptance_timeout_s: int) -> datetime:
    """When a claim made at `now` expires unless the requesting city accepts it."""
    return now + timedelta(seconds=acceptance_timeout_s)


def decide_claim(
    target: ClaimTarget,
    ask: ClaimAsk,
    *,
    city_ring: int | None,
    earlier_fingerprint: str | None,
) -> Decision:
    """Decide one claim on the request as it is now.

    `city_ring` is the ring at which the request targets the claiming city (None: not
    at all); `earlier_fingerprint` the body fingerprint of the city's earlier claim
    with the same idempotency key, if there is one. Refusals that need nothing more
    are raised: `IdempotencyMismatch`, `IllegalTransition` (closed incident, request
    no longer claimable), `NotEnoughRemaining`.
    """
    if earlier_fingerprint is not None:
        if earlier_fingerprint != ask.fingerprint:
            raise IdempotencyMismatch(IDEMPOTENCY_MISMATCH)
        return Replay()
    if not ring_reaches(city_ring, target.ring):
        if ask.city_id == target.city_id:
            return OutOfReach(OwnRequest("a city cannot claim its own request"))
        return OutOfReach(NotAimedAtCity())
    check_claimable(target.incident_status, target.tally.status)
    return Take(ask.quantity, take_units(target.tally, ask.quantity))


def check_claimable(incident_status: lc.IncidentStatus, request_status: lc.RequestStatus) -> None:
    """What a claim needs of the incident and the request, once the ring lets the city in."""
    lc.ensure_incident_active(incident_status, "claim")
    if request_status not in lc.CLAIMABLE_REQUEST_STATUSES:
        why = (
            "nothing is left to claim"
            if request_status is lc.RequestStatus.CLAIMED
            else "the request is no longer open"
        )
        raise RequestNotOpen(request_status, "claimed", why)


def take_units(tally: Tally, quantity: int) -> Tally:
    """The request once a claim of `quantity` units is made (`NotEnoughRemaining` if
    they do not fit)."""
    check_claim_fits(tally.quantity, tally.claimed_quantity, quantity)
    return settle(replace(tally, claimed_quantity=tally.claimed_quantity + quantity))


def settle(tally: Tally) -> Tally:
    """A non-final request's status recomputed from its quantities; a final one as is."""
    if tally.status in lc.FINAL_REQUEST_STATUSES:
        return tally
    after = lc.request_status_for(tally.quantity, tally.claimed_quantity, tally.delivered_quantity)
    if after is tally.status:
        return tally
    lc.check_request_transition(tally.status, after)
    return replace(tally, status=after)


def move_claim(
    tally: Tally,
    *,
    current: lc.ClaimStatus,
    asked: lc.ClaimStatus,
    party: lc.Party,
    kind: lc.RequestKind,
    quantity: int,
    answer_given: bool = False,
) -> Tally:
    """Check the claim transition `current → asked` and return the request it leaves.

    An early end (withdrawn, declined, expired) gives the claim's units back; arriving
    on site, or answering an information claim, delivers them.
    """
    lc.check_claim_transition(current, asked, party, kind, has_answer=answer_given)
    answers = kind is lc.RequestKind.INFORMATION and asked is lc.ClaimStatus.RELEASED
    if answer_given and not answers:
        raise Invalid("an answer is given only when releasing a claim on an information request")
    claimed, delivered = tally.claimed_quantity, tally.delivered_quantity
    if asked in lc.EARLY_END_CLAIM_STATUSES:
        claimed -= quantity
    if asked is lc.ClaimStatus.ON_SITE or answers:
        delivered += quantity
    return settle(replace(tally, claimed_quantity=claimed, delivered_quantity=delivered))


def claim_keeps_expiry(status: lc.ClaimStatus) -> bool:
    """Only a claim not yet accepted can expire."""
    return status is lc.ClaimStatus.CLAIMED


@dataclass(frozen=True, slots=True)
class RequestEnd:
    """What ending a request does to its claims: those in `ending` move to `claim_status`."""

    ending: frozenset[lc.ClaimStatus]
    claim_status: lc.ClaimStatus


# Cancelling stands down the claims not yet on site; expiry lets claims never accepted lapse.
_ENDS = {
    lc.RequestStatus.CANCELLED: RequestEnd(
        frozenset({lc.ClaimStatus.CLAIMED, lc.ClaimStatus.ACCEPTED, lc.ClaimStatus.EN_ROUTE}),
        lc.ClaimStatus.DECLINED,
    ),
    lc.RequestStatus.EXPIRED: RequestEnd(
        frozenset({lc.ClaimStatus.CLAIMED}), lc.ClaimStatus.EXPIRED
    ),
}


def request_end(tally: Tally, final: lc.RequestStatus) -> RequestEnd:
    """Check that the request may end as `final`, and what that does to its claims."""
    lc.check_request_transition(tally.status, final)
    end = _ENDS.get(final)
    if end is None:
        raise IllegalTransition("request", tally.status, final, "only cancelling or expiry")
    return end


def end_request(tally: Tally, final: lc.RequestStatus, ended_quantities: Iterable[int]) -> Tally:
    """The request once it ends as `final` and the claims `request_end` names, of
    `ended_quantities` units each, have ended: their units leave `claimed_quantity`."""
    request_end(tally, final)
    return replace(
        tally, status=final, claimed_quantity=tally.claimed_quantity - sum(ended_quantities)
    )
