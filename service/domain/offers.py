"""Offers: a peer city offers units (from a package, or catalogued resources) to an
incident it can see, unasked; the requesting city's manager accepts, declines or
counters; a counter is the offering city's to accept or withdraw; offers nobody
answers expire.

Pure functions over plain values; `service.commands.offers` reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from service.domain import lifecycles as lc
from service.domain.errors import (
    Conflict,
    IllegalTransition,
    Invalid,
    NotInFuture,
    OwnIncident,
    WrongParty,
)

# An offer given without an expiry lapses after a day; none stays open beyond 30 days.
DEFAULT_LIFETIME = timedelta(hours=24)
MAX_LIFETIME = timedelta(days=30)
# Units are ready within a year at the latest.
MAX_READINESS = timedelta(days=365)


class OfferStatus(StrEnum):
    OPEN = "open"
    COUNTERED = "countered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class OfferParty(StrEnum):
    """Who moves an offer."""

    REQUESTER = "requester"  # a manager of the city whose incident the offer is made to
    OFFERER = "offerer"  # the offering city (its manager or responder)
    SYSTEM = "system"  # the sweeper, or a request that has filled up


OPEN_OFFER_STATUSES = frozenset({OfferStatus.OPEN, OfferStatus.COUNTERED})
FINAL_OFFER_STATUSES = frozenset(set(OfferStatus) - OPEN_OFFER_STATUSES)

# (current, asked) → the party that may make the move.
_MOVES: dict[tuple[OfferStatus, OfferStatus], frozenset[OfferParty]] = {
    (OfferStatus.OPEN, OfferStatus.ACCEPTED): frozenset({OfferParty.REQUESTER}),
    (OfferStatus.OPEN, OfferStatus.DECLINED): frozenset({OfferParty.REQUESTER, OfferParty.SYSTEM}),
    (OfferStatus.OPEN, OfferStatus.COUNTERED): frozenset({OfferParty.REQUESTER}),
    (OfferStatus.OPEN, OfferStatus.WITHDRAWN): frozenset({OfferParty.OFFERER}),
    (OfferStatus.OPEN, OfferStatus.EXPIRED): frozenset({OfferParty.SYSTEM}),
    (OfferStatus.COUNTERED, OfferStatus.ACCEPTED): frozenset({OfferParty.OFFERER}),
    (OfferStatus.COUNTERED, OfferStatus.WITHDRAWN): frozenset({OfferParty.OFFERER}),
    (OfferStatus.COUNTERED, OfferStatus.DECLINED): frozenset({OfferParty.SYSTEM}),
    (OfferStatus.COUNTERED, OfferStatus.EXPIRED): frozenset({OfferParty.SYSTEM}),
}

_WHO = {
    OfferParty.REQUESTER: "the requesting city's manager",
    OfferParty.OFFERER: "the offering city",
    OfferParty.SYSTEM: "the service",
}


@dataclass(frozen=True, slots=True)
class Terms:
    """What is on the table: how many units, ready when."""

    quantity: int
    ready_at: datetime


@dataclass(frozen=True, slots=True)
class OfferState:
    status: OfferStatus
    terms: Terms
    countered: Terms | None
    expires_at: datetime


def moves_of(current: OfferStatus, party: OfferParty) -> list[OfferStatus]:
    """The statuses `party` may move an offer in `current` to (expiry aside)."""
    return [
        asked
        for (status, asked), parties in _MOVES.items()
        if status is current and party in parties and asked is not OfferStatus.EXPIRED
    ]


def check_new_offer(
    *,
    city_id: int,
    requesting_city_id: int,
    incident_status: lc.IncidentStatus,
    ready_at: datetime,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Refuse an offer a city may not make: to its own incident, to a closed one, or
    with times that do not fit."""
    if city_id == requesting_city_id:
        raise OwnIncident("a city cannot make an offer to its own incident")
    lc.ensure_incident_active(incident_status, "make an offer")
    check_times(ready_at, expires_at, now)


def check_times(ready_at: datetime, expires_at: datetime, now: datetime) -> None:
    if expires_at <= now:
        raise NotInFuture("expires_at")
    if expires_at > now + MAX_LIFETIME:
        raise Invalid(f"expires_at must be within {MAX_LIFETIME.days} days")
    check_ready(ready_at, now)


def check_ready(ready_at: datetime, now: datetime) -> None:
    if ready_at > now + MAX_READINESS:
        raise Invalid(f"ready_at must be within {MAX_READINESS.days} days")


def expiry(asked: datetime | None, now: datetime) -> datetime:
    """When a new offer lapses unless answered."""
    return asked if asked is not None else now + DEFAULT_LIFETIME


def is_due(state: OfferState, now: datetime) -> bool:
    """Whether the offer has lapsed: still unanswered at its expiry."""
    return state.status in OPEN_OFFER_STATUSES and state.expires_at <= now


def move(
    state: OfferState,
    asked: OfferStatus,
    party: OfferParty,
    *,
    now: datetime,
    counter: Terms | None = None,
    reason: str | None = None,
) -> OfferState:
    """Check the move `state.status → asked` by `party` at `now` and return the offer it
    leaves. A counter carries its `counter` terms; a decline its `reason`. An offer
    past its expiry takes no move but expiry (the sweeper may not have come by yet)."""
    current = state.status
    if current in FINAL_OFFER_STATUSES:
        raise IllegalTransition("offer", current, asked, f"the offer is already {current}")
    allowed = _MOVES.get((current, asked))
    if allowed is None:
        raise IllegalTransition("offer", current, asked)
    if party not in allowed:
        raise WrongParty("offer", current, asked, " or ".join(_WHO[p] for p in sorted(allowed)))
    if asked is OfferStatus.EXPIRED:
        if not is_due(state, now):
            raise Conflict("the offer has not expired yet")
    elif state.expires_at <= now:
        raise IllegalTransition(
            "offer", current, asked, f"the offer expired at {state.expires_at.isoformat()}"
        )
    if asked is OfferStatus.COUNTERED:
        if counter is None:
            raise Invalid("a counter gives another quantity or ready_at (or both)")
        if counter == state.terms:
            raise Invalid("a counter must change the quantity or ready_at")
        return replace(state, status=asked, countered=counter)
    if counter is not None:
        raise Invalid("quantity and ready_at go with a counter only")
    if asked is OfferStatus.DECLINED and party is OfferParty.REQUESTER and not reason:
        raise Invalid("declining an offer needs a reason")
    return replace(state, status=asked)


def agreed(state: OfferState) -> Terms:
    """The terms an acceptance settles on: the counter's if there is one."""
    return state.countered if state.countered is not None else state.terms


def counter_terms(terms: Terms, quantity: int | None, ready_at: datetime | None) -> Terms | None:
    """The counter's terms, from what the requester changes (None: nothing given)."""
    if quantity is None and ready_at is None:
        return None
    return Terms(
        quantity if quantity is not None else terms.quantity,
        ready_at if ready_at is not None else terms.ready_at,
    )


def check_fills(
    *,
    offer_resource: str,
    request_resource: str,
    offer_incident_id: int,
    request_incident_id: int,
) -> None:
    """An accepted offer that fills an existing request must be of the same incident
    and resource."""
    if request_incident_id != offer_incident_id:
        raise Invalid("the request to fill must belong to the offer's incident")
    if request_resource != offer_resource:
        raise Invalid(
            f"the offer is of {offer_resource}; the request to fill asks for {request_resource}"
        )


def filled_reason(request_id: int) -> str:
    """Why an open offer aimed at a request was answered once the request filled up."""
    return f"request {request_id} is fully claimed"
