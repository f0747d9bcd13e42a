"""The claim lifecycle, checked against a table written from DESIGN.md.

Every (current, asked, party, kind, has_answer) combination is decided by the
table below; a change to `check_claim_transition` that the table does not
mention fails here.
"""

from __future__ import annotations

from itertools import product

import pytest

from service.domain.errors import Conflict, Forbidden, IllegalTransition, WrongParty
from service.domain.lifecycles import (
    COMMITTED_CLAIM_STATUSES,
    DELIVERED_CLAIM_STATUSES,
    EARLY_END_CLAIM_STATUSES,
    ClaimStatus,
    Party,
    RequestKind,
    check_claim_transition,
)

C = ClaimStatus
P = Party
K = RequestKind

EVERY_KIND = frozenset(RequestKind)
TRAVELLING = frozenset({K.PERSONNEL, K.INFRASTRUCTURE})  # units that go somewhere
INFORMATION = frozenset({K.INFORMATION})
WITH_OR_WITHOUT_ANSWER = frozenset({False, True})
WITH_ANSWER = frozenset({True})

# current, asked, the one party that may ask, the kinds it applies to, has_answer values.
#
# claimed → accepted → en_route → on_site → released; early ends withdrawn (responder),
# declined (manager), expired (scheduler, only while not yet accepted). Information
# claims never travel: they go accepted → released, and only with their answer.
# en_route and on_site are unreachable for information claims; from there the early
# ends still apply and a release still needs the answer.
ALLOWED_ROWS: list[tuple[C, C, P, frozenset[K], frozenset[bool]]] = [
    (C.CLAIMED, C.ACCEPTED, P.REQUESTER, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.CLAIMED, C.DECLINED, P.REQUESTER, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.CLAIMED, C.WITHDRAWN, P.RESPONDER, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.CLAIMED, C.EXPIRED, P.SYSTEM, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.ACCEPTED, C.EN_ROUTE, P.RESPONDER, TRAVELLING, WITH_OR_WITHOUT_ANSWER),
    (C.ACCEPTED, C.RELEASED, P.RESPONDER, INFORMATION, WITH_ANSWER),
    (C.ACCEPTED, C.WITHDRAWN, P.RESPONDER, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.ACCEPTED, C.DECLINED, P.REQUESTER, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.EN_ROUTE, C.ON_SITE, P.RESPONDER, TRAVELLING, WITH_OR_WITHOUT_ANSWER),
    (C.EN_ROUTE, C.WITHDRAWN, P.RESPONDER, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.EN_ROUTE, C.DECLINED, P.REQUESTER, EVERY_KIND, WITH_OR_WITHOUT_ANSWER),
    (C.ON_SITE, C.RELEASED, P.RESPONDER, TRAVELLING, WITH_OR_WITHOUT_ANSWER),
    (C.ON_SITE, C.RELEASED, P.RESPONDER, INFORMATION, WITH_ANSWER),
]

ALLOWED: frozenset[tuple[C, C, P, K, bool]] = frozenset(
    (current, asked, party, kind, answer)
    for current, asked, party, kinds, answers in ALLOWED_ROWS
    for kind in kinds
    for answer in answers
)

FINAL_CLAIM_STATUSES = (C.RELEASED, C.WITHDRAWN, C.DECLINED, C.EXPIRED)


def _allows(current: C, asked: C, party: P, kind: K, has_answer: bool) -> bool:
    try:
        check_claim_transition(current, asked, party, kind, has_answer=has_answer)
    except (IllegalTransition, WrongParty) as exc:
        assert exc.current == current
        assert exc.asked == asked
        return False
    return True


@pytest.mark.parametrize(
    ("current", "asked"),
    list(product(ClaimStatus, ClaimStatus)),
    ids=lambda s: str(s),
)
def test_claim_transition_matches_the_design_table_for_every_party_kind_and_answer(
    current: C, asked: C
) -> None:
    actual = {
        (current, asked, party, kind, answer)
        for party, kind, answer in product(Party, RequestKind, (False, True))
        if _allows(current, asked, party, kind, answer)
    }
    expected = {row for row in ALLOWED if row[:2] == (current, asked)}
    assert actual - expected == set(), "allowed by the code but not by the table"
    assert expected - actual == set(), "allowed by the table but refused by the code"


def test_the_table_rows_do_not_overlap_and_allow_62_of_1152_combinations() -> None:
    combinations = set(product(ClaimStatus, ClaimStatus, Party, RequestKind, (False, True)))
    assert len(combinations) == 1152
    assert combinations >= ALLOWED
    assert len(ALLOWED) == sum(len(kinds) * len(answers) for *_, kinds, answers in ALLOWED_ROWS)
    assert len(ALLOWED) == 62


@pytest.mark.parametrize("final", FINAL_CLAIM_STATUSES)
def test_a_final_claim_never_moves_again(final: C) -> None:
    for asked, party, kind, answer in product(ClaimStatus, Party, RequestKind, (False, True)):
        assert not _allows(final, asked, party, kind, answer)


def test_nothing_ever_goes_back_to_claimed() -> None:
    for current, party, kind in product(ClaimStatus, Party, RequestKind):
        assert not _allows(current, C.CLAIMED, party, kind, False)


def test_an_illegal_claim_transition_is_a_conflict_naming_both_states() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_claim_transition(C.RELEASED, C.ACCEPTED, P.REQUESTER, K.PERSONNEL)
    assert isinstance(caught.value, Conflict)
    assert caught.value.detail == "claim cannot go from 'released' to 'accepted'"


def test_responder_cannot_accept_its_own_claim_and_is_told_who_can() -> None:
    with pytest.raises(
        WrongParty, match="only the requesting city's manager can do that"
    ) as caught:
        check_claim_transition(C.CLAIMED, C.ACCEPTED, P.RESPONDER, K.PERSONNEL)
    # The move exists but is not this side's: a 403 (wrong role), not a 409.
    assert isinstance(caught.value, Forbidden)


def test_manager_cannot_withdraw_a_responders_claim_and_is_told_who_can() -> None:
    with pytest.raises(WrongParty, match="only the claiming city can do that"):
        check_claim_transition(C.CLAIMED, C.WITHDRAWN, P.REQUESTER, K.PERSONNEL)


def test_only_the_scheduler_expires_a_claim() -> None:
    for party in (P.REQUESTER, P.RESPONDER):
        with pytest.raises(WrongParty, match="only the scheduler can do that"):
            check_claim_transition(C.CLAIMED, C.EXPIRED, party, K.PERSONNEL)


def test_an_accepted_claim_no_longer_expires() -> None:
    for kind in RequestKind:
        assert not _allows(C.ACCEPTED, C.EXPIRED, P.SYSTEM, kind, False)


def test_information_claim_is_answered_not_dispatched() -> None:
    with pytest.raises(IllegalTransition, match="answered, not dispatched"):
        check_claim_transition(C.ACCEPTED, C.EN_ROUTE, P.RESPONDER, K.INFORMATION)
    with pytest.raises(IllegalTransition, match="answered, not dispatched"):
        check_claim_transition(C.EN_ROUTE, C.ON_SITE, P.RESPONDER, K.INFORMATION)


def test_information_claim_is_released_only_with_its_answer() -> None:
    with pytest.raises(IllegalTransition, match="released with its answer"):
        check_claim_transition(C.ACCEPTED, C.RELEASED, P.RESPONDER, K.INFORMATION)
    check_claim_transition(C.ACCEPTED, C.RELEASED, P.RESPONDER, K.INFORMATION, has_answer=True)


@pytest.mark.parametrize("kind", sorted(TRAVELLING))
def test_units_are_released_only_once_on_site(kind: K) -> None:
    with pytest.raises(IllegalTransition, match="only units on site can be released"):
        check_claim_transition(C.ACCEPTED, C.RELEASED, P.RESPONDER, kind, has_answer=True)
    with pytest.raises(IllegalTransition):
        check_claim_transition(C.EN_ROUTE, C.RELEASED, P.RESPONDER, kind)
    check_claim_transition(C.ON_SITE, C.RELEASED, P.RESPONDER, kind)


def _reachable_from_claimed(kind: K) -> set[C]:
    seen = {C.CLAIMED}
    frontier = [C.CLAIMED]
    while frontier:
        current = frontier.pop()
        for asked, party in product(ClaimStatus, Party):
            if asked not in seen and _allows(current, asked, party, kind, True):
                seen.add(asked)
                frontier.append(asked)
    return seen


@pytest.mark.parametrize("kind", sorted(TRAVELLING))
def test_every_claim_status_is_reachable_for_units(kind: K) -> None:
    assert _reachable_from_claimed(kind) == set(ClaimStatus)


def test_information_claims_reach_every_status_but_travel() -> None:
    assert _reachable_from_claimed(K.INFORMATION) == set(ClaimStatus) - {C.EN_ROUTE, C.ON_SITE}


def test_committed_and_early_end_statuses_split_every_claim_status() -> None:
    assert set(ClaimStatus) == COMMITTED_CLAIM_STATUSES | EARLY_END_CLAIM_STATUSES
    assert not COMMITTED_CLAIM_STATUSES & EARLY_END_CLAIM_STATUSES
    assert {C.WITHDRAWN, C.DECLINED, C.EXPIRED} == EARLY_END_CLAIM_STATUSES
    assert {C.ON_SITE, C.RELEASED} == DELIVERED_CLAIM_STATUSES
    assert DELIVERED_CLAIM_STATUSES <= COMMITTED_CLAIM_STATUSES
