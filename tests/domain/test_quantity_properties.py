"""Property: whatever claims, early ends and deliveries happen, a request is never over-committed.

The model below drives one request and its claims through the pure rules only
(`check_claim_fits`, `check_claim_transition`, `request_status_for`,
`check_request_transition`), keeping the quantities as the commands do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from service.domain.errors import IllegalTransition, NotEnoughRemaining, WrongParty
from service.domain.lifecycles import (
    CLAIMABLE_REQUEST_STATUSES,
    COMMITTED_CLAIM_STATUSES,
    DELIVERED_CLAIM_STATUSES,
    EARLY_END_CLAIM_STATUSES,
    FINAL_REQUEST_STATUSES,
    ClaimStatus,
    Party,
    RequestKind,
    RequestStatus,
    check_claim_transition,
    check_request_transition,
    request_status_for,
)
from service.domain.quantities import check_claim_fits


@dataclass
class RequestModel:
    kind: RequestKind
    quantity: int
    claimed_quantity: int = 0
    delivered_quantity: int = 0
    status: RequestStatus = RequestStatus.OPEN
    claims: list[tuple[int, ClaimStatus]] = field(default_factory=list)

    def claim(self, asked: int) -> None:
        if self.status not in CLAIMABLE_REQUEST_STATUSES:
            return
        try:
            check_claim_fits(self.quantity, self.claimed_quantity, asked)
        except NotEnoughRemaining:
            return
        self.claims.append((asked, ClaimStatus.CLAIMED))
        self.claimed_quantity += asked
        self._settle()

    def move(self, index: int, asked: ClaimStatus, party: Party) -> None:
        if not self.claims:
            return
        index %= len(self.claims)
        quantity, current = self.claims[index]
        answered = self.kind is RequestKind.INFORMATION and asked is ClaimStatus.RELEASED
        try:
            check_claim_transition(current, asked, party, self.kind, has_answer=answered)
        except (IllegalTransition, WrongParty):
            return
        self.claims[index] = (quantity, asked)
        if asked in EARLY_END_CLAIM_STATUSES:
            self.claimed_quantity -= quantity
        if asked is ClaimStatus.ON_SITE or answered:
            self.delivered_quantity += quantity
        self._settle()

    def end(self, final: RequestStatus) -> None:
        """Cancel (claims not yet on site are declined) or expire (unaccepted claims lapse)."""
        try:
            check_request_transition(self.status, final)
        except IllegalTransition:
            return
        if final is RequestStatus.CANCELLED:
            ending = {ClaimStatus.CLAIMED, ClaimStatus.ACCEPTED, ClaimStatus.EN_ROUTE}
            claim_end, party = ClaimStatus.DECLINED, Party.REQUESTER
        else:
            ending = {ClaimStatus.CLAIMED}
            claim_end, party = ClaimStatus.EXPIRED, Party.SYSTEM
        for i, (quantity, current) in enumerate(self.claims):
            if current in ending:
                check_claim_transition(current, claim_end, party, self.kind)
                self.claims[i] = (quantity, claim_end)
                self.claimed_quantity -= quantity
        self.status = final

    def _settle(self) -> None:
        if self.status in FINAL_REQUEST_STATUSES:
            return
        after = request_status_for(self.quantity, self.claimed_quantity, self.delivered_quantity)
        if after is not self.status:
            # The request lifecycle must allow every move the arithmetic makes.
            check_request_transition(self.status, after)
            self.status = after


def _check_invariants(request: RequestModel) -> None:
    committed = sum(q for q, s in request.claims if s in COMMITTED_CLAIM_STATUSES)
    delivered = sum(q for q, s in request.claims if s in DELIVERED_CLAIM_STATUSES)
    assert 0 <= request.claimed_quantity <= request.quantity
    assert request.claimed_quantity == committed
    assert request.delivered_quantity == delivered
    assert 0 <= request.delivered_quantity <= request.claimed_quantity


# The natural next step of a live claim, and who takes it.
_FORWARD = {
    ClaimStatus.CLAIMED: (ClaimStatus.ACCEPTED, Party.REQUESTER),
    ClaimStatus.ACCEPTED: (ClaimStatus.EN_ROUTE, Party.RESPONDER),
    ClaimStatus.EN_ROUTE: (ClaimStatus.ON_SITE, Party.RESPONDER),
    ClaimStatus.ON_SITE: (ClaimStatus.RELEASED, Party.RESPONDER),
}
_EARLY_ENDS = [
    (ClaimStatus.WITHDRAWN, Party.RESPONDER),
    (ClaimStatus.DECLINED, Party.REQUESTER),
    (ClaimStatus.EXPIRED, Party.SYSTEM),
]
claim_index = st.integers(0, 3)


class ClaimsAndEarlyEndsNeverOverCommitARequest(RuleBasedStateMachine):
    """Any sequence of claims, lifecycle steps, early ends and request ends keeps
    0 <= claimed <= quantity, with claimed equal to the sum of committed claims."""

    @initialize(kind=st.sampled_from(RequestKind), quantity=st.integers(1, 10))
    def raise_request(self, kind: RequestKind, quantity: int) -> None:
        self.request = RequestModel(kind=kind, quantity=quantity)

    @rule(asked=st.integers(1, 4))
    def claim(self, asked: int) -> None:
        self.request.claim(asked)

    @rule(index=claim_index)
    def advance(self, index: int) -> None:
        if self.request.claims:
            _, current = self.request.claims[index % len(self.request.claims)]
            if current is ClaimStatus.ACCEPTED and self.request.kind is RequestKind.INFORMATION:
                self.request.move(index, ClaimStatus.RELEASED, Party.RESPONDER)
            elif current in _FORWARD:
                self.request.move(index, *_FORWARD[current])

    @rule(index=claim_index, how=st.sampled_from(_EARLY_ENDS))
    def end_early(self, index: int, how: tuple[ClaimStatus, Party]) -> None:
        self.request.move(index, *how)

    @rule(index=claim_index, asked=st.sampled_from(ClaimStatus), party=st.sampled_from(Party))
    def ask_anything(self, index: int, asked: ClaimStatus, party: Party) -> None:
        self.request.move(index, asked, party)

    @rule(final=st.sampled_from([RequestStatus.CANCELLED, RequestStatus.EXPIRED]))
    def end_request(self, final: RequestStatus) -> None:
        self.request.end(final)

    @invariant()
    def never_over_committed(self) -> None:
        _check_invariants(self.request)


TestClaimsAndEarlyEndsNeverOverCommitARequest = ClaimsAndEarlyEndsNeverOverCommitARequest.TestCase
TestClaimsAndEarlyEndsNeverOverCommitARequest.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None
)


@settings(max_examples=200, deadline=None)
@given(quantity=st.integers(1, 10), asks=st.lists(st.integers(1, 4), max_size=30))
def test_claims_alone_fill_a_request_exactly_when_they_can(quantity: int, asks: list[int]) -> None:
    request = RequestModel(kind=RequestKind.INFRASTRUCTURE, quantity=quantity)
    for asked in asks:
        before = request.claimed_quantity
        request.claim(asked)
        fitted = before + asked <= quantity
        assert request.claimed_quantity == (before + asked if fitted else before)
        _check_invariants(request)
    if request.claimed_quantity == quantity:
        assert request.status is RequestStatus.CLAIMED
