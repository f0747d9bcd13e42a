"""Property: whatever claims, claim transitions and request ends happen, a request is never
over-committed, and its quantities are exactly those of its claims.

Both machines drive production code and keep no rules of their own: the first calls
the claim core (`service.domain.claims`) directly, the second the ORM commands
(claim, change a claim's status, expire a claim, cancel or expire a request) on
SQLite and checks the rows they leave. Each machine only records the claims the code
made and the statuses the code accepted, and checks the request's tallies against them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from service.commands.aid_requests import cancel_request, raise_request
from service.commands.claims import change_claim_status, claim_request
from service.commands.incidents import declare_incident
from service.commands.sweeps import expire_claim, expire_request
from service.domain import claims as rules
from service.domain.actors import SYSTEM, Actor, Role
from service.domain.errors import DomainError, IllegalTransition, NotEnoughRemaining
from service.domain.lifecycles import (
    CLAIMABLE_REQUEST_STATUSES,
    COMMITTED_CLAIM_STATUSES,
    DELIVERED_CLAIM_STATUSES,
    FINAL_REQUEST_STATUSES,
    ClaimStatus,
    IncidentStatus,
    Party,
    RequestKind,
    RequestStatus,
)
from service.executor import Executor
from service.models import AidRequestCreate, ClaimCreate, ClaimStatusChange, IncidentCreate
from tests.support import FakeClock, World, app_settings, make_executor, seed_world


def check_tallies(
    quantity: int,
    claimed: int,
    delivered: int,
    status: RequestStatus,
    claims: list[tuple[int, ClaimStatus]],
) -> None:
    """What every request must be, given the claims it has (quantity, status)."""
    committed = sum(q for q, s in claims if s in COMMITTED_CLAIM_STATUSES)
    arrived = sum(q for q, s in claims if s in DELIVERED_CLAIM_STATUSES)
    assert 0 <= claimed <= quantity
    assert claimed == committed, (claimed, claims)
    assert delivered == arrived, (delivered, claims)
    assert 0 <= delivered <= claimed
    if status not in FINAL_REQUEST_STATUSES:
        assert (status is RequestStatus.OPEN) == (claimed == 0)
        assert (status is RequestStatus.CLAIMED) == (0 < claimed == quantity > delivered)
    if status is RequestStatus.FULFILLED:
        assert delivered == quantity


# Every claim transition a party may ask for, to be accepted or refused by the code.
_MOVES = [
    (ClaimStatus.ACCEPTED, Party.REQUESTER),
    (ClaimStatus.EN_ROUTE, Party.RESPONDER),
    (ClaimStatus.ON_SITE, Party.RESPONDER),
    (ClaimStatus.RELEASED, Party.RESPONDER),
    (ClaimStatus.WITHDRAWN, Party.RESPONDER),
    (ClaimStatus.DECLINED, Party.REQUESTER),
    (ClaimStatus.EXPIRED, Party.SYSTEM),
]
claim_index = st.integers(0, 7)


class CoreKeepsRequestsInStep(RuleBasedStateMachine):
    """The claim core alone: the request is only ever what `decide_claim`, `move_claim`
    and `end_request` return."""

    @initialize(kind=st.sampled_from(RequestKind), quantity=st.integers(1, 10))
    def raise_request(self, kind: RequestKind, quantity: int) -> None:
        self.kind = kind
        self.tally = rules.Tally(quantity, 0, 0, RequestStatus.OPEN)
        self.claims: list[tuple[int, ClaimStatus]] = []

    @rule(asked=st.integers(1, 4))
    def claim(self, asked: int) -> None:
        target = rules.ClaimTarget(
            city_id=1, ring=0, tally=self.tally, incident_status=IncidentStatus.ACTIVE
        )
        ask = rules.ClaimAsk(city_id=2, quantity=asked, fingerprint=uuid.uuid4().hex)
        fits = self.tally.claimed_quantity + asked <= self.tally.quantity
        claimable = self.tally.status in CLAIMABLE_REQUEST_STATUSES
        try:
            decision = rules.decide_claim(target, ask, city_ring=0, earlier_fingerprint=None)
        except NotEnoughRemaining:
            assert claimable and not fits
            return
        except IllegalTransition:
            assert not claimable
            return
        assert isinstance(decision, rules.Take) and fits and claimable
        self.claims.append((asked, ClaimStatus.CLAIMED))
        self.tally = decision.after

    @rule(index=claim_index, move=st.sampled_from(_MOVES), answered=st.booleans())
    def move(self, index: int, move: tuple[ClaimStatus, Party], answered: bool) -> None:
        if not self.claims:
            return
        index %= len(self.claims)
        quantity, current = self.claims[index]
        asked, party = move
        try:
            self.tally = rules.move_claim(
                self.tally,
                current=current,
                asked=asked,
                party=party,
                kind=self.kind,
                quantity=quantity,
                answer_given=answered,
            )
        except DomainError:
            return
        self.claims[index] = (quantity, asked)

    @rule(final=st.sampled_from([RequestStatus.CANCELLED, RequestStatus.EXPIRED]))
    def end(self, final: RequestStatus) -> None:
        try:
            end = rules.request_end(self.tally, final)
        except IllegalTransition:
            assert self.tally.status in FINAL_REQUEST_STATUSES
            return
        ending = [i for i, (_, s) in enumerate(self.claims) if s in end.ending]
        self.tally = rules.end_request(self.tally, final, (self.claims[i][0] for i in ending))
        for i in ending:
            self.claims[i] = (self.claims[i][0], end.claim_status)
        assert self.tally.status is final

    @invariant()
    def in_step(self) -> None:
        t = self.tally
        check_tallies(t.quantity, t.claimed_quantity, t.delivered_quantity, t.status, self.claims)


TestCoreKeepsRequestsInStep = CoreKeepsRequestsInStep.TestCase
TestCoreKeepsRequestsInStep.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None
)


@settings(max_examples=200, deadline=None)
@given(quantity=st.integers(1, 10), asks=st.lists(st.integers(1, 4), max_size=30))
def test_claims_alone_fill_a_request_exactly_when_they_can(quantity: int, asks: list[int]) -> None:
    tally = rules.Tally(quantity, 0, 0, RequestStatus.OPEN)
    for asked in asks:
        before = tally.claimed_quantity
        try:
            tally = rules.take_units(tally, asked)
        except NotEnoughRemaining:
            assert before + asked > quantity
        assert tally.claimed_quantity == (before + asked if before + asked <= quantity else before)
    if tally.claimed_quantity == quantity:
        assert tally.status is RequestStatus.CLAIMED


# --- the ORM commands on SQLite ---------------------------------------------------------

_RESOURCES = {
    RequestKind.INFRASTRUCTURE: "high-capacity-pump",
    RequestKind.PERSONNEL: "swift-water-rescue-team",
    RequestKind.INFORMATION: "hydrological-forecast",
}
# The natural next step of a live claim, and who takes it.
_FORWARD = {
    ClaimStatus.CLAIMED: (ClaimStatus.ACCEPTED, Party.REQUESTER),
    ClaimStatus.ACCEPTED: (ClaimStatus.EN_ROUTE, Party.RESPONDER),
    ClaimStatus.EN_ROUTE: (ClaimStatus.ON_SITE, Party.RESPONDER),
    ClaimStatus.ON_SITE: (ClaimStatus.RELEASED, Party.RESPONDER),
}


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[tuple[Executor, World, FakeClock]]:
    clock = FakeClock()
    executor = make_executor(app_settings(f"sqlite:///{tmp_path / 'props.db'}"), clock)
    yield executor, seed_world(executor), clock
    executor.db.dispose()


class CommandsKeepRequestsInStep(RuleBasedStateMachine):
    """The ORM commands: after every step, the request row is in step with its claim rows."""

    def __init__(self, executor: Executor, world: World, clock: FakeClock) -> None:
        super().__init__()
        self.executor, self.clock = executor, clock
        self.manager = Actor(role=Role.MANAGER, city_id=world.city_ids["nairobi"], token_id=None)
        self.responder = Actor(role=Role.RESPONDER, city_id=world.city_ids["thika"], token_id=None)
        self.claim_ids: list[int] = []

    def _run(self, actor: Actor, command: object, *args: object) -> object:
        result, _ = self.executor.run_sync(actor, command, *args)  # type: ignore[arg-type]
        return result

    @initialize(kind=st.sampled_from(RequestKind), quantity=st.integers(1, 8))
    def raise_request(self, kind: RequestKind, quantity: int) -> None:
        self.kind = kind
        incident = self._run(
            self.manager, declare_incident, IncidentCreate(incident_type="flood", title="Props")
        )
        body = AidRequestCreate(
            resource=_RESOURCES[kind],
            quantity=quantity,
            needed_by=self.clock() + timedelta(days=30),
        )
        request = self._run(self.manager, raise_request, incident.id, body)  # type: ignore[attr-defined]
        self.request_id: int = request.id  # type: ignore[attr-defined]

    @rule(asked=st.integers(1, 3))
    def claim(self, asked: int) -> None:
        key = uuid.uuid4().hex
        try:
            made, created = self._run(  # type: ignore[misc]
                self.responder, claim_request, self.request_id, ClaimCreate(quantity=asked), key
            )
        except (NotEnoughRemaining, IllegalTransition):
            return
        assert created
        self.claim_ids.append(made.id)

    def _change(self, claim_id: int, asked: ClaimStatus, party: Party) -> None:
        answers = asked is ClaimStatus.RELEASED and self.kind is RequestKind.INFORMATION
        answer = "river peaks at 4.2 m on Friday" if answers else None
        body = ClaimStatusChange(status=asked.value, answer=answer)  # type: ignore[arg-type]
        actor = self.manager if party is Party.REQUESTER else self.responder
        try:
            self._run(actor, change_claim_status, claim_id, body)
        except DomainError:
            return

    def _claim_status(self, claim_id: int) -> ClaimStatus:
        with self.executor.db.engine.connect() as conn:
            status = conn.execute(
                text("SELECT status FROM claims WHERE id = :id"), {"id": claim_id}
            ).scalar_one()
        return ClaimStatus(status)

    @precondition(lambda self: self.claim_ids)
    @rule(index=claim_index)
    def advance(self, index: int) -> None:
        """The natural next step of a claim, asked by the party whose step it is."""
        claim_id = self.claim_ids[index % len(self.claim_ids)]
        current = self._claim_status(claim_id)
        if current is ClaimStatus.ACCEPTED and self.kind is RequestKind.INFORMATION:
            self._change(claim_id, ClaimStatus.RELEASED, Party.RESPONDER)
        elif current in _FORWARD:
            self._change(claim_id, *_FORWARD[current])

    @precondition(lambda self: self.claim_ids)
    @rule(index=claim_index, move=st.sampled_from(_MOVES[:-1]), party=st.sampled_from(Party))
    def ask_anything(self, index: int, move: tuple[ClaimStatus, Party], party: Party) -> None:
        """An early end, or any step asked by anyone (refused or not, as the code says)."""
        self._change(self.claim_ids[index % len(self.claim_ids)], move[0], party)

    @precondition(lambda self: self.claim_ids)
    @rule(index=claim_index)
    def expire_a_claim(self, index: int) -> None:
        self.clock.advance(timedelta(hours=1))
        self._run(SYSTEM, expire_claim, self.claim_ids[index % len(self.claim_ids)])

    # A request ends once it has seen a few claims: ended early, it leaves little to test.
    @precondition(lambda self: len(self.claim_ids) >= 3)
    @rule(final=st.sampled_from([RequestStatus.CANCELLED, RequestStatus.EXPIRED]))
    def end(self, final: RequestStatus) -> None:
        if final is RequestStatus.CANCELLED:
            try:
                self._run(self.manager, cancel_request, self.request_id)
            except IllegalTransition:
                return
        else:
            self.clock.advance(timedelta(days=31))
            self._run(SYSTEM, expire_request, self.request_id)

    @invariant()
    def in_step(self) -> None:
        with self.executor.db.engine.connect() as conn:
            quantity, claimed, delivered, status = conn.execute(
                text(
                    "SELECT quantity, claimed_quantity, delivered_quantity, status"
                    " FROM aid_requests WHERE id = :id"
                ),
                {"id": self.request_id},
            ).one()
            rows = conn.execute(
                text("SELECT quantity, status FROM claims WHERE request_id = :id"),
                {"id": self.request_id},
            ).all()
        claims = [(int(q), ClaimStatus(s)) for q, s in rows]
        check_tallies(quantity, claimed, delivered, RequestStatus(status), claims)


def test_the_commands_keep_every_request_in_step_with_its_claims(
    sqlite_world: tuple[Executor, World, FakeClock],
) -> None:
    run_state_machine_as_test(
        lambda: CommandsKeepRequestsInStep(*sqlite_world),
        settings=settings(max_examples=50, stateful_step_count=30, deadline=None),
    )
