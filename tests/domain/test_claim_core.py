"""The claim core's decisions one by one (service/domain/claims.py); the properties of
its arithmetic are in test_quantity_properties.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain import claims as rules
from service.domain.errors import (
    IdempotencyMismatch,
    IllegalTransition,
    Invalid,
    NotEnoughRemaining,
)
from service.domain.lifecycles import (
    PRIORITY_ORDER,
    ClaimStatus,
    IncidentStatus,
    Party,
    RequestKind,
    RequestStatus,
    priority_rank,
)

REQUESTER_CITY, CLAIMER_CITY = 1, 2


def _target(
    claimed: int = 0,
    status: RequestStatus = RequestStatus.OPEN,
    incident: IncidentStatus = IncidentStatus.ACTIVE,
    ring: int = 0,
) -> rules.ClaimTarget:
    return rules.ClaimTarget(REQUESTER_CITY, ring, rules.Tally(4, claimed, 0, status), incident)


def _ask(quantity: int = 1, city_id: int = CLAIMER_CITY) -> rules.ClaimAsk:
    return rules.ClaimAsk(city_id, quantity, fingerprint="print")


def test_a_claim_that_fits_takes_its_units_and_moves_the_request_on() -> None:
    decision = rules.decide_claim(_target(), _ask(3), city_ring=0, earlier_fingerprint=None)
    assert decision == rules.Take(3, rules.Tally(4, 3, 0, RequestStatus.PARTIALLY_CLAIMED))
    last = rules.decide_claim(
        _target(3, RequestStatus.PARTIALLY_CLAIMED), _ask(1), city_ring=0, earlier_fingerprint=None
    )
    assert last == rules.Take(1, rules.Tally(4, 4, 0, RequestStatus.CLAIMED))


def test_the_same_key_and_body_replays_and_another_body_is_refused() -> None:
    replay = rules.decide_claim(_target(), _ask(), city_ring=0, earlier_fingerprint="print")
    assert replay == rules.Replay()
    with pytest.raises(IdempotencyMismatch):
        rules.decide_claim(_target(), _ask(), city_ring=0, earlier_fingerprint="other")


def test_a_replay_is_answered_even_once_the_request_is_claimed_in_full() -> None:
    full = _target(4, RequestStatus.CLAIMED)
    assert rules.decide_claim(full, _ask(), city_ring=0, earlier_fingerprint="print") == (
        rules.Replay()
    )


@pytest.mark.parametrize(
    ("city_id", "city_ring", "request_ring", "why"),
    [
        (REQUESTER_CITY, None, 2, "a city cannot claim its own request"),
        (CLAIMER_CITY, None, 2, "this request is not aimed at your city (yet)"),
        (CLAIMER_CITY, 2, 1, "this request is not aimed at your city (yet)"),
    ],
)
def test_a_city_the_request_does_not_reach_is_out_of_reach(
    city_id: int, city_ring: int | None, request_ring: int, why: str
) -> None:
    decision = rules.decide_claim(
        _target(ring=request_ring),
        _ask(city_id=city_id),
        city_ring=city_ring,
        earlier_fingerprint=None,
    )
    assert isinstance(decision, rules.OutOfReach)
    assert decision.refusal.detail == why


def test_closed_incidents_full_requests_and_too_many_units_are_refused() -> None:
    with pytest.raises(IllegalTransition, match="closed incident"):
        rules.decide_claim(
            _target(incident=IncidentStatus.CLOSED), _ask(), city_ring=0, earlier_fingerprint=None
        )
    with pytest.raises(IllegalTransition, match="nothing is left to claim"):
        rules.decide_claim(
            _target(4, RequestStatus.CLAIMED), _ask(), city_ring=0, earlier_fingerprint=None
        )
    with pytest.raises(NotEnoughRemaining):
        rules.decide_claim(_target(2), _ask(3), city_ring=0, earlier_fingerprint=None)


def test_early_ends_give_units_back_and_arrivals_deliver_them() -> None:
    claimed = rules.Tally(4, 4, 0, RequestStatus.CLAIMED)
    withdrawn = rules.move_claim(
        claimed,
        current=ClaimStatus.ACCEPTED,
        asked=ClaimStatus.WITHDRAWN,
        party=Party.RESPONDER,
        kind=RequestKind.PERSONNEL,
        quantity=3,
    )
    assert withdrawn == rules.Tally(4, 1, 0, RequestStatus.PARTIALLY_CLAIMED)
    arrived = rules.move_claim(
        claimed,
        current=ClaimStatus.EN_ROUTE,
        asked=ClaimStatus.ON_SITE,
        party=Party.RESPONDER,
        kind=RequestKind.PERSONNEL,
        quantity=4,
    )
    assert arrived == rules.Tally(4, 4, 4, RequestStatus.FULFILLED)


def test_an_answer_is_given_only_when_releasing_an_information_claim() -> None:
    with pytest.raises(Invalid):
        rules.move_claim(
            rules.Tally(1, 1, 0, RequestStatus.CLAIMED),
            current=ClaimStatus.CLAIMED,
            asked=ClaimStatus.ACCEPTED,
            party=Party.REQUESTER,
            kind=RequestKind.INFORMATION,
            quantity=1,
            answer_given=True,
        )


def test_ending_a_request_names_the_claims_it_ends_and_frees_their_units() -> None:
    tally = rules.Tally(5, 4, 1, RequestStatus.PARTIALLY_CLAIMED)
    cancel = rules.request_end(tally, RequestStatus.CANCELLED)
    assert cancel.claim_status is ClaimStatus.DECLINED
    assert ClaimStatus.ON_SITE not in cancel.ending
    assert rules.request_end(tally, RequestStatus.EXPIRED).ending == {ClaimStatus.CLAIMED}
    assert rules.end_request(tally, RequestStatus.CANCELLED, [2, 1]) == rules.Tally(
        5, 1, 1, RequestStatus.CANCELLED
    )
    with pytest.raises(IllegalTransition):
        rules.request_end(rules.Tally(5, 0, 0, RequestStatus.CANCELLED), RequestStatus.EXPIRED)
    with pytest.raises(IllegalTransition):
        rules.request_end(tally, RequestStatus.FULFILLED)


def test_a_ring_reaches_the_cities_targeted_at_it_or_inside_it() -> None:
    assert rules.ring_reaches(0, 1) and rules.ring_reaches(1, 1)
    assert not rules.ring_reaches(2, 1) and not rules.ring_reaches(None, 2)
    assert rules.audience(REQUESTER_CITY, 1, {5: 0, 6: 1, 7: 2}) == [REQUESTER_CITY, 5, 6]


def test_a_claim_expires_after_the_incident_acceptance_timeout() -> None:
    now = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)
    assert rules.claim_expires_at(now, 1800) == now + timedelta(minutes=30)


def test_priorities_rank_most_urgent_first() -> None:
    assert PRIORITY_ORDER == ("critical", "high", "normal", "low")
    assert sorted(["low", "critical", "normal", "high"], key=priority_rank) == list(PRIORITY_ORDER)
    assert priority_rank("unknown") == len(PRIORITY_ORDER)
