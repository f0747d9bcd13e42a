"""PostgreSQL's claim path (service/adapters/pg_claims.py) against the general command.

What must hold: a claim the fast path answers leaves the same rows and the same
event (stored and published alike) as the general command; every refusal reads
the same; a database error on the fast path leaves nothing half-written and the
general command answers; and claims racing on both paths at once never
over-commit a request or break its seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout
from sqlalchemy import bindparam, text

from realtime.bus import InMemoryBus
from realtime.envelope import decode
from service.adapters import pg_claims
from service.commands import claims
from service.commands.admin import add_member
from service.commands.aid_requests import raise_request
from service.commands.context import incident_viewers
from service.commands.incidents import declare_incident
from service.domain.actors import SYSTEM, Actor, Role
from service.domain.errors import IdempotencyMismatch, IllegalTransition, NotEnoughRemaining
from service.executor import Executor
from service.main import create_app
from service.models import AidRequestCreate, ClaimCreate, IncidentCreate
from service.persistence.db import Database
from service.persistence.tables import Incident
from service.scheduler import Sweeper
from service.settings import Settings
from tests.rosters import flows as roster
from tests.support import (
    FakeClock,
    World,
    postgres_only,
)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_only(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture
def published() -> list[dict[str, Any]]:
    return []


@contextlib.contextmanager
def _app(settings: Settings, published: list[dict[str, Any]]) -> Iterator[TestClient]:
    bus = InMemoryBus()
    bus.add_listener(lambda message: published.append(decode(message)))
    app = create_app(settings, clock=FakeClock(), bus=bus)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def app_client(
    settings: Settings, world: World, published: list[dict[str, Any]]
) -> Iterator[TestClient]:
    """An app whose claims take the PostgreSQL claim path."""
    assert settings.db_fast_claims
    with _app(settings, published) as client:
        yield client


@pytest.fixture
def general_client(
    settings: Settings, world: World, published: list[dict[str, Any]]
) -> Iterator[TestClient]:
    """An app on the same database whose claims all take the general command."""
    with _app(settings.model_copy(update={"db_fast_claims": False}), published) as client:
        yield client


@pytest.fixture
def general_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the claims the general command answered."""
    calls: list[int] = []
    original = claims.claim_request

    def counted(*args: Any) -> Any:
        calls.append(args[1])
        return original(*args)

    monkeypatch.setattr(claims, "claim_request", counted)
    return calls


def _declare(client: TestClient, world: World) -> int:
    r = client.post(
        "/api/v1/incidents",
        json={"incident_type": "flood", "title": "Nairobi River flood"},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _raise(client: TestClient, world: World, incident_id: int, quantity: int = 4) -> int:
    r = client.post(
        f"/api/v1/incidents/{incident_id}/requests",
        json={"resource": "high-capacity-pump", "quantity": quantity},
        headers=world.headers("manager", "nairobi"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _claim(
    client: TestClient,
    world: World,
    request_id: int,
    quantity: int,
    key: str | None = None,
    *,
    city: str = "thika",
    role: str = "responder",
    note: str = "",
) -> Any:
    return client.post(
        f"/api/v1/requests/{request_id}/claims",
        json={"quantity": quantity, "note": note},
        headers={**world.headers(role, city), "Idempotency-Key": key or uuid.uuid4().hex},
    )


def _events(client: TestClient, world: World, incident_id: int) -> list[dict[str, Any]]:
    r = client.get(
        f"/api/v1/incidents/{incident_id}/events", headers=world.headers("manager", "nairobi")
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _actor(world: World, role: Role, city: str) -> Actor:
    return Actor(role=role, city_id=world.city_ids[city], token_id=None)


def _incident_and_request(
    executor: Executor, world: World, title: str, quantity: int = 4
) -> tuple[Any, Any]:
    """A Nairobi incident with one request (Thika is its ring-0 city)."""
    manager = _actor(world, Role.MANAGER, "nairobi")
    incident, _ = executor.run_sync(
        manager, declare_incident, IncidentCreate(incident_type="flood", title=title)
    )
    request, _ = executor.run_sync(
        manager,
        raise_request,
        incident.id,
        AidRequestCreate(resource="high-capacity-pump", quantity=quantity),
    )
    return incident, request


@contextlib.asynccontextmanager
async def _fast_claims(
    executor: Executor, settings: Settings, **options: Any
) -> AsyncIterator[tuple[Executor, pg_claims.PgClaims]]:
    """An executor like `executor` whose claims take a PostgreSQL claim path of this
    event loop (built with `options`), and that path; all closed afterwards."""
    pool = await pg_claims.open_pool(settings)
    fast = pg_claims.PgClaims(pool, **options)
    claiming = Executor(
        executor.db,
        executor.bus,
        settings,
        executor.catalogue,
        executor.playbooks,
        executor.clock,
        claim_path=fast,
    )
    try:
        yield claiming, fast
    finally:
        await fast.aclose()
        await pool.close()
        await claiming.aclose()
        await executor.aclose()


def _claimed_and_claim_rows(db: Database, request_id: int) -> tuple[int, int]:
    """A request's claimed quantity and how many claim rows it has, as stored."""
    with db.engine.connect() as conn:
        claimed, rows = conn.execute(
            text(
                "SELECT r.claimed_quantity, (SELECT count(*) FROM claims c"
                " WHERE c.request_id = r.id) FROM aid_requests r WHERE r.id = :id"
            ),
            {"id": request_id},
        ).one()
    return int(claimed), int(rows)


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_ids(v)
            for k, v in value.items()
            if k not in ("id", "request_id", "incident_id", "event_id", "seq")
        }
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def test_a_claim_on_the_fast_path_leaves_what_the_general_command_leaves(
    app_client: TestClient,
    general_client: TestClient,
    world: World,
    general_calls: list[int],
    published: list[dict[str, Any]],
) -> None:
    incident_id = _declare(app_client, world)
    fast_request, general_request = (_raise(app_client, world, incident_id) for _ in range(2))

    fast = _claim(app_client, world, fast_request, 3, "fast-key", note="two pumps and a crew")
    assert fast.status_code == 201, fast.text
    assert general_calls == []  # the fast path answered by itself
    general = _claim(
        general_client, world, general_request, 3, "general-key", note="two pumps and a crew"
    )
    assert general.status_code == 201, general.text
    assert general_calls == [general_request]

    assert _without_ids(fast.json()) == _without_ids(general.json())
    made = [e for e in _events(app_client, world, incident_id) if e["type"] == "claim.made"]
    assert [e["data"]["request"]["id"] for e in made] == [fast_request, general_request]
    assert made[0]["seq"] + 1 == made[1]["seq"]
    assert _without_ids(made[0]) == _without_ids(made[1])
    assert made[0]["data"]["request"]["claimed_quantity"] == 3
    assert made[0]["data"]["request"]["status"] == "partially_claimed"
    # What live clients were sent is exactly what replay reads back.
    live = [e for e in published if e["type"] == "claim.made"]
    assert live == made

    r = app_client.get(
        f"/api/v1/requests/{fast_request}/claims", headers=world.headers("manager", "nairobi")
    )
    assert [c["id"] for c in r.json()["data"]] == [fast.json()["id"]]


REFUSALS: list[tuple[str, Callable[[TestClient, World, int], Any]]] = [
    ("not enough left", lambda c, w, r: (_claim(c, w, r, 3), _claim(c, w, r, 2))[1]),
    ("fully claimed", lambda c, w, r: (_claim(c, w, r, 4), _claim(c, w, r, 1))[1]),
    ("own request", lambda c, w, r: _claim(c, w, r, 1, city="nairobi", role="manager")),
    ("not aimed at the city", lambda c, w, r: _claim(c, w, r, 1, city="berlin")),
    ("not yet in ring", lambda c, w, r: _claim(c, w, r, 1, city="augsburg")),
    ("observer", lambda c, w, r: _claim(c, w, r, 1, role="observer")),
    ("no such request", lambda c, w, r: _claim(c, w, r + 10_000, 1)),
    ("key reused", lambda c, w, r: (_claim(c, w, r, 1, f"k{r}"), _claim(c, w, r, 2, f"k{r}"))[1]),
    ("key replayed", lambda c, w, r: (_claim(c, w, r, 1, f"k{r}"), _claim(c, w, r, 1, f"k{r}"))[1]),
]


@pytest.mark.parametrize("case", [name for name, _ in REFUSALS])
def test_answers_read_the_same_on_both_paths(
    app_client: TestClient, general_client: TestClient, world: World, case: str
) -> None:
    act = dict(REFUSALS)[case]
    answers = []
    for client in (app_client, general_client):
        incident_id = _declare(client, world)
        request_id = _raise(client, world, incident_id)
        r = act(client, world, request_id)
        body = r.json()
        if isinstance(body.get("detail"), str):  # the answers differ by these ids only
            named = [("incident", incident_id), ("request", request_id)]
            for name, id_ in [*named, ("request", request_id + 10_000)]:
                body["detail"] = body["detail"].replace(f"{name} {id_} ", f"{name} _ ")
        answers.append((r.status_code, _without_ids(body), r.headers.get("Idempotent-Replayed")))
    assert answers[0] == answers[1]
    assert answers[0][0] in (201, 403, 404, 409), answers


def test_a_claim_from_a_package_on_the_fast_path_leaves_what_the_general_command_leaves(
    app_client: TestClient,
    general_client: TestClient,
    world: World,
    general_calls: list[int],
    published: list[dict[str, Any]],
) -> None:
    package_id = roster.add_package(app_client, world, "thika")["id"]  # 6 pumps
    incident_id = _declare(app_client, world)
    fast_request, general_request = (_raise(app_client, world, incident_id) for _ in range(2))

    fast = roster.claim(app_client, world, fast_request, 2, "fast", package_id=package_id)
    assert fast.status_code == 201, fast.text
    assert general_calls == []  # the fast path committed the package's units itself
    assert fast.json()["package_id"] == package_id
    general = roster.claim(general_client, world, general_request, 2, "gen", package_id=package_id)
    assert general.status_code == 201, general.text
    assert general_calls == [general_request]
    assert _without_ids(fast.json()) == _without_ids(general.json())

    made = [e for e in _events(app_client, world, incident_id) if e["type"] == "claim.made"]
    packages = [e["data"].pop("package") for e in made]
    assert _without_ids(made[0]) == _without_ids(made[1])
    assert [(p["committed_quantity"], p["remaining_quantity"]) for p in packages] == [
        (2, 4),
        (4, 2),
    ]
    assert {**packages[0], "committed_quantity": 4, "remaining_quantity": 2} == packages[1]
    assert packages[0]["id"] == package_id and packages[0]["resource"] == roster.PUMP
    live = [e for e in published if e["type"] == "claim.made"]
    assert [e["data"]["package"] for e in live] == packages
    assert roster.committed(app_client, world, package_id) == 4


def _package_claim(client: TestClient, world: World, case: str, request_id: int) -> tuple[Any, int]:
    """A claim of Thika's from a package made for `case`; the answer and the package."""
    items = [{"resource": roster.PUMP, "quantity": 6}]
    options: dict[str, Any] = {
        "over its units": {},
        "over its cap": {"cap_percent": 50},
        "unavailable": {"available": False, "unavailable_reason": "pumps at the depot"},
        "another resource": {"items": [{"resource": "generator-100kw", "quantity": 2}]},
    }.get(case, {})
    city = "machakos" if case == "another city's" else "thika"
    package_id = roster.add_package(client, world, city, **{"items": items, **options})["id"]
    quantity = 4 if case == "over its cap" else 7 if case == "over its units" else 2
    return roster.claim(
        client, world, request_id, quantity, f"p{request_id}", package_id
    ), package_id


@pytest.mark.parametrize(
    "case",
    ["over its units", "over its cap", "unavailable", "another resource", "another city's"],
)
def test_refusals_of_claims_from_packages_read_the_same_on_both_paths(
    app_client: TestClient,
    general_client: TestClient,
    world: World,
    general_calls: list[int],
    case: str,
) -> None:
    answers = []
    for client in (app_client, general_client):
        incident_id = _declare(client, world)
        request_id = _raise(client, world, incident_id, quantity=8)
        r, package_id = _package_claim(client, world, case, request_id)
        if client is app_client and case in ("over its units", "over its cap"):
            assert general_calls == []  # refused by the fast path itself
        body = r.json()
        body["detail"] = str(body["detail"]).replace(f"package {package_id} ", "package _ ")
        answers.append((r.status_code, body))
    assert answers[0] == answers[1]
    assert answers[0][0] in (404, 409, 422), answers


def _moves(client: TestClient, world: World, incident_id: int) -> list[tuple[int, int, int, str]]:
    """The incident's escalations: (request, from ring, to ring, cause)."""
    return [
        (
            e["data"]["request"]["id"],
            e["data"]["from_ring"],
            e["data"]["to_ring"],
            e["data"]["cause"],
        )
        for e in _events(client, world, incident_id)
        if e["type"] == "request.escalated"
    ]


def test_a_claim_from_a_package_on_the_fast_path_moves_on_what_its_ring_no_longer_covers(
    app_client: TestClient, world: World, general_calls: list[int]
) -> None:
    # Ring 0 is Thika, whose one package holds 3 pumps: enough for each request of 2.
    items = [{"resource": roster.PUMP, "quantity": 3}]
    package_id = roster.add_package(app_client, world, "thika", items=items)["id"]
    incident_id = _declare(app_client, world)
    claimed, waiting = (_raise(app_client, world, incident_id, quantity=2) for _ in range(2))
    assert _moves(app_client, world, incident_id) == []

    r = roster.claim(app_client, world, claimed, 2, "two", package_id=package_id)
    assert r.status_code == 201, r.text
    assert general_calls == []
    # Thika holds 1 now, short of the other request's 2: it moved on before the answer.
    assert _moves(app_client, world, incident_id) == [(waiting, 0, 1, "cover")]


def test_a_closed_incident_refuses_claims_alike(
    app_client: TestClient, general_client: TestClient, world: World
) -> None:
    answers = []
    for client in (app_client, general_client):
        incident_id = _declare(client, world)
        request_id = _raise(client, world, incident_id)
        r = client.post(
            f"/api/v1/incidents/{incident_id}/close",
            json={},
            headers=world.headers("manager", "nairobi"),
        )
        assert r.status_code == 200, r.text
        claim = _claim(client, world, request_id, 1)
        answers.append((claim.status_code, claim.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 409


def _fail_at_the_end(write: str) -> str:
    """The write fails at its very end, once the requests, the claim rows, the package
    items, the events and the seqs have all been written by its statement."""
    assert write.splitlines()[-1].endswith("(SELECT count(*) FROM committed)")
    return write + ", 1 / ((SELECT count(*) FROM numbered) - 1)"  # noqa: S608


def _miss_the_request(write: str) -> str:
    """As if the request had changed between the read and the write: its update matches
    no row, while the claim, the event and the seq are still written."""
    condition = "AND r.ring = u.ring AND u.claimed <= r.quantity"
    assert condition in write
    return write.replace(condition, condition + " AND false")


@pytest.mark.parametrize("spoil", [_fail_at_the_end, _miss_the_request])
def test_a_failed_or_partial_batch_write_leaves_nothing_and_the_general_command_answers(
    executor: Executor,
    world: World,
    settings: Settings,
    general_calls: list[int],
    spoil: Callable[[str], str],
) -> None:
    responder = _actor(world, Role.RESPONDER, "thika")
    incident, request = _incident_and_request(executor, world, "Spoiled write")

    async def scenario() -> tuple[Any, bool]:
        spoiled = spoil(pg_claims.WRITE)
        async with _fast_claims(executor, settings, write_statement=spoiled) as (claiming, _):
            return await claiming.claim(responder, request.id, ClaimCreate(quantity=3), "k")

    claim, created = asyncio.run(scenario())
    assert created
    assert general_calls == [request.id]
    with executor.db.engine.connect() as conn:
        events = conn.execute(
            text("SELECT seq, type, data FROM events WHERE incident_id = :i ORDER BY seq"),
            {"i": incident.id},
        ).all()
    made = [e for e in events if e.type == "claim.made"]
    assert [e.data["claim"]["id"] for e in made] == [claim.id]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert _claimed_and_claim_rows(executor.db, request.id) == (3, 1)


def test_claims_arriving_together_are_decided_in_one_batch_as_one_at_a_time_would(
    executor: Executor, world: World, settings: Settings
) -> None:
    """Forty claims at once on three requests of two incidents, with retries of the same
    key and a reused key among them: they are decided together, in arrival order, and
    every answer, row and event is what one claim after another would have left."""
    manager = _actor(world, Role.MANAGER, "nairobi")
    responder = _actor(world, Role.RESPONDER, "thika")
    incidents = [
        executor.run_sync(
            manager, declare_incident, IncidentCreate(incident_type="flood", title=f"Batch {i}")
        )[0]
        for i in range(2)
    ]
    requests = [
        executor.run_sync(
            manager,
            raise_request,
            incidents[i % 2].id,
            AidRequestCreate(resource="high-capacity-pump", quantity=5),
        )[0]
        for i in range(3)
    ]
    asks = [(requests[i % 3].id, 1 + i % 2, f"batch-{i}") for i in range(40)]
    asks[7] = asks[6]  # a retry of claim 6 (same key, same body) ...
    asks[8] = (asks[6][0], asks[6][1] + 1, asks[6][2])  # ... and its key with another body

    async def claim_all() -> tuple[list[Any], int]:
        async with _fast_claims(executor, settings, max_in_flight=1) as (claiming, fast):
            # The first claim starts a batch alone; the other 39 queue behind it.
            answers = await asyncio.gather(
                *(
                    claiming.claim(responder, request_id, ClaimCreate(quantity=q), key)
                    for request_id, q, key in asks
                ),
                return_exceptions=True,
            )
        return answers, fast.largest_batch

    answers, largest = asyncio.run(claim_all())
    assert largest >= 30  # they were decided together, not one by one

    # What one claim after another, in this order, would answer.
    left = {r.id: 5 for r in requests}
    first_of_key: dict[str, Any] = {}
    made = 0
    for (request_id, quantity, key), answer in zip(asks, answers, strict=True):
        first = first_of_key.get(key)
        if first is not None:  # a retry: the first claim again, or a refusal
            if quantity == first[0]:
                assert answer == (first[1][0], False), answer
            else:
                assert isinstance(answer, IdempotencyMismatch), answer
            continue
        first_of_key[key] = (quantity, answer)
        if quantity <= left[request_id]:
            assert not isinstance(answer, BaseException), answer
            claim, created = answer
            assert created and (claim.request_id, claim.quantity) == (request_id, quantity)
            left[request_id] -= quantity
            made += 1
        else:
            assert isinstance(answer, (NotEnoughRemaining, IllegalTransition)), answer
    assert sum(left.values()) == 0

    with executor.db.engine.connect() as conn:
        for incident in incidents:
            events = conn.execute(
                text("SELECT seq, type, data FROM events WHERE incident_id = :i ORDER BY seq"),
                {"i": incident.id},
            ).all()
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            # Each event carries its request as that claim left it.
            seen: dict[int, int] = {}
            for e in events:
                if e.type != "claim.made":
                    continue
                request = e.data["request"]
                claimed = seen.get(request["id"], 0) + e.data["claim"]["quantity"]
                assert request["claimed_quantity"] == claimed
                seen[request["id"]] = claimed
        rows = conn.execute(
            text(
                "SELECT r.quantity, r.claimed_quantity, r.status,"
                " (SELECT COALESCE(SUM(c.quantity), 0) FROM claims c WHERE c.request_id = r.id)"
                " FROM aid_requests r WHERE r.id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": [r.id for r in requests]},
        ).all()
        claims_made = conn.execute(
            text("SELECT count(*) FROM claims WHERE request_id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": [r.id for r in requests]},
        ).scalar_one()
    assert all(r == (5, 5, "claimed", 5) for r in rows), rows
    assert claims_made == made


def test_claim_events_name_the_incident_viewers_of_the_moment(
    executor: Executor, world: World, settings: Settings, clock: FakeClock
) -> None:
    """The fast path keeps the cities an incident's requests reach between claims, its own
    or others'; an escalation or a new network member still shows in the next claim's
    viewers."""
    thika = _actor(world, Role.RESPONDER, "thika")
    incident, request = _incident_and_request(executor, world, "Viewers", quantity=10)

    def viewers_now() -> list[int]:
        with executor.db.read() as session:
            row = session.get(Incident, incident.id)
            assert row is not None
            return incident_viewers(session, row)

    async def scenario() -> list[tuple[list[int], list[int]]]:
        seen = []

        async def claim(key: str) -> None:
            answer = await fast.claim(thika, request.id, ClaimCreate(quantity=1), key, clock())
            assert answer is not None
            _, created, (event,) = answer
            assert created
            seen.append((event.audience["viewers"], viewers_now()))

        async with _fast_claims(executor, settings) as (_, fast):
            await claim("first")
            # Nothing but a claim (on the general path here, as on another replica)
            # happens before the next one, so what was kept serves: marked here, the
            # mark shows in that claim's viewers (and only in that one's).
            seq, event_id, reached = fast._reached[incident.id]
            fast._reached[incident.id] = (seq, event_id, [*reached, -1])
            await executor.run(
                thika, claims.claim_request, request.id, ClaimCreate(quantity=1), "elsewhere"
            )
            await claim("again")
            clock.advance(timedelta(minutes=31))
            await Sweeper(executor).sweep()
            clock.advance(timedelta(hours=2, minutes=1))
            await Sweeper(executor).sweep()  # ring 2: Augsburg, of no network of Nairobi's
            await claim("after escalation")
            executor.run_sync(
                SYSTEM,
                add_member,
                world.network_ids["kenya"],
                world.city_ids["berlin"],
            )
            await claim("after berlin joined")
        return seen

    seen = asyncio.run(scenario())
    assert seen[1][0] == [-1, *seen[1][1]]
    for stored, fresh in seen[:1] + seen[2:]:
        assert stored == fresh
    augsburg, berlin = world.city_ids["augsburg"], world.city_ids["berlin"]
    assert [(augsburg in s, berlin in s) for s, _ in seen] == [
        (False, False),
        (False, False),
        (True, False),
        (True, True),
    ]
    with executor.db.engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT audience FROM events WHERE incident_id = :i AND type = 'claim.made'"
                " ORDER BY seq"
            ),
            {"i": incident.id},
        ).scalars()
        fast_claims = [s for s, _ in seen]
        # The general command's claim, between the first two, read its viewers fresh.
        assert [a["viewers"] for a in stored] == [fast_claims[0], seen[1][1], *fast_claims[1:]]


def test_a_claim_whose_caller_went_away_is_decided_and_its_retry_replays_it(
    executor: Executor, world: World, settings: Settings
) -> None:
    """A caller that disconnects while its claim's batch is in the database does not undo
    the claim; retrying with the same key answers it, and nothing is claimed twice."""
    responder = _actor(world, Role.RESPONDER, "thika")
    incident, request = _incident_and_request(executor, world, "Gone")

    async def scenario() -> tuple[Any, Any]:
        async with _fast_claims(executor, settings) as (claiming, fast):
            body = ClaimCreate(quantity=2)
            gone = asyncio.create_task(claiming.claim(responder, request.id, body, "gone"))
            await asyncio.sleep(0)  # the claim is queued and its batch is on its way
            assert fast._batches
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
            await fast.aclose()  # the batch finishes all the same
            return await claiming.claim(responder, request.id, body, "gone"), gone

    (claim, created), gone = asyncio.run(scenario())
    assert gone.cancelled()
    assert not created  # the retry replayed the claim the batch made
    with executor.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, quantity FROM claims WHERE request_id = :r"), {"r": request.id}
        ).all()
        made = conn.execute(
            text("SELECT count(*) FROM events WHERE incident_id = :i AND type = 'claim.made'"),
            {"i": incident.id},
        ).scalar_one()
    assert [tuple(r) for r in rows] == [(claim.id, 2)]
    assert made == 1


def test_a_key_reused_while_its_first_claim_is_in_the_database_waits_for_it(
    executor: Executor, world: World, settings: Settings, general_calls: list[int]
) -> None:
    """A key reused for another request while its first claim's batch is in the database
    is decided after that batch, as if they had come one after the other: the first
    claim is made, the reuse refused. Claims on other incidents go on meanwhile."""
    responder = _actor(world, Role.RESPONDER, "thika")
    made = [_incident_and_request(executor, world, f"Key {i}") for i in range(3)]
    (incident, first), (_, second), (_, third) = made
    one = ClaimCreate(quantity=1)

    async def scenario() -> list[Any]:
        async with _fast_claims(executor, settings) as (claiming, _):
            # The first claim's batch waits on its incident's lock, held here.
            holder = await psycopg.AsyncConnection.connect(pg_claims.conninfo(settings))
            try:
                await holder.execute(
                    "SELECT id FROM incidents WHERE id = %s FOR UPDATE", [incident.id]
                )
                claimed = asyncio.create_task(claiming.claim(responder, first.id, one, "k"))
                for _ in range(200):
                    await asyncio.sleep(0.01)
                    waiting = await holder.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                    )
                    if (await waiting.fetchone()) != (0,):
                        break
                else:
                    raise AssertionError("the first claim's batch never waited on the lock")
                reused = asyncio.create_task(claiming.claim(responder, second.id, one, "k"))
                other = await asyncio.wait_for(
                    claiming.claim(responder, third.id, one, "other"), 10
                )
            finally:
                await holder.rollback()
                await holder.close()
            return [await claimed, *await asyncio.gather(reused, return_exceptions=True), other]

    (claim, created), reused, (other, other_created) = asyncio.run(scenario())
    assert created and claim.request_id == first.id
    assert isinstance(reused, IdempotencyMismatch), reused
    assert other_created and other.request_id == third.id
    # The claim core refuses the reused key on the fast path itself.
    assert general_calls == []


TRIALS = 12
CLAIMERS = 24


def test_claims_racing_on_both_paths_never_over_commit(
    executor: Executor, world: World, settings: Settings
) -> None:
    """Half the claimers take the fast path, half the general command (in worker
    threads, as the sweeps and the other commands do), all at once."""
    manager = _actor(world, Role.MANAGER, "nairobi")
    # Thika is the ring-0 city of a Nairobi request: every claimer acts for it.
    responder = _actor(world, Role.RESPONDER, "thika")
    incident, _ = executor.run_sync(
        manager, declare_incident, IncidentCreate(incident_type="flood", title="Race")
    )
    outcomes: dict[str, int] = {"ok": 0, "refused": 0, "fast": 0}

    async def race() -> list[int]:
        rng = random.Random(7)
        request_ids = []
        async with _fast_claims(executor, settings) as (claiming, fast):
            answer = fast.claim

            async def counted(*args: Any) -> Any:
                done = await answer(*args)
                outcomes["fast"] += done is not None
                return done

            fast.claim = counted  # type: ignore[method-assign]
            for _ in range(TRIALS):
                request, _ = executor.run_sync(
                    manager,
                    raise_request,
                    incident.id,
                    AidRequestCreate(resource="high-capacity-pump", quantity=5),
                )
                request_ids.append(request.id)

                async def one(i: int, request_id: int = request.id) -> None:
                    body = ClaimCreate(quantity=rng.choice((1, 1, 2, 3)))
                    key = uuid.uuid4().hex
                    try:
                        if i % 2:
                            await claiming.claim(responder, request_id, body, key)
                        else:
                            await executor.run(
                                responder, claims.claim_request, request_id, body, key
                            )
                        outcomes["ok"] += 1
                    except (NotEnoughRemaining, IllegalTransition):
                        outcomes["refused"] += 1

                await asyncio.gather(*(one(i) for i in range(CLAIMERS)))
        return request_ids

    request_ids = asyncio.run(race())
    assert outcomes["ok"] + outcomes["refused"] == TRIALS * CLAIMERS
    with executor.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.id, r.quantity, r.claimed_quantity, r.status,"
                " (SELECT COALESCE(SUM(c.quantity), 0) FROM claims c WHERE c.request_id = r.id),"
                " (SELECT count(*) FROM claims c WHERE c.request_id = r.id)"
                " FROM aid_requests r WHERE r.incident_id = :i ORDER BY r.id"
            ),
            {"i": incident.id},
        ).all()
        seqs = (
            conn.execute(
                text("SELECT seq FROM events WHERE incident_id = :i ORDER BY seq"),
                {"i": incident.id},
            )
            .scalars()
            .all()
        )
        made = conn.execute(
            text("SELECT count(*) FROM events WHERE incident_id = :i AND type = 'claim.made'"),
            {"i": incident.id},
        ).scalar_one()
    assert [r[0] for r in rows] == request_ids
    for _id, quantity, claimed, status, summed, _count in rows:
        assert claimed <= quantity
        assert claimed == summed
        assert status == ("claimed" if claimed == quantity else "partially_claimed")
    assert sum(r[5] for r in rows) == outcomes["ok"] == made
    assert seqs == list(range(1, len(seqs) + 1))
    assert outcomes["fast"] > 0  # the fast path did answer some, and not only with refusals
    print(
        f"\nfast+general race: {TRIALS} requests, {TRIALS * CLAIMERS} attempts, "
        f"{outcomes['ok']} claims ({outcomes['fast']} by the fast path), "
        f"{outcomes['refused']} refused, over-claims 0, seqs gap-free"
    )


def test_an_exhausted_claims_pool_answers_503_and_does_not_take_the_slower_path(
    app_client: TestClient,
    world: World,
    general_calls: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under overload, handing waiting claims to the general command (ten times the CPU)
    would deepen the overload: they are answered 503, as the ORM's pool answers."""
    incident_id = _declare(app_client, world)
    request_id = _raise(app_client, world, incident_id)
    executor: Executor = app_client.app.state.parts.executor  # type: ignore[attr-defined]
    assert isinstance(executor.claim_path, pg_claims.PgClaims)

    @contextlib.asynccontextmanager
    async def exhausted(*_args: Any, **_kwargs: Any) -> AsyncIterator[Any]:
        raise PoolTimeout("couldn't get a connection after 5.00 sec")
        yield  # an async generator, for the decorator

    # Signed in before the pool runs dry: the token lookup takes the same pool.
    with app_client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "auth", "token": world.token("responder", "thika")})
        assert ws.receive_json()["type"] == "welcome"
        with monkeypatch.context() as patch:
            patch.setattr(executor.claim_path.pool, "connection", exhausted)
            r = _claim(app_client, world, request_id, 1)
            ws.send_json(
                {"op": "claim", "request_id": request_id, "quantity": 1, "idempotency_key": "w"}
            )
            over_ws = ws.receive_json()
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    assert r.json()["detail"] == "the database is busy; retry shortly"
    assert (over_ws["type"], over_ws["status"]) == ("error", 503), over_ws
    assert general_calls == []
    # Nothing was written, and once connections are free again claims go through.
    again = _claim(app_client, world, request_id, 1)
    assert again.status_code == 201, again.text
    made = [e for e in _events(app_client, world, incident_id) if e["type"] == "claim.made"]
    assert len(made) == 1
