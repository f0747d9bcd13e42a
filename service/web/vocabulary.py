"""The lifecycle vocabulary the pages use, built from the domain's own constants and rules.

The page shell embeds it as a JSON data block and `static/vocabulary.js` reads it, so
no script restates a status list, the priority order or which claim move is whose.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar, get_args

from service.domain import tokens as token_rules
from service.domain.errors import IllegalTransition, WrongParty
from service.domain.events import EventType
from service.domain.lifecycles import (
    CLAIMABLE_REQUEST_STATUSES,
    COMMITTED_CLAIM_STATUSES,
    DELIVERED_CLAIM_STATUSES,
    EARLY_END_CLAIM_STATUSES,
    FINAL_REQUEST_STATUSES,
    PRIORITY_ORDER,
    ClaimStatus,
    IncidentStatus,
    Party,
    RequestKind,
    RequestStatus,
    check_claim_transition,
)
from service.domain.offers import OPEN_OFFER_STATUSES, OfferParty, OfferStatus, moves_of
from service.models import Severity

E = TypeVar("E", bound=StrEnum)


def _in_order(kind: type[E], members: frozenset[E]) -> list[str]:
    """The members as strings, in the enum's own order (a frozenset has none)."""
    return [member.value for member in kind if member in members]


def claim_moves() -> dict[str, dict[str, dict[str, list[str]]]]:
    """kind → current status → party → the statuses that party may move a claim to.

    Asked of `check_claim_transition` itself, for every combination, with an answer at
    hand (an information claim is released with one), so the pages follow the rule.
    """
    moves: dict[str, dict[str, dict[str, list[str]]]] = {}
    for kind in RequestKind:
        by_status = moves.setdefault(kind.value, {})
        for current in ClaimStatus:
            for party in Party:
                for asked in ClaimStatus:
                    try:
                        check_claim_transition(current, asked, party, kind, has_answer=True)
                    except (IllegalTransition, WrongParty):
                        continue
                    by_status.setdefault(current.value, {}).setdefault(party.value, []).append(
                        asked.value
                    )
    return moves


def offer_moves() -> dict[str, dict[str, list[str]]]:
    """status → party ("requester", "offerer") → the statuses that party may move an offer to."""
    return {
        status.value: {
            party.value: [m.value for m in moves_of(status, party)]
            for party in (OfferParty.REQUESTER, OfferParty.OFFERER)
        }
        for status in OfferStatus
    }


def vocabulary() -> dict[str, Any]:
    """Every list and rule of the lifecycles a page needs, as plain JSON values."""
    return {
        "priorities": list(PRIORITY_ORDER),
        "severities": list(get_args(Severity)),
        "incident_statuses": [status.value for status in IncidentStatus],
        "request_kinds": [kind.value for kind in RequestKind],
        "request_statuses": [status.value for status in RequestStatus],
        "final_request_statuses": _in_order(RequestStatus, FINAL_REQUEST_STATUSES),
        "claimable_request_statuses": _in_order(RequestStatus, CLAIMABLE_REQUEST_STATUSES),
        "claim_statuses": [status.value for status in ClaimStatus],
        "committed_claim_statuses": _in_order(ClaimStatus, COMMITTED_CLAIM_STATUSES),
        "ended_claim_statuses": _in_order(ClaimStatus, EARLY_END_CLAIM_STATUSES),
        "delivered_claim_statuses": _in_order(ClaimStatus, DELIVERED_CLAIM_STATUSES),
        "claim_moves": claim_moves(),
        "event_types": [event_type.value for event_type in EventType],
        "token_scopes": list(token_rules.SCOPES),
        "offer_statuses": [status.value for status in OfferStatus],
        "open_offer_statuses": _in_order(OfferStatus, OPEN_OFFER_STATUSES),
        "offer_moves": offer_moves(),
    }
