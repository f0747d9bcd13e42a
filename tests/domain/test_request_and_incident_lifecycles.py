"""Request and incident lifecycles, and the status a request's quantities imply."""

from __future__ import annotations

from itertools import product

import pytest

from service.domain.errors import Conflict, IllegalTransition
from service.domain.lifecycles import (
    CLAIMABLE_REQUEST_STATUSES,
    FINAL_REQUEST_STATUSES,
    IncidentStatus,
    RequestStatus,
    check_incident_transition,
    check_request_transition,
    ensure_incident_active,
    request_status_for,
)

R = RequestStatus

# open → partially_claimed → claimed → fulfilled; any non-final state may be cancelled
# or expire; a claim that ends early reopens a claimed or partially claimed request.
# A whole request can be taken by one claim (open → claimed), and every unit being
# delivered implies every unit was claimed, so only `claimed` leads to `fulfilled`.
REQUEST_MOVES: dict[R, set[R]] = {
    R.OPEN: {R.PARTIALLY_CLAIMED, R.CLAIMED, R.CANCELLED, R.EXPIRED},
    R.PARTIALLY_CLAIMED: {R.OPEN, R.CLAIMED, R.CANCELLED, R.EXPIRED},
    R.CLAIMED: {R.OPEN, R.PARTIALLY_CLAIMED, R.FULFILLED, R.CANCELLED, R.EXPIRED},
    R.FULFILLED: set(),
    R.CANCELLED: set(),
    R.EXPIRED: set(),
}


def _request_allows(current: R, asked: R) -> bool:
    try:
        check_request_transition(current, asked)
    except IllegalTransition as exc:
        assert (exc.current, exc.asked) == (current, asked)
        return False
    return True


@pytest.mark.parametrize(
    ("current", "asked"), list(product(RequestStatus, RequestStatus)), ids=lambda s: str(s)
)
def test_request_transition_matches_the_design_table(current: R, asked: R) -> None:
    assert _request_allows(current, asked) is (asked in REQUEST_MOVES[current])


def test_final_request_statuses_are_exactly_those_with_no_way_out() -> None:
    assert {s for s, moves in REQUEST_MOVES.items() if not moves} == FINAL_REQUEST_STATUSES
    assert {R.OPEN, R.PARTIALLY_CLAIMED} == CLAIMABLE_REQUEST_STATUSES


@pytest.mark.parametrize("final", sorted(FINAL_REQUEST_STATUSES))
def test_a_final_request_refuses_every_move_and_says_it_is_final(final: R) -> None:
    for asked in RequestStatus:
        with pytest.raises(IllegalTransition, match="it is final") as caught:
            check_request_transition(final, asked)
        assert isinstance(caught.value, Conflict)


def test_refusal_from_a_live_request_names_both_states() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_request_transition(R.OPEN, R.FULFILLED)
    assert caught.value.detail == "request cannot go from 'open' to 'fulfilled'"


# -- request_status_for ------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "claimed", "delivered", "expected"),
    [
        (4, 0, 0, R.OPEN),
        (4, 1, 0, R.PARTIALLY_CLAIMED),
        (4, 3, 2, R.PARTIALLY_CLAIMED),
        (4, 4, 0, R.CLAIMED),
        (4, 4, 3, R.CLAIMED),
        (4, 4, 4, R.FULFILLED),
        (1, 0, 0, R.OPEN),
        (1, 1, 0, R.CLAIMED),
        (1, 1, 1, R.FULFILLED),
    ],
)
def test_request_status_follows_its_quantities(
    quantity: int, claimed: int, delivered: int, expected: R
) -> None:
    assert request_status_for(quantity, claimed, delivered) is expected


def _status_by_design(quantity: int, claimed: int, delivered: int) -> R:
    if delivered == quantity:
        return R.FULFILLED
    if claimed == quantity:
        return R.CLAIMED
    return R.PARTIALLY_CLAIMED if claimed else R.OPEN


def test_request_status_for_every_reachable_combination_of_quantities() -> None:
    # Reachable: 0 <= delivered <= claimed <= quantity (units are delivered by claims).
    for quantity in range(1, 8):
        for claimed in range(quantity + 1):
            for delivered in range(claimed + 1):
                got = request_status_for(quantity, claimed, delivered)
                assert got is _status_by_design(quantity, claimed, delivered), (
                    quantity,
                    claimed,
                    delivered,
                )
                assert got not in {R.CANCELLED, R.EXPIRED}


def test_a_request_one_unit_short_is_claimed_not_fulfilled() -> None:
    assert request_status_for(10, 10, 9) is R.CLAIMED


# -- incidents -------------------------------------------------------------------

INCIDENT_MOVES = {(IncidentStatus.ACTIVE, IncidentStatus.CLOSED)}


@pytest.mark.parametrize(
    ("current", "asked"), list(product(IncidentStatus, IncidentStatus)), ids=lambda s: str(s)
)
def test_incident_transition_matches_the_design_table(
    current: IncidentStatus, asked: IncidentStatus
) -> None:
    if (current, asked) in INCIDENT_MOVES:
        check_incident_transition(current, asked)
    else:
        with pytest.raises(IllegalTransition) as caught:
            check_incident_transition(current, asked)
        assert (caught.value.current, caught.value.asked) == (current, asked)


def test_an_active_incident_accepts_requests_and_claims() -> None:
    ensure_incident_active(IncidentStatus.ACTIVE, "claim")


@pytest.mark.parametrize("action", ["raise a request", "claim"])
def test_a_closed_incident_refuses_new_requests_and_claims_with_a_reason(action: str) -> None:
    with pytest.raises(IllegalTransition) as caught:
        ensure_incident_active(IncidentStatus.CLOSED, action)
    assert isinstance(caught.value, Conflict)
    assert caught.value.detail == (
        f"incident cannot go from 'closed' to '{action}': "
        "a closed incident accepts no new requests or claims"
    )
