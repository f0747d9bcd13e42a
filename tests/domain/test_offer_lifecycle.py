"""The offer lifecycle: who may make which move, and what expiry allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain import lifecycles as lc
from service.domain import offers as rules
from service.domain.errors import Conflict, Forbidden, IllegalTransition, Invalid, WrongParty

NOW = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)
READY = NOW + timedelta(hours=4)
S = rules.OfferStatus
P = rules.OfferParty


def _offer(status: S = S.OPEN, countered: rules.Terms | None = None) -> rules.OfferState:
    return rules.OfferState(status, rules.Terms(4, READY), countered, NOW + timedelta(hours=1))


def test_the_requester_accepts_declines_or_counters_an_open_offer() -> None:
    assert rules.move(_offer(), S.ACCEPTED, P.REQUESTER, now=NOW).status is S.ACCEPTED
    declined = rules.move(_offer(), S.DECLINED, P.REQUESTER, now=NOW, reason="Enough pumps")
    assert declined.status is S.DECLINED
    counter = rules.Terms(2, READY)
    countered = rules.move(_offer(), S.COUNTERED, P.REQUESTER, now=NOW, counter=counter)
    assert countered.status is S.COUNTERED
    assert countered.countered == counter
    assert rules.agreed(countered) == counter


def test_the_offerer_accepts_or_withdraws_a_counter_but_cannot_answer_its_own_offer() -> None:
    countered = _offer(S.COUNTERED, rules.Terms(2, READY))
    accepted = rules.move(countered, S.ACCEPTED, P.OFFERER, now=NOW)
    assert rules.agreed(accepted) == rules.Terms(2, READY)
    assert rules.move(countered, S.WITHDRAWN, P.OFFERER, now=NOW).status is S.WITHDRAWN
    assert rules.move(_offer(), S.WITHDRAWN, P.OFFERER, now=NOW).status is S.WITHDRAWN
    with pytest.raises(WrongParty, match="only the requesting city's manager"):
        rules.move(_offer(), S.ACCEPTED, P.OFFERER, now=NOW)
    with pytest.raises(WrongParty, match="only the offering city"):
        rules.move(countered, S.ACCEPTED, P.REQUESTER, now=NOW)
    with pytest.raises(WrongParty):
        rules.move(_offer(), S.WITHDRAWN, P.REQUESTER, now=NOW)
    with pytest.raises(IllegalTransition):
        rules.move(countered, S.COUNTERED, P.REQUESTER, now=NOW, counter=rules.Terms(1, READY))


@pytest.mark.parametrize("final", [S.ACCEPTED, S.DECLINED, S.WITHDRAWN, S.EXPIRED])
@pytest.mark.parametrize("asked", [S.ACCEPTED, S.DECLINED, S.WITHDRAWN, S.COUNTERED, S.EXPIRED])
def test_a_final_offer_takes_no_move(final: S, asked: S) -> None:
    with pytest.raises(IllegalTransition, match=f"already {final}"):
        rules.move(_offer(final), asked, P.SYSTEM, now=NOW + timedelta(days=2))


def test_only_an_unanswered_offer_past_its_expiry_expires_and_then_nothing_else_moves_it() -> None:
    later = NOW + timedelta(hours=1)
    with pytest.raises(Conflict, match="not expired yet"):
        rules.move(_offer(), S.EXPIRED, P.SYSTEM, now=later - timedelta(seconds=1))
    assert rules.move(_offer(), S.EXPIRED, P.SYSTEM, now=later).status is S.EXPIRED
    with pytest.raises(WrongParty):
        rules.move(_offer(), S.EXPIRED, P.REQUESTER, now=later)
    # The sweeper may not have come by yet: an offer past its expiry is not accepted.
    countered = _offer(S.COUNTERED, rules.Terms(2, READY))
    with pytest.raises(IllegalTransition, match="expired at 2026-02-12T09:00:00"):
        rules.move(countered, S.ACCEPTED, P.OFFERER, now=later)
    assert rules.is_due(countered, later)
    assert not rules.is_due(_offer(S.ACCEPTED), later)


def test_a_counter_changes_the_terms_and_a_decline_by_the_requester_says_why() -> None:
    with pytest.raises(Invalid, match="another quantity or ready_at"):
        rules.move(_offer(), S.COUNTERED, P.REQUESTER, now=NOW)
    with pytest.raises(Invalid, match="must change"):
        rules.move(_offer(), S.COUNTERED, P.REQUESTER, now=NOW, counter=rules.Terms(4, READY))
    with pytest.raises(Invalid, match="counter only"):
        rules.move(_offer(), S.ACCEPTED, P.REQUESTER, now=NOW, counter=rules.Terms(2, READY))
    with pytest.raises(Invalid, match="needs a reason"):
        rules.move(_offer(), S.DECLINED, P.REQUESTER, now=NOW)
    # The service answers an offer whose request filled up without one.
    assert rules.move(_offer(), S.DECLINED, P.SYSTEM, now=NOW).status is S.DECLINED
    assert rules.counter_terms(rules.Terms(4, READY), None, None) is None
    assert rules.counter_terms(rules.Terms(4, READY), 3, None) == rules.Terms(3, READY)
    later = READY + timedelta(hours=2)
    assert rules.counter_terms(rules.Terms(4, READY), None, later) == rules.Terms(4, later)


def test_a_new_offer_goes_to_another_citys_active_incident_with_times_that_fit() -> None:
    ok = {
        "city_id": 2,
        "requesting_city_id": 1,
        "incident_status": lc.IncidentStatus.ACTIVE,
        "ready_at": READY,
        "expires_at": NOW + timedelta(hours=1),
        "now": NOW,
    }
    rules.check_new_offer(**ok)  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="its own incident"):
        rules.check_new_offer(**{**ok, "city_id": 1})  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition):
        rules.check_new_offer(**{**ok, "incident_status": lc.IncidentStatus.CLOSED})  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="in the future"):
        rules.check_new_offer(**{**ok, "expires_at": NOW})  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="within 30 days"):
        rules.check_new_offer(**{**ok, "expires_at": NOW + timedelta(days=31)})  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="within 365 days"):
        rules.check_new_offer(**{**ok, "ready_at": NOW + timedelta(days=400)})  # type: ignore[arg-type]
    assert rules.expiry(None, NOW) == NOW + rules.DEFAULT_LIFETIME


def test_an_offer_fills_only_a_request_of_its_incident_and_resource() -> None:
    same = {
        "offer_resource": "high-capacity-pump",
        "request_resource": "high-capacity-pump",
        "offer_incident_id": 1,
        "request_incident_id": 1,
    }
    rules.check_fills(**same)  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="asks for generator"):
        rules.check_fills(**{**same, "request_resource": "generator-100kw"})  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="offer's incident"):
        rules.check_fills(**{**same, "request_incident_id": 2})  # type: ignore[arg-type]
