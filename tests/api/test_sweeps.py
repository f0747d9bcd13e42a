"""Escalation, claim and request expiry and reminders, driven by a clock the tests move."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from sqlmodel import col, select

from service.commands import aid_requests, claims, incidents, sweeps
from service.domain.actors import Actor, Role
from service.executor import Executor
from service.models import AidRequestCreate, ClaimCreate, IncidentCreate
from service.persistence.tables import AidRequest, Claim, Event
from service.scheduler import Sweeper
from tests.support import FakeClock, World


def _manager(world: World) -> Actor:
    return Actor(Role.MANAGER, world.city_ids["nairobi"], None)


def _responder(world: World, city: str) -> Actor:
    return Actor(Role.RESPONDER, world.city_ids[city], None)


def _declare_and_raise(executor: Executor, world: World, **request: object) -> tuple[int, int]:
    incident, _ = executor.run_sync(
        _manager(world),
        incidents.declare_incident,
        IncidentCreate(incident_type="flood", title="F"),
    )
    body = AidRequestCreate.model_validate(
        {"resource": "high-capacity-pump", "quantity": 4, **request}
    )
    req, _ = executor.run_sync(_manager(world), aid_requests.raise_request, incident.id, body)
    return incident.id, req.id


def _sweep(executor: Executor) -> object:
    return asyncio.run(Sweeper(executor).sweep())


def _request(executor: Executor, request_id: int) -> AidRequest:
    with executor.db.read() as session:
        request = session.get(AidRequest, request_id)
        assert request is not None
        return request


def _events(executor: Executor, incident_id: int, type_: str) -> list[Event]:
    with executor.db.read() as session:
        return list(
            session.exec(
                select(Event)
                .where(col(Event.incident_id) == incident_id, col(Event.type) == type_)
                .order_by(col(Event.seq))
            ).all()
        )


def test_unclaimed_request_escalates_ring_by_ring_reaching_new_cities(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    incident_id, request_id = _declare_and_raise(executor, world)
    _sweep(executor)
    assert _request(executor, request_id).ring == 0

    clock.advance(timedelta(minutes=31))
    assert _sweep(executor).escalated == 1  # type: ignore[attr-defined]
    assert _request(executor, request_id).ring == 1
    (escalated,) = _events(executor, incident_id, "request.escalated")
    reached = {world.city_ids[c] for c in ("machakos", "mombasa", "munich")}
    assert set(escalated.data["reached_city_ids"]) == reached
    assert reached <= set(escalated.audience["cities"])

    # Machakos may claim now; Augsburg (ring 2) not yet.
    executor.run_sync(
        _responder(world, "machakos"),
        claims.claim_request,
        request_id,
        ClaimCreate(quantity=1),
        "m1",
    )

    clock.advance(timedelta(hours=2, minutes=1))
    _sweep(executor)
    assert _request(executor, request_id).ring == 2
    second = _events(executor, incident_id, "request.escalated")[1]
    assert second.data["reached_city_ids"] == [world.city_ids["augsburg"]]

    clock.advance(timedelta(days=1))
    assert _sweep(executor).escalated == 0  # type: ignore[attr-defined]
    assert len(_events(executor, incident_id, "request.escalated")) == 2


def test_fully_claimed_request_does_not_escalate(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    from service.models import ClaimStatusChange

    _, request_id = _declare_and_raise(executor, world)
    (claim, _), _ = executor.run_sync(
        _responder(world, "thika"), claims.claim_request, request_id, ClaimCreate(quantity=4), "t"
    )
    # Accepted, so it does not expire and hand its units back.
    executor.run_sync(
        _manager(world), claims.change_claim_status, claim.id, ClaimStatusChange(status="accepted")
    )
    clock.advance(timedelta(hours=5))
    _sweep(executor)
    assert _request(executor, request_id).ring == 0


def test_claim_not_accepted_in_time_expires_once_and_gives_its_quantity_back(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    _, request_id = _declare_and_raise(executor, world)
    (claim, _), _ = executor.run_sync(
        _responder(world, "thika"), claims.claim_request, request_id, ClaimCreate(quantity=3), "t"
    )
    assert _request(executor, request_id).claimed_quantity == 3
    clock.advance(timedelta(minutes=31))
    report = _sweep(executor)
    assert report.claims_expired == 1  # type: ignore[attr-defined]
    request = _request(executor, request_id)
    assert (request.claimed_quantity, request.status) == (0, "open")
    with executor.db.read() as session:
        assert session.get(Claim, claim.id).status == "expired"  # type: ignore[union-attr]
    assert _sweep(executor).claims_expired == 0  # type: ignore[attr-defined]


def test_accepted_claim_does_not_expire(executor: Executor, world: World, clock: FakeClock) -> None:
    from service.models import ClaimStatusChange

    _, request_id = _declare_and_raise(executor, world)
    (claim, _), _ = executor.run_sync(
        _responder(world, "thika"), claims.claim_request, request_id, ClaimCreate(quantity=1), "t"
    )
    executor.run_sync(
        _manager(world), claims.change_claim_status, claim.id, ClaimStatusChange(status="accepted")
    )
    clock.advance(timedelta(hours=1))
    assert _sweep(executor).claims_expired == 0  # type: ignore[attr-defined]


def test_request_past_needed_by_expires_with_its_unaccepted_claims(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    incident_id, request_id = _declare_and_raise(
        executor, world, needed_by=(clock.now + timedelta(hours=1)).isoformat()
    )
    executor.run_sync(
        _responder(world, "thika"), claims.claim_request, request_id, ClaimCreate(quantity=1), "t"
    )
    clock.advance(timedelta(minutes=10))
    _sweep(executor)
    assert _request(executor, request_id).status == "partially_claimed"
    clock.advance(timedelta(hours=1))
    assert _sweep(executor).requests_expired == 1  # type: ignore[attr-defined]
    request = _request(executor, request_id)
    assert (request.status, request.claimed_quantity) == ("expired", 0)
    assert len(_events(executor, incident_id, "request.expired")) == 1


def test_manager_is_reminded_once_of_a_claim_waiting_for_acceptance(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    incident_id, request_id = _declare_and_raise(executor, world)
    executor.run_sync(
        _responder(world, "thika"), claims.claim_request, request_id, ClaimCreate(quantity=1), "t"
    )
    clock.advance(timedelta(minutes=10))
    assert _sweep(executor).reminders == 0  # type: ignore[attr-defined]
    clock.advance(timedelta(minutes=6))
    assert _sweep(executor).reminders == 1  # type: ignore[attr-defined]
    assert _sweep(executor).reminders == 0  # type: ignore[attr-defined]
    (reminder,) = _events(executor, incident_id, "claim.reminder")
    assert reminder.audience["cities"] == [world.city_ids["nairobi"]]


def test_two_sweepers_racing_escalate_each_request_exactly_once(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    request_ids = [_declare_and_raise(executor, world)[1] for _ in range(10)]
    clock.advance(timedelta(minutes=31))
    barrier = threading.Barrier(4)
    reports: list[object] = []

    def sweep() -> None:
        barrier.wait()
        reports.append(_sweep(executor))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r.escalated for r in reports) == 10  # type: ignore[attr-defined]
    with executor.db.read() as session:
        escalations = session.exec(
            select(Event).where(col(Event.type) == "request.escalated")
        ).all()
    assert sorted(e.data["request"]["id"] for e in escalations) == sorted(request_ids)


def test_due_work_is_found_in_the_database_by_a_fresh_sweeper(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    _, request_id = _declare_and_raise(executor, world)
    clock.advance(timedelta(minutes=45))
    # A new executor over the same database stands for a restarted replica.
    from tests.support import make_executor

    restarted = make_executor(executor.settings, clock)
    try:
        assert restarted.read_sync(_manager(world), sweeps.due_escalations) == [(request_id, 0)]
        _sweep(restarted)
    finally:
        restarted.db.dispose()
    assert _request(executor, request_id).ring == 1
