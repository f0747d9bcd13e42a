"""Lifecycles of incidents, requests and claims: one pure function each decides a transition.

Each `check_*` returns normally when the transition is allowed and raises
`IllegalTransition` naming the current and the asked-for state otherwise.
"""

from __future__ import annotations

from enum import StrEnum

from service.domain.errors import IllegalTransition, IncidentNotActive, WrongParty


class IncidentStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class RequestKind(StrEnum):
    PERSONNEL = "personnel"
    INFRASTRUCTURE = "infrastructure"
    INFORMATION = "information"


class RequestStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_CLAIMED = "partially_claimed"
    CLAIMED = "claimed"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ClaimStatus(StrEnum):
    CLAIMED = "claimed"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"
    EXPIRED = "expired"


# Request priorities, most urgent first: lists and boards sort by this order.
PRIORITY_ORDER: tuple[str, ...] = ("critical", "high", "normal", "low")


def priority_rank(priority: str) -> int:
    """A priority's place in `PRIORITY_ORDER` (an unknown one sorts last)."""
    return PRIORITY_ORDER.index(priority) if priority in PRIORITY_ORDER else len(PRIORITY_ORDER)


class Party(StrEnum):
    """Who asks for a claim transition."""

    REQUESTER = "requester"  # the manager of the requesting city
    RESPONDER = "responder"  # the claiming city
    SYSTEM = "system"  # the scheduler


FINAL_REQUEST_STATUSES = frozenset(
    {RequestStatus.FULFILLED, RequestStatus.CANCELLED, RequestStatus.EXPIRED}
)
CLAIMABLE_REQUEST_STATUSES = frozenset({RequestStatus.OPEN, RequestStatus.PARTIALLY_CLAIMED})

# Claims whose quantity counts against the request.
COMMITTED_CLAIM_STATUSES = frozenset(
    {
        ClaimStatus.CLAIMED,
        ClaimStatus.ACCEPTED,
        ClaimStatus.EN_ROUTE,
        ClaimStatus.ON_SITE,
        ClaimStatus.RELEASED,
    }
)
# Early ends: the claim's quantity goes back to the request.
EARLY_END_CLAIM_STATUSES = frozenset(
    {ClaimStatus.WITHDRAWN, ClaimStatus.DECLINED, ClaimStatus.EXPIRED}
)
# Claims whose units have arrived (or whose answer was delivered).
DELIVERED_CLAIM_STATUSES = frozenset({ClaimStatus.ON_SITE, ClaimStatus.RELEASED})


def check_incident_transition(current: IncidentStatus, asked: IncidentStatus) -> None:
    if current is IncidentStatus.ACTIVE and asked is IncidentStatus.CLOSED:
        return
    raise IllegalTransition("incident", current, asked)


def ensure_incident_active(
    status: IncidentStatus,
    action: str,
    why: str = "a closed incident accepts no new requests or claims",
) -> None:
    if status is not IncidentStatus.ACTIVE:
        raise IncidentNotActive(status, action, why)


_REQUEST_MOVES: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.OPEN: frozenset(
        {
            RequestStatus.PARTIALLY_CLAIMED,
            RequestStatus.CLAIMED,
            RequestStatus.CANCELLED,
            RequestStatus.EXPIRED,
        }
    ),
    RequestStatus.PARTIALLY_CLAIMED: frozenset(
        {
            RequestStatus.OPEN,
            RequestStatus.CLAIMED,
            RequestStatus.CANCELLED,
            RequestStatus.EXPIRED,
        }
    ),
    RequestStatus.CLAIMED: frozenset(
        {
            RequestStatus.OPEN,
            RequestStatus.PARTIALLY_CLAIMED,
            RequestStatus.FULFILLED,
            RequestStatus.CANCELLED,
            RequestStatus.EXPIRED,
        }
    ),
}


def check_request_transition(current: RequestStatus, asked: RequestStatus) -> None:
    if asked in _REQUEST_MOVES.get(current, frozenset()):
        return
    why = "it is final" if current in FINAL_REQUEST_STATUSES else ""
    raise IllegalTransition("request", current, asked, why)


def request_status_for(
    quantity: int, claimed_quantity: int, delivered_quantity: int
) -> RequestStatus:
    """The status a non-final request has, given its quantities."""
    if delivered_quantity >= quantity:
        return RequestStatus.FULFILLED
    if claimed_quantity >= quantity:
        return RequestStatus.CLAIMED
    if claimed_quantity > 0:
        return RequestStatus.PARTIALLY_CLAIMED
    return RequestStatus.OPEN


# (current, asked) -> the party allowed to ask.
_CLAIM_MOVES: dict[tuple[ClaimStatus, ClaimStatus], Party] = {
    (ClaimStatus.CLAIMED, ClaimStatus.ACCEPTED): Party.REQUESTER,
    (ClaimStatus.CLAIMED, ClaimStatus.DECLINED): Party.REQUESTER,
    (ClaimStatus.CLAIMED, ClaimStatus.WITHDRAWN): Party.RESPONDER,
    (ClaimStatus.CLAIMED, ClaimStatus.EXPIRED): Party.SYSTEM,
    (ClaimStatus.ACCEPTED, ClaimStatus.EN_ROUTE): Party.RESPONDER,
    (ClaimStatus.ACCEPTED, ClaimStatus.WITHDRAWN): Party.RESPONDER,
    (ClaimStatus.ACCEPTED, ClaimStatus.DECLINED): Party.REQUESTER,
    (ClaimStatus.EN_ROUTE, ClaimStatus.ON_SITE): Party.RESPONDER,
    (ClaimStatus.EN_ROUTE, ClaimStatus.WITHDRAWN): Party.RESPONDER,
    (ClaimStatus.EN_ROUTE, ClaimStatus.DECLINED): Party.REQUESTER,  # stand a team down
    (ClaimStatus.ON_SITE, ClaimStatus.RELEASED): Party.RESPONDER,
    # Information claims skip travel: an accepted claim is answered by releasing it.
    (ClaimStatus.ACCEPTED, ClaimStatus.RELEASED): Party.RESPONDER,
}


def check_claim_transition(
    current: ClaimStatus,
    asked: ClaimStatus,
    party: Party,
    kind: RequestKind,
    *,
    has_answer: bool = False,
) -> None:
    """Allow `current → asked` for `party` on a claim of a request of `kind`.

    Information claims never travel (no en_route / on_site) and are released
    with an answer; other claims are released only from on_site.
    """
    allowed_party = _CLAIM_MOVES.get((current, asked))
    if allowed_party is None:
        raise IllegalTransition("claim", current, asked)
    is_information = kind is RequestKind.INFORMATION
    if is_information and asked in (ClaimStatus.EN_ROUTE, ClaimStatus.ON_SITE):
        raise IllegalTransition(
            "claim", current, asked, "an information claim is answered, not dispatched"
        )
    if asked is ClaimStatus.RELEASED and current is ClaimStatus.ACCEPTED and not is_information:
        raise IllegalTransition("claim", current, asked, "only units on site can be released")
    if is_information and asked is ClaimStatus.RELEASED and not has_answer:
        raise IllegalTransition(
            "claim", current, asked, "an information claim is released with its answer"
        )
    if allowed_party is not party:
        raise WrongParty("claim", current, asked, _WHO[allowed_party])


_WHO = {
    Party.REQUESTER: "the requesting city's manager",
    Party.RESPONDER: "the claiming city",
    Party.SYSTEM: "the scheduler",
}
