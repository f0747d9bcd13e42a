"""Offers under races: an acceptance while claims race for the same request, a counter
accepted while it expires, and expiry by many sweepers (threads on every backend; two
replica processes over PostgreSQL or one SQLite file)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from service.commands import offers
from service.commands.aid_requests import raise_request
from service.commands.claims import claim_request
from service.commands.incidents import declare_incident
from service.domain import lifecycles as lc
from service.domain.actors import Actor, Role
from service.domain.errors import Conflict, DomainError
from service.executor import Executor, utc_now
from service.models import (
    AidRequestCreate,
    ClaimCreate,
    IncidentCreate,
    OfferCreate,
    OfferStatusChange,
)
from service.persistence.tables import AidRequest, Claim, Event, Offer
from service.scheduler import Sweeper
from service.settings import Settings
from tests.procs import HOST, end, free_port, start, wait_until_healthy
from tests.replicas import Cluster, cluster_fixture, http_step
from tests.support import (
    FakeClock,
    World,
    make_executor,
    postgres_url,
    scratch_database,
    seed_world,
)

PUMP = "high-capacity-pump"
WAIT_S = 30.0  # bound on any wait for another thread; far above what a healthy run needs


def _actor(world: World, role: Role, city: str) -> Actor:
    return Actor(role, world.city_ids[city], None)


def _incident(executor: Executor, world: World) -> int:
    incident, _ = executor.run_sync(
        _actor(world, Role.MANAGER, "nairobi"),
        declare_incident,
        IncidentCreate(incident_type="flood", title="Nairobi River flood"),
    )
    return int(incident.id)


def _offer(executor: Executor, world: World, incident_id: int, now: datetime, **body: Any) -> int:
    made = OfferCreate.model_validate(
        {"resource": PUMP, "quantity": 4, "ready_at": now + timedelta(hours=2), **body}
    )
    (offer, _), _ = executor.run_sync(
        _actor(world, Role.MANAGER, "mombasa"),
        offers.make_offer,
        incident_id,
        made,
        uuid.uuid4().hex,
    )
    return int(offer.id or 0)


def _together(*steps: Callable[[], object]) -> list[object]:
    """Run the steps at once, each in its thread; their results or errors, in order."""
    barrier = threading.Barrier(len(steps))
    results: list[object] = [None] * len(steps)

    def run(i: int, step: Callable[[], object]) -> None:
        barrier.wait(timeout=WAIT_S)
        try:
            results[i] = step()
        except DomainError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(steps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT_S)
    return results


def _sweep(executor: Executor) -> object:
    return asyncio.run(Sweeper(executor).sweep())


def _events(executor: Executor, incident_id: int, prefix: str) -> list[Event]:
    with executor.db.read() as session:
        return list(
            session.exec(
                select(Event)
                .where(col(Event.incident_id) == incident_id, col(Event.type).startswith(prefix))
                .order_by(col(Event.seq))
            ).all()
        )


def test_an_offer_accepted_while_claims_race_for_its_request_never_overfills_it(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    manager = _actor(world, Role.MANAGER, "nairobi")
    responder = _actor(world, Role.RESPONDER, "thika")
    outcomes: dict[str, int] = {"accepted": 0, "refused": 0}
    for trial in range(12):
        incident_id = _incident(executor, world)
        request, _ = executor.run_sync(
            manager, raise_request, incident_id, AidRequestCreate(resource=PUMP, quantity=10)
        )
        offer_id = _offer(executor, world, incident_id, clock.now, request_id=request.id)
        claims = [
            partial(
                executor.run_sync,
                responder,
                claim_request,
                request.id,
                ClaimCreate(quantity=2),
                f"t{trial}-{k}",
            )
            for k in range(4 + trial % 3)
        ]
        accept = partial(
            executor.run_sync,
            manager,
            offers.change_offer_status,
            offer_id,
            OfferStatusChange(status="accepted"),
        )
        results = _together(accept, *claims)
        assert all(
            r is None or not isinstance(r, DomainError) or isinstance(r, Conflict) for r in results
        ), results
        with executor.db.read() as session:
            row = session.get(AidRequest, request.id)
            offer = session.get(Offer, offer_id)
            made = session.exec(select(Claim).where(col(Claim.request_id) == request.id)).all()
        assert row is not None and offer is not None
        committed = sum(
            c.quantity for c in made if lc.ClaimStatus(c.status) in lc.COMMITTED_CLAIM_STATUSES
        )
        assert row.claimed_quantity == committed <= row.quantity
        if isinstance(results[0], DomainError):
            outcomes["refused"] += 1
            # Too few units left, or the request filled up first and answered the offer.
            why = str(results[0])
            assert "left unclaimed" in why or "already declined" in why, why
            assert offer.claim_id is None
            # Refused because the request filled up: the offer was answered with it.
            if row.status == lc.RequestStatus.CLAIMED.value:
                assert offer.status == "declined"
        else:
            outcomes["accepted"] += 1
            assert offer.status == "accepted"
            ours = [c for c in made if c.id == offer.claim_id]
            assert [(c.quantity, c.status, c.city_id) for c in ours] == [
                (4, "accepted", world.city_ids["mombasa"])
            ]
        answered = [e for e in _events(executor, incident_id, "offer.") if e.type != "offer.made"]
        assert len(answered) == (0 if offer.status == "open" else 1)
    assert outcomes["accepted"] > 0


def _second_executor(executor: Executor, clock: FakeClock) -> Iterator[Executor]:
    other = make_executor(executor.settings, clock)
    try:
        yield other
    finally:
        other.db.dispose()


def test_a_counter_accepted_as_it_expires_is_either_accepted_or_expired_never_both(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    """The offering city accepts the counter on a replica whose clock is a moment before
    the offer's expiry, while a sweeper on another one, a moment after, expires it."""
    manager = _actor(world, Role.MANAGER, "nairobi")
    offerer = _actor(world, Role.RESPONDER, "mombasa")
    after = FakeClock(clock.now + timedelta(minutes=10, milliseconds=1))
    seen: set[str] = set()
    for sweeper_executor in _second_executor(executor, after):
        for _ in range(12):
            incident_id = _incident(executor, world)
            offer_id = _offer(
                executor,
                world,
                incident_id,
                clock.now,
                expires_at=clock.now + timedelta(minutes=10),
            )
            executor.run_sync(
                manager,
                offers.change_offer_status,
                offer_id,
                OfferStatusChange(status="countered", quantity=2),
            )
            clock.now = clock.now + timedelta(minutes=10) - timedelta(milliseconds=1)
            accept = partial(
                executor.run_sync,
                offerer,
                offers.change_offer_status,
                offer_id,
                OfferStatusChange(status="accepted"),
            )
            sweep = partial(_sweep, sweeper_executor)
            accepted, report = _together(accept, sweep)
            with executor.db.read() as session:
                offer = session.get(Offer, offer_id)
                made = session.exec(
                    select(Claim).where(col(Claim.incident_id) == incident_id)
                ).all()
            assert offer is not None
            ends = [e.type for e in _events(executor, incident_id, "offer.")][2:]
            seen.add(offer.status)
            if offer.status == "accepted":
                assert not isinstance(accepted, DomainError)
                assert ends == ["offer.accepted"]
                assert [(c.quantity, c.status) for c in made] == [(2, "accepted")]
            else:
                assert offer.status == "expired"
                assert isinstance(accepted, Conflict)
                assert "expired" in str(accepted)
                assert ends == ["offer.expired"]
                assert made == []
            clock.now = after.now = clock.now + timedelta(hours=1)
            after.now = clock.now + timedelta(minutes=10, milliseconds=1)
            del report
    assert seen <= {"accepted", "expired"}


def test_four_sweepers_at_once_expire_each_offer_exactly_once(
    executor: Executor, world: World, clock: FakeClock
) -> None:
    incident_id = _incident(executor, world)
    ids = [
        _offer(executor, world, incident_id, clock.now, expires_at=clock.now + timedelta(minutes=5))
        for _ in range(15)
    ]
    clock.advance(timedelta(minutes=5))
    reports = _together(*[partial(_sweep, executor) for _ in range(4)])
    assert sum(r.offers_expired for r in reports) == 15  # type: ignore[attr-defined]
    expired = _events(executor, incident_id, "offer.expired")
    assert sorted(e.data["offer"]["id"] for e in expired) == sorted(ids)


# -- two replica processes, each with its sweeper -------------------------------------------

BACKEND = "postgresql" if postgres_url() else "sqlite"
SWEEP_S = 0.2
OFFERS = 20


@pytest.mark.slow
def test_offers_expire_exactly_once_with_the_sweeper_on_two_replicas(tmp_path: Path) -> None:
    with scratch_database(BACKEND, tmp_path) as url:
        executor = make_executor(Settings(database_url=url, scheduler_enabled=False), utc_now)  # type: ignore[arg-type]
        world = seed_world(executor)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "AIDMESH_BUS_CHANNEL": f"aidmesh:test:{uuid.uuid4().hex}",
            "AIDMESH_DATA_DIR": str(tmp_path),
            "AIDMESH_SWEEP_INTERVAL_S": str(SWEEP_S),
            "AIDMESH_LOG_LEVEL": "warning",
        }
        ports = [free_port(), free_port()]
        procs = []
        try:
            for port in ports:
                log = tmp_path / f"replica-{port}.log"
                args = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
                procs.append((start(args, log, env=env), port, log))
            for proc, port, log in procs:
                wait_until_healthy(proc, f"http://{HOST}:{port}", log, timeout_s=30)
            incident_id = _incident(executor, world)
            now = datetime.now(UTC)
            ids = [
                _offer(executor, world, incident_id, now, expires_at=now + timedelta(seconds=10))
                for _ in range(OFFERS)
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with executor.db.read() as session:
                    left = session.exec(select(Offer.id).where(col(Offer.status) == "open")).all()
                if not left:
                    break
                time.sleep(0.2)
            time.sleep(3 * SWEEP_S)  # any second expiry would have been written by now
            expired = _events(executor, incident_id, "offer.expired")
        finally:
            for proc, _, _ in procs:
                end(proc)
            executor.db.dispose()
    expired_ids = [e.data["offer"]["id"] for e in expired]
    print(f"\n{OFFERS} offers, {len(expired_ids)} expiries on two replicas (sweep {SWEEP_S}s)")
    assert sorted(expired_ids) == sorted(ids)


# -- two replicas over PostgreSQL, through REST ------------------------------------------

cluster = cluster_fixture(replicas=2)


@pytest.mark.slow
@pytest.mark.postgres
def test_an_offer_accepted_on_one_replica_while_claims_race_on_both_never_overfills(
    cluster: Cluster,
) -> None:
    """The acceptance takes the general command on one replica; the claims take the
    PostgreSQL claim batches on both (the one that would fill a request with an open
    offer goes to the general command, which answers the offer)."""
    first, second = cluster.replicas[0].url, cluster.replicas[1].url
    nairobi = cluster.headers("manager", "nairobi")
    outcomes: dict[str, int] = {"accepted": 0, "refused": 0}
    problems: list[str] = []
    with (
        httpx.Client(timeout=WAIT_S, headers=nairobi) as manager,
        httpx.Client(timeout=WAIT_S, headers=cluster.headers("manager", "mombasa")) as offerer,
        httpx.Client(timeout=WAIT_S, headers=cluster.headers("responder", "thika")) as claimer,
        ThreadPoolExecutor(max_workers=12) as pool,
    ):
        for trial in range(12):
            r = manager.post(
                f"{first}/api/v1/incidents",
                json={"incident_type": "flood", "title": f"Flood {trial}"},
            )
            assert r.status_code == 201, r.text
            incident_id = r.json()["id"]
            r = manager.post(
                f"{second}/api/v1/incidents/{incident_id}/requests",
                json={"resource": PUMP, "quantity": 10},
            )
            assert r.status_code == 201, r.text
            request_id = r.json()["id"]
            ready = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
            r = offerer.post(
                f"{first}/api/v1/incidents/{incident_id}/offers",
                json={"resource": PUMP, "quantity": 4, "ready_at": ready, "request_id": request_id},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert r.status_code == 201, r.text
            offer_id = r.json()["id"]
            claim = ("POST", f"/api/v1/requests/{request_id}/claims", {"quantity": 2})
            steps = [
                (
                    manager,
                    first,
                    ("POST", f"/api/v1/offers/{offer_id}/status", {"status": "accepted"}),
                )
            ]
            steps += [(claimer, (first, second)[k % 2], claim) for k in range(4 + trial % 3)]
            start = threading.Barrier(len(steps))
            futures = [pool.submit(http_step, c, start, url, step) for c, url, step in steps]
            answers = [f.result(timeout=WAIT_S * 2) for f in futures]
            problems += [f"trial {trial}: {a}" for a in answers if a not in ("ok", "refused")]

            with cluster.executor.db.read() as session:
                row = session.get(AidRequest, request_id)
                offer = session.get(Offer, offer_id)
                made = session.exec(select(Claim).where(col(Claim.request_id) == request_id)).all()
            assert row is not None and offer is not None
            committed = sum(
                c.quantity for c in made if lc.ClaimStatus(c.status) in lc.COMMITTED_CLAIM_STATUSES
            )
            if not row.claimed_quantity == committed <= row.quantity:
                problems.append(f"trial {trial}: claimed {row.claimed_quantity}, held {committed}")
            if answers[0] == "ok":
                outcomes["accepted"] += 1
                ours = [(c.quantity, c.status) for c in made if c.id == offer.claim_id]
                if offer.status != "accepted" or ours != [(4, "accepted")]:
                    problems.append(f"trial {trial}: accepted offer {offer.status}, claim {ours}")
            else:
                outcomes["refused"] += 1
                if offer.claim_id is not None:
                    problems.append(f"trial {trial}: refused offer has claim {offer.claim_id}")
                if row.status == lc.RequestStatus.CLAIMED.value and offer.status != "declined":
                    problems.append(f"trial {trial}: filled request left offer {offer.status}")
            answered = [
                e
                for e in _events(cluster.executor, incident_id, "offer.")
                if e.type != "offer.made"
            ]
            if len(answered) != (0 if offer.status == "open" else 1):
                problems.append(f"trial {trial}: offer answered {len(answered)} times")
    print(f"\noffer against claims on two replicas: {outcomes}, problems {len(problems)}")
    assert problems == [], cluster.logs()
    assert outcomes["accepted"] > 0
