"""A database filled by a realistic run, for tests that need one full of history.

It plays what `aidmesh demo` plays, through the same commands its HTTP calls reach:
the demo's networks and cities, a city's own flood playbook, incidents declared from
stock playbooks, responders in every city claiming from their inboxes (retrying with
the same Idempotency-Key now and then), managers accepting and declining, claimers
withdrawing, travelling and answering, and the scheduler's sweeps escalating rings
and expiring claims and requests as a fake clock moves five minutes a tick.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import timedelta

import yaml
from sqlalchemy import func
from sqlmodel import select

from playbooks import load_catalogue, load_stock_playbooks
from service import queries
from service.commands import admin, aid_requests, city_playbooks, claims, incidents, sitreps
from service.demo import CITIES, FORECAST_ANSWER, NETWORKS
from service.domain.actors import SYSTEM, Actor, Role
from service.domain.errors import DomainError
from service.executor import Executor
from service.models import (
    AidRequestCreate,
    AidRequestPublic,
    CityCreate,
    ClaimCreate,
    ClaimStatusChange,
    IncidentCreate,
    NetworkCreate,
)
from service.persistence.tables import AidRequest, Event
from service.scheduler import Sweeper
from tests.support import FakeClock

# (declaring city, stock playbook, tick it is declared at, exercise)
DECLARATIONS = [
    ("nairobi", "flood", 0, True),
    ("munich", "heatwave", 0, False),
    ("cape-town", "wildfire", 4, False),
    ("mombasa", "chemical-release", 8, True),
    ("berlin", "cyberattack", 12, False),
    ("johannesburg", "power-grid-failure", 16, False),
]
TICK = timedelta(minutes=5)
_TRAVELLING = ("accepted", "en_route", "on_site")


@dataclass
class ClaimMade:
    city: str
    request_id: int
    quantity: int
    key: str
    claim_id: int


@dataclass
class _Live:
    made: ClaimMade
    kind: str
    manager: str
    status: str = "claimed"


@dataclass
class RealisticRun:
    executor: Executor
    city_ids: dict[str, int] = field(default_factory=dict)
    # "role:city" (or "admin") → (actor, bearer secret)
    tokens: dict[str, tuple[Actor, str]] = field(default_factory=dict)
    incidents: dict[str, int] = field(default_factory=dict)  # declaring city → incident id
    claims: list[ClaimMade] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def actor(self, key: str) -> Actor:
        return self.tokens[key][0]

    def secret(self, key: str) -> str:
        return self.tokens[key][1]

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def realistic_run(
    executor: Executor, clock: FakeClock, *, events: int = 600, seed: int = 2024
) -> RealisticRun:
    """Play until at least `events` events are recorded (or 200 ticks have passed)."""
    rng = random.Random(seed)
    run = RealisticRun(executor)
    _seed(run)
    live: list[_Live] = []
    for tick in range(200):
        for city, playbook, at, exercise in DECLARATIONS:
            if at == tick:
                _declare(run, city, playbook, exercise)
        for city in sorted(run.city_ids):
            _respond(run, city, rng, live)
        for claim in live:
            _advance(run, claim, rng)
        live = [c for c in live if c.status != "gone"]
        if rng.random() < 0.08:
            _cancel_one(run, rng)
        asyncio.run(Sweeper(executor).sweep())
        clock.advance(TICK)
        if tick > DECLARATIONS[-1][2] and _event_count(executor) >= events:
            break
    # A situation report of the last hour before Berlin closes its incident.
    executor.run_sync(
        run.actor("manager:berlin"),
        sitreps.publish_sitrep,
        run.incidents["berlin"],
        clock.now - timedelta(hours=1),
        None,
    )
    executor.run_sync(
        run.actor("manager:berlin"), incidents.close_incident, run.incidents["berlin"]
    )
    (revoked, _secret), _ = executor.run_sync(
        SYSTEM, admin.mint_token, Role.OBSERVER, run.city_ids["thika"], "lost laptop"
    )
    executor.run_sync(SYSTEM, admin.revoke_token, revoked.id)
    return run


def _seed(run: RealisticRun) -> None:
    ex = run.executor
    for slug, name in NETWORKS.items():
        ex.run_sync(SYSTEM, admin.create_network, NetworkCreate(slug=slug, name=name))
    for slug, (name, country, lat, lon, networks) in CITIES.items():
        body = CityCreate(
            slug=slug, name=name, country=country, lat=lat, lon=lon, networks=networks
        )
        city, _ = ex.run_sync(SYSTEM, admin.create_city, body)
        run.city_ids[slug] = city.id
    _token(run, "admin", Role.ADMIN, None)
    for slug in run.city_ids:
        _token(run, f"responder:{slug}", Role.RESPONDER, run.city_ids[slug])
    for slug, *_ in DECLARATIONS:
        _token(run, f"manager:{slug}", Role.MANAGER, run.city_ids[slug])
    _token(run, "observer:nairobi", Role.OBSERVER, run.city_ids["nairobi"])
    # Nairobi's own flood plan: the stock one with tighter rings, as the demo's.
    flood = yaml.safe_load(_stock_source("flood"))
    flood["title"] = "Riverine or flash flood (Nairobi plan)"
    flood["escalation"] = {"ring0_radius_km": 80, "ring_intervals": ["20m", "45m"]}
    checked = city_playbooks.check_city_playbook(
        ex.catalogue, "flood", yaml.safe_dump(flood, sort_keys=False)
    )
    ex.run_sync(
        run.actor("admin"), city_playbooks.save_city_playbook, run.city_ids["nairobi"], checked
    )


def _stock_source(name: str) -> str:
    return yaml.safe_dump(load_stock_playbooks(load_catalogue())[name].model_dump(mode="json"))


def _token(run: RealisticRun, key: str, role: Role, city_id: int | None) -> None:
    (row, secret), _ = run.executor.run_sync(SYSTEM, admin.mint_token, role, city_id, key)
    run.tokens[key] = (Actor(role, city_id, row.id), secret)


def _declare(run: RealisticRun, city: str, playbook: str, exercise: bool) -> None:
    body = IncidentCreate(
        incident_type=playbook,
        playbook=playbook,
        title=f"{playbook.replace('-', ' ').capitalize()} in {CITIES[city][0]}",
        exercise=exercise,
    )
    incident, _ = run.executor.run_sync(
        run.actor(f"manager:{city}"), incidents.declare_incident, body
    )
    run.incidents[city] = incident.id
    # A request of the manager's own beside the playbook's.
    extra = AidRequestCreate(resource="gis-analyst", quantity=2, notes="mapping")
    run.executor.run_sync(
        run.actor(f"manager:{city}"), aid_requests.raise_request, incident.id, extra
    )


def _inbox(run: RealisticRun, city: str) -> list[AidRequestPublic]:
    actor = run.actor(f"responder:{city}")
    with run.executor.db.read() as session:
        page = queries.inbox(
            session, actor, status=None, incident_id=None, kind=None, limit=200, offset=0
        )
    return list(page.data)


def _respond(run: RealisticRun, city: str, rng: random.Random, live: list[_Live]) -> None:
    """A responding city looks at its inbox and claims a few units of some requests."""
    actor = run.actor(f"responder:{city}")
    for request in _inbox(run, city):
        if request.remaining_quantity < 1 or request.city_id == actor.city_id:
            continue
        if rng.random() > 0.12:
            continue  # not every city answers at once
        quantity = rng.randint(1, min(3, request.remaining_quantity))
        key = f"sim-{city}-{request.id}-{rng.randrange(10**6)}"
        try:
            (row, created), _ = run.executor.run_sync(
                actor, claims.claim_request, request.id, ClaimCreate(quantity=quantity), key
            )
        except DomainError:
            run.count("claim refused")
            continue
        assert created
        made = ClaimMade(city, request.id, quantity, key, row.id)
        run.claims.append(made)
        run.count("claim made")
        manager = next(c for c, i in run.incidents.items() if i == request.incident_id)
        live.append(_Live(made, request.kind, f"manager:{manager}"))
        if rng.random() < 0.1:
            _retry(run, actor, made, rng)


def _retry(run: RealisticRun, actor: Actor, made: ClaimMade, rng: random.Random) -> None:
    """A client that lost the answer retries with the same key (and now and then, a bug,
    with the same key for another quantity)."""
    quantity = made.quantity if rng.random() < 0.8 else made.quantity + 1
    try:
        (row, created), _ = run.executor.run_sync(
            actor, claims.claim_request, made.request_id, ClaimCreate(quantity=quantity), made.key
        )
    except DomainError:
        run.count("retry refused")
        return
    assert (row.id, created) == (made.claim_id, False)
    run.count("retry replayed")


def _advance(run: RealisticRun, claim: _Live, rng: random.Random) -> None:
    """One step of one claim, now and then: the manager decides, the claimer travels."""
    if rng.random() > 0.35:
        return
    claimer = f"responder:{claim.made.city}"
    roll = rng.random()
    if claim.status == "claimed":
        who, status = (claimer, "withdrawn") if roll < 0.08 else (claim.manager, "accepted")
        if 0.08 <= roll < 0.15:
            status = "declined"
    elif claim.status == "accepted" and claim.kind == "information":
        who, status = claimer, "released"
    elif claim.status == "accepted":
        who, status = claimer, "en_route"
    elif claim.status == "en_route":
        who, status = claimer, "on_site"
    else:
        who, status = claimer, "released"
    answer = FORECAST_ANSWER if claim.kind == "information" and status == "released" else None
    body = ClaimStatusChange(status=status, answer=answer)  # type: ignore[arg-type]
    try:
        row, _ = run.executor.run_sync(
            run.actor(who), claims.change_claim_status, claim.made.claim_id, body
        )
    except DomainError:
        claim.status = "gone"  # expired, or its request ended meanwhile
        run.count("step refused")
        return
    claim.status = row.status if row.status in _TRAVELLING else "gone"
    run.count(f"claim {status}")


def _cancel_one(run: RealisticRun, rng: random.Random) -> None:
    city = rng.choice(sorted(run.incidents))
    with run.executor.db.read() as session:
        open_ids = session.exec(
            select(AidRequest.id).where(
                AidRequest.incident_id == run.incidents[city], AidRequest.status == "open"
            )
        ).all()
    if not open_ids:
        return
    try:
        run.executor.run_sync(
            run.actor(f"manager:{city}"), aid_requests.cancel_request, rng.choice(open_ids)
        )
    except DomainError:
        return
    run.count("request cancelled")


def _event_count(executor: Executor) -> int:
    with executor.db.read() as session:
        return int(session.exec(select(func.count()).select_from(Event)).one())
