"""Claims and events under concurrency, on every database backend (RELIABILITY.md C1, C2, C3).

Many threads call the command layer at once, as the API's worker threads do;
each `run_sync` opens its own session and transaction. What must hold:

- C1: concurrent partial claims never over-commit a request, and every attempt
  ends as a claim or a 409 refusal (never "database is locked" or another error);
- C2: the same idempotency key sent concurrently has one effect and one answer;
- C3: the same key with another body is refused and changes nothing;
- outbox: a reader that advances `after` to the largest seq it has seen never
  skips an event, because the next seq of an incident is taken under its row lock.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, text, update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from service import queries
from service.commands.admin import create_city
from service.commands.aid_requests import raise_request
from service.commands.claims import claim_request
from service.commands.context import CommandContext, lock_incident
from service.commands.incidents import declare_incident
from service.domain.actors import SYSTEM, Actor, Role
from service.domain.errors import IdempotencyMismatch, IllegalTransition, NotEnoughRemaining
from service.domain.events import EventType
from service.domain.lifecycles import COMMITTED_CLAIM_STATUSES, request_status_for
from service.executor import Executor
from service.models import AidRequestCreate, CityCreate, ClaimCreate, IncidentCreate
from service.persistence.tables import AidRequest, Claim, Event, Incident
from tests.support import World, make_executor

# Towns within 50 km of Nairobi, in the kenya network: ring-0 targets of a Nairobi request.
NEARBY_TOWNS = {
    "kiambu": ("Kiambu", -1.1714, 36.8356),
    "ruiru": ("Ruiru", -1.1466, 36.9609),
    "kikuyu": ("Kikuyu", -1.2463, 36.6629),
    "limuru": ("Limuru", -1.1136, 36.6421),
    "athi-river": ("Athi River", -1.4563, 36.9785),
    "ngong": ("Ngong", -1.3527, 36.6699),
}
# Thika and the towns are ring 0; Machakos and Mombasa join once the ring is 1.
RESPONDER_CITIES = ["thika", "machakos", "mombasa", *NEARBY_TOWNS]

MAX_THREADS = 48
WAIT_S = 30.0  # bound on any wait for another thread; far above what a healthy run needs


@dataclass
class Scene:
    executor: Executor
    world: World
    manager: Actor
    incident_id: int
    responders: list[Actor]

    def raise_request(self, quantity: int) -> int:
        """A pump request in the incident, widened to ring 1 so every responder may claim."""
        body = AidRequestCreate(resource="high-capacity-pump", quantity=quantity)
        request, _ = self.executor.run_sync(self.manager, raise_request, self.incident_id, body)
        with self.executor.db.write() as session:
            session.exec(update(AidRequest).where(col(AidRequest.id) == request.id).values(ring=1))
        return int(request.id)

    def claim(self, actor: Actor, request_id: int, quantity: int, key: str) -> Claim:
        (claim, _created), _ = self.executor.run_sync(
            actor, claim_request, request_id, ClaimCreate(quantity=quantity), key
        )
        return claim

    def request(self, request_id: int) -> AidRequest:
        with self.executor.db.read() as session:
            request = session.get(AidRequest, request_id)
            assert request is not None
            return request

    def claims(self, request_id: int) -> list[Claim]:
        with self.executor.db.read() as session:
            rows = session.exec(select(Claim).where(col(Claim.request_id) == request_id))
            return list(rows.all())

    def last_seq(self) -> int:
        with self.executor.db.read() as session:
            incident = session.get(Incident, self.incident_id)
            assert incident is not None
            return incident.last_seq


@pytest.fixture
def scene(executor: Executor, world: World) -> Scene:
    for slug, (name, lat, lon) in NEARBY_TOWNS.items():
        body = CityCreate(slug=slug, name=name, country="KE", lat=lat, lon=lon, networks=["kenya"])
        city, _ = executor.run_sync(SYSTEM, create_city, body)
        world.city_ids[slug] = city.id
    manager = Actor(role=Role.MANAGER, city_id=world.city_ids["nairobi"], token_id=None)
    incident, _ = executor.run_sync(
        manager, declare_incident, IncidentCreate(incident_type="flood", title="Nairobi floods")
    )
    responders = [
        Actor(role=Role.RESPONDER, city_id=world.city_ids[slug], token_id=None)
        for slug in RESPONDER_CITIES
    ]
    return Scene(executor, world, manager, int(incident.id), responders)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="claimer") as threads:
        yield threads


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: a claim, a 409 refusal, or anything else (a failure)."""

    kind: str  # "claimed" | "refused" | "mismatch" | "error"
    quantity: int
    claim_id: int | None = None
    claim: dict[str, Any] | None = None
    created: bool | None = None
    error: str = ""


def attempt(
    scene: Scene, start: threading.Barrier, actor: Actor, request_id: int, quantity: int, key: str
) -> Outcome:
    try:
        start.wait(timeout=WAIT_S)
        (claim, created), _ = scene.executor.run_sync(
            actor, claim_request, request_id, ClaimCreate(quantity=quantity), key
        )
    except (NotEnoughRemaining, IllegalTransition) as exc:
        return Outcome("refused", quantity, error=str(exc))
    except IdempotencyMismatch as exc:
        return Outcome("mismatch", quantity, error=str(exc))
    except Exception as exc:  # every other error is a failure the test reports
        return Outcome("error", quantity, error=f"{type(exc).__name__}: {exc}")
    return Outcome(
        "claimed",
        quantity,
        claim_id=claim.id,
        claim=claim.model_dump(mode="json"),
        created=created,
    )


Attempt = tuple[Actor, int, int, str]  # actor, request id, quantity, idempotency key


def all_at_once(pool: ThreadPoolExecutor, scene: Scene, attempts: list[Attempt]) -> list[Outcome]:
    """Make every attempt on its own thread, released together by one barrier."""
    assert len(attempts) <= MAX_THREADS
    start = threading.Barrier(len(attempts))
    futures = [pool.submit(attempt, scene, start, *args) for args in attempts]
    return [f.result(timeout=WAIT_S * 2) for f in futures]


# -- C1 ------------------------------------------------------------------------------

# 200 trials take one to two minutes per backend on a two-core machine (each attempt
# is a full transaction, and queued SQLite writers poll for the lock); 1,000 would
# not fit an unmarked run.
C1_TRIALS = 200


def trial_problems(scene: Scene, request_id: int, outcomes: list[Outcome]) -> list[str]:
    """Everything wrong with the request and its claims after one burst of claims."""
    request = scene.request(request_id)
    rows = scene.claims(request_id)
    committed = sum(c.quantity for c in rows if c.status in COMMITTED_CLAIM_STATUSES)
    made = [o for o in outcomes if o.kind == "claimed"]
    problems = [f"error: {o.error}" for o in outcomes if o.kind not in ("claimed", "refused")]
    if not 0 <= request.claimed_quantity <= request.quantity:
        problems.append(f"over-claim: {request.claimed_quantity} of {request.quantity}")
    if request.claimed_quantity != committed:
        problems.append(f"claimed_quantity {request.claimed_quantity} != {committed} committed")
    if sorted(o.claim_id for o in made) != sorted(c.id for c in rows):
        problems.append("the claims made are not the claim rows")
    if sum(o.quantity for o in made) != committed:
        problems.append("the quantities claimed are not the committed quantity")
    if request.status != request_status_for(request.quantity, committed, 0):
        problems.append(f"status {request.status} does not follow the quantities")
    return problems


def test_concurrent_partial_claims_never_over_commit_a_request(
    scene: Scene, pool: ThreadPoolExecutor, backend: str
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    trials = attempts = made = refused = over_claims = 0
    failures: list[str] = []
    started = time.monotonic()
    while trials < C1_TRIALS and len(failures) < 5:
        trials += 1
        quantity = rng.randint(1, 10)
        request_id = scene.raise_request(quantity)
        outcomes = all_at_once(
            pool,
            scene,
            [
                (rng.choice(scene.responders), request_id, rng.randint(1, 3), uuid.uuid4().hex)
                for _ in range(rng.randint(24, MAX_THREADS))
            ],
        )
        attempts += len(outcomes)
        made += sum(o.kind == "claimed" for o in outcomes)
        refused += sum(o.kind == "refused" for o in outcomes)
        problems = trial_problems(scene, request_id, outcomes)
        over_claims += any(p.startswith("over-claim") for p in problems)
        if problems:
            failures.append(f"trial {trials} (quantity {quantity}): {'; '.join(problems[:5])}")
    print(
        f"\nC1 [{backend}] {trials} trials, {attempts} attempts, {made} claims made, "
        f"{refused} refused with 409, over-claims={over_claims}, other errors="
        f"{attempts - made - refused}, {time.monotonic() - started:.1f} s (seed {seed})"
    )
    assert failures == []
    assert over_claims == 0
    assert made + refused == attempts
    assert trials == C1_TRIALS


# -- C2 ------------------------------------------------------------------------------


def test_ten_identical_claims_with_one_key_in_parallel_make_one_claim(
    scene: Scene, pool: ThreadPoolExecutor
) -> None:
    for round_ in range(20):
        request_id = scene.raise_request(5)
        actor = scene.responders[round_ % len(scene.responders)]
        key = f"retry-{uuid.uuid4().hex}"
        outcomes = all_at_once(pool, scene, [(actor, request_id, 2, key)] * 10)

        assert [o.error for o in outcomes if o.kind != "claimed"] == []
        assert len({o.claim_id for o in outcomes}) == 1
        assert all(o.claim == outcomes[0].claim for o in outcomes)
        assert sorted(o.created for o in outcomes if o.created is not None) == [False] * 9 + [True]
        rows = scene.claims(request_id)
        assert [(c.id, c.quantity, c.idempotency_key) for c in rows] == [
            (outcomes[0].claim_id, 2, key)
        ]
        assert scene.request(request_id).claimed_quantity == 2
        assert _claim_made_events(scene, request_id) == 1


def _claim_made_events(scene: Scene, request_id: int) -> int:
    with scene.executor.db.read() as session:
        events = session.exec(
            select(Event).where(
                col(Event.incident_id) == scene.incident_id,
                col(Event.type) == EventType.CLAIM_MADE.value,
            )
        ).all()
    return sum(e.data["request"]["id"] == request_id for e in events)


# -- C3 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "other_request"),
    [
        (ClaimCreate(quantity=3), False),
        (ClaimCreate(quantity=2, note="two pumps, crews included"), False),
        (ClaimCreate(quantity=2), True),
    ],
    ids=["another-quantity", "another-note", "another-request"],
)
def test_same_key_with_another_body_is_refused_and_changes_nothing(
    scene: Scene, body: ClaimCreate, other_request: bool
) -> None:
    request_id = scene.raise_request(6)
    second_request_id = scene.raise_request(6)
    thika = scene.responders[0]
    first = scene.claim(thika, request_id, 2, "key-1")
    before = (
        scene.request(request_id).model_dump(),
        scene.request(second_request_id).model_dump(),
        [c.model_dump() for c in scene.claims(request_id)],
        scene.last_seq(),
    )

    target = second_request_id if other_request else request_id
    with pytest.raises(IdempotencyMismatch, match="already used for a different claim"):
        scene.executor.run_sync(thika, claim_request, target, body, "key-1")

    after = (
        scene.request(request_id).model_dump(),
        scene.request(second_request_id).model_dump(),
        [c.model_dump() for c in scene.claims(request_id)],
        scene.last_seq(),
    )
    assert after == before
    assert scene.claims(second_request_id) == []
    assert [c.id for c in scene.claims(request_id)] == [first.id]


def test_same_key_with_two_bodies_in_parallel_makes_one_claim_and_refuses_the_other_body(
    scene: Scene, pool: ThreadPoolExecutor
) -> None:
    for _ in range(10):
        request_id = scene.raise_request(8)
        actor = scene.responders[1]
        key = f"mixed-{uuid.uuid4().hex}"
        outcomes = all_at_once(pool, scene, [(actor, request_id, n, key) for n in [1, 2] * 5])
        assert {o.kind for o in outcomes} == {"claimed", "mismatch"}, outcomes
        winners = [o for o in outcomes if o.kind == "claimed"]
        assert len({o.claim_id for o in winners}) == 1
        won = winners[0].quantity
        assert all(o.quantity == won for o in winners)
        assert len(winners) == 5
        assert all(o.quantity != won for o in outcomes if o.kind == "mismatch")
        assert [c.quantity for c in scene.claims(request_id)] == [won]
        assert scene.request(request_id).claimed_quantity == won


# -- the outbox: seq order is commit order ---------------------------------------------


def emit_and_hold(
    ctx: CommandContext, incident_id: int, emitted: threading.Event, release: threading.Event
) -> int:
    """Take the incident's next seq, then keep the transaction open until released."""
    incident = lock_incident(ctx.session, incident_id)
    recorded = ctx.emit(incident, EventType.CLAIM_REMINDER, {}, cities=[incident.city_id])
    ctx.session.flush()
    emitted.set()
    if not release.wait(timeout=WAIT_S):
        raise TimeoutError("the test never released the first writer")
    return recorded.seq


def emit_once(ctx: CommandContext, incident_id: int, locked: threading.Event) -> int:
    incident = lock_incident(ctx.session, incident_id)
    locked.set()
    return ctx.emit(incident, EventType.CLAIM_REMINDER, {}, cities=[incident.city_id]).seq


def poll_seqs(scene: Scene, after: int) -> list[int]:
    """What `GET /incidents/{id}/events?after=` returns, as seqs."""
    with scene.executor.db.read() as session:
        page = queries.events_after(session, SYSTEM, scene.incident_id, after, 1000)
    return [e.seq for e in page.data]


class RunningStatements:
    """Which statement each thread is executing right now, from the engine's own events."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.running: dict[str, str] = {}

    def before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.running[threading.current_thread().name] = statement

    def after(self, *_args: Any) -> None:
        self.running.pop(threading.current_thread().name, None)

    def __enter__(self) -> RunningStatements:
        event.listen(self.engine, "before_cursor_execute", self.before)
        event.listen(self.engine, "after_cursor_execute", self.after)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self.before)
        event.remove(self.engine, "after_cursor_execute", self.after)

    def wait_until_running(self, thread: str, fragment: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            statement = self.running.get(thread, "")
            if fragment in statement.upper():
                return statement
            time.sleep(0.01)
        raise AssertionError(f"{thread} never ran a statement with {fragment!r}")


@contextmanager
def named_threads() -> Iterator[Callable[..., Future[Any]]]:
    """Start functions on threads of given names; every one is joined on the way out."""
    threads: list[threading.Thread] = []

    def start(name: str, function: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(function(*args))
            except BaseException as exc:
                future.set_exception(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        threads.append(thread)
        thread.start()
        return future

    try:
        yield start
    finally:
        for thread in threads:
            thread.join(timeout=WAIT_S)
        assert not any(t.is_alive() for t in threads), "a writer thread never finished"


def backends_waiting_on_a_lock(scene: Scene) -> list[str]:
    with scene.executor.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "select query from pg_stat_activity "
                "where datname = current_database() and wait_event_type = 'Lock'"
            )
        )
        return [row[0] for row in rows]


def test_second_writer_waits_for_the_first_so_a_reader_never_sees_a_later_seq_first(
    scene: Scene, backend: str
) -> None:
    last = scene.last_seq()
    emitted, release, locked = threading.Event(), threading.Event(), threading.Event()
    run, incident_id = scene.executor.run_sync, scene.incident_id
    # The second writer stands for another replica. On SQLite writers of one process
    # first take turns on an in-process lock (see the next test); across processes
    # they queue at BEGIN IMMEDIATE, which is what this test watches.
    other = make_executor(scene.executor.settings) if backend == "sqlite" else scene.executor
    with RunningStatements(other.db.engine) as statements, named_threads() as start:
        try:
            first = start("first-writer", run, SYSTEM, emit_and_hold, incident_id, emitted, release)
            assert emitted.wait(timeout=WAIT_S), "the first writer never emitted"
            second = start("second-writer", other.run_sync, SYSTEM, emit_once, incident_id, locked)

            # The second writer queues: on PostgreSQL on the incident's row lock, on
            # SQLite at BEGIN IMMEDIATE, before its command even starts.
            blocking = "FOR UPDATE" if backend == "postgresql" else "BEGIN IMMEDIATE"
            statements.wait_until_running("second-writer", blocking)
            time.sleep(0.3)
            assert blocking in statements.running.get("second-writer", "").upper()
            assert not locked.is_set()
            assert not second.done()
            if backend == "postgresql":
                waiting = backends_waiting_on_a_lock(scene)
                assert len(waiting) == 1
                assert "FOR UPDATE" in waiting[0].upper()
            # The first writer's seq (last + 1) is taken but not committed: nothing to see.
            assert poll_seqs(scene, last) == []

            release.set()
            (first_seq, _), (second_seq, _) = first.result(WAIT_S), second.result(WAIT_S)
        finally:
            release.set()
    if other is not scene.executor:
        other.db.dispose()
    assert (first_seq, second_seq) == (last + 1, last + 2)
    assert poll_seqs(scene, last) == [last + 1, last + 2]


def test_second_writer_of_the_same_process_waits_for_the_first(scene: Scene) -> None:
    last = scene.last_seq()
    emitted, release, locked = threading.Event(), threading.Event(), threading.Event()
    run, incident_id = scene.executor.run_sync, scene.incident_id
    with named_threads() as start:
        try:
            first = start("first-writer", run, SYSTEM, emit_and_hold, incident_id, emitted, release)
            assert emitted.wait(timeout=WAIT_S), "the first writer never emitted"
            second = start("second-writer", run, SYSTEM, emit_once, incident_id, locked)
            time.sleep(0.3)
            assert not locked.is_set()
            assert not second.done()
            assert poll_seqs(scene, last) == []
            release.set()
            (first_seq, _), (second_seq, _) = first.result(WAIT_S), second.result(WAIT_S)
        finally:
            release.set()
    assert (first_seq, second_seq) == (last + 1, last + 2)
    assert poll_seqs(scene, last) == [last + 1, last + 2]


def emit_and_linger(ctx: CommandContext, incident_id: int, events: int, linger_s: float) -> int:
    incident = lock_incident(ctx.session, incident_id)
    for _ in range(events):
        ctx.emit(incident, EventType.CLAIM_REMINDER, {}, cities=[incident.city_id])
    ctx.session.flush()
    time.sleep(linger_s)  # widen the window between taking a seq and committing it
    return incident.last_seq


def test_reader_advancing_to_the_largest_seq_seen_never_skips_an_event(
    scene: Scene, pool: ThreadPoolExecutor, backend: str
) -> None:
    request_id = scene.raise_request(10_000)
    writers, rounds = 8, 25
    done = threading.Event()
    gaps: list[str] = []
    seen: list[int] = []
    polls = 0

    def read_until_done() -> None:
        nonlocal polls
        after = scene.last_seq()
        seen.extend(range(1, after + 1))
        while True:
            finished = done.is_set()
            seqs = poll_seqs(scene, after)
            polls += 1
            if seqs != list(range(after + 1, after + 1 + len(seqs))):
                gaps.append(f"after={after} the reader saw {seqs[:10]}")
            seen.extend(seqs)
            after = max([after, *seqs])
            if finished:
                return
            # Yield the GIL between polls: a reader spinning in pure Python makes every
            # writer wait out the interpreter's switch interval after each database call,
            # which measures the GIL rather than the outbox.
            time.sleep(0.0002)

    def write(worker: int) -> None:
        rng = random.Random(worker)
        responder = scene.responders[worker % len(scene.responders)]
        for i in range(rounds):
            if worker % 2:
                scene.executor.run_sync(
                    SYSTEM,
                    emit_and_linger,
                    scene.incident_id,
                    rng.randint(1, 3),
                    rng.uniform(0, 0.003),
                )
            else:
                scene.claim(responder, request_id, 1, f"w{worker}-{i}")

    reader = threading.Thread(target=read_until_done, name="reader")
    reader.start()
    try:
        futures = [pool.submit(write, w) for w in range(writers)]
        for f in futures:
            f.result(timeout=WAIT_S * 2)
    finally:
        done.set()
        reader.join(timeout=WAIT_S)
    assert not reader.is_alive()

    last = scene.last_seq()
    skipped = sorted(set(range(1, last + 1)) - set(seen))
    print(
        f"\noutbox [{backend}] {writers} writers x {rounds} transactions, {last} events, "
        f"{polls} polls, out-of-order polls={len(gaps)}, skipped={len(skipped)}"
    )
    assert gaps == []
    assert skipped == []
    assert seen == list(range(1, last + 1))
