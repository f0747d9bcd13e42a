"""The benchmark world: one network of cities around a requesting city, tokens, incidents.

Seeding runs the service's own commands in this process (as the tests do), so the
rows are exactly what the API would write; the measured work goes through the
REST API and the websocket gateway of real replicas.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from playbooks import load_catalogue, load_stock_playbooks
from realtime.bus import InMemoryBus
from realtime.envelope import encode
from service.commands import aid_requests, claims, incidents, rosters
from service.commands.admin import create_city, create_network, mint_token
from service.domain.actors import SYSTEM, Actor, Role
from service.executor import Executor
from service.models import (
    AidRequestCreate,
    CityCreate,
    ClaimCreate,
    IncidentCreate,
    NetworkCreate,
    PackageCreate,
    PackageItemIn,
)
from service.persistence.db import Database, build_engine, migrate
from service.settings import Settings

# Around Nairobi: every responder within ring 0 (50 km) of the requesting city.
HQ = (-1.2864, 36.8172)
RESOURCE = "paramedic-team"


def executor_for(database_url: str) -> Executor:
    settings = Settings(database_url=database_url, scheduler_enabled=False)
    engine = build_engine(settings)
    migrate(engine)
    catalogue = load_catalogue()
    stock = load_stock_playbooks(catalogue)
    return Executor(Database(engine), InMemoryBus(), settings, catalogue, lambda: stock)


@dataclass
class Token:
    secret: str
    actor: Actor


@dataclass
class World:
    executor: Executor
    hq: int
    manager: Token
    observer: Token
    responders: list[Token] = field(default_factory=list)
    city_ids: list[int] = field(default_factory=list)

    def dispose(self) -> None:
        self.executor.db.dispose()


def _token(executor: Executor, role: Role, city_id: int, label: str) -> Token:
    (token, secret), _ = executor.run_sync(SYSTEM, mint_token, role, city_id, label)
    return Token(secret, Actor(role=role, city_id=city_id, token_id=token.id))


def _offset(km_north: float, km_east: float) -> tuple[float, float]:
    lat = HQ[0] + km_north / 111.32
    lon = HQ[1] + km_east / (111.32 * math.cos(math.radians(HQ[0])))
    return round(lat, 5), round(lon, 5)


def seed_world(database_url: str, *, cities: int, near_km: float = 30.0) -> World:
    """A network of `cities` cities: the requesting city and `cities - 1` others.

    The first up to 20 others lie within `near_km` (ring 0) and get responder tokens;
    the rest are spread to 600 km, so rings 0 and 1 both mean something."""
    executor = executor_for(database_url)
    network, _ = executor.run_sync(
        SYSTEM, create_network, NetworkCreate(slug="bench", name="Benchmark compact")
    )
    assert network.id is not None
    ids: list[int] = []
    for i in range(cities):
        if i == 0:
            lat, lon = HQ
        else:
            angle = i * 2.399963  # golden angle: spread evenly
            distance = near_km * (0.2 + 0.8 * i / 20) if i <= 20 else 60 + 540 * (i / cities)
            lat, lon = _offset(distance * math.cos(angle), distance * math.sin(angle))
        body = CityCreate(
            slug=f"bench-city-{i}",
            name=f"Bench city {i}",
            country="KE",
            lat=lat,
            lon=lon,
            networks=["bench"],
        )
        city, _ = executor.run_sync(SYSTEM, create_city, body)
        assert city.id is not None
        ids.append(city.id)
    hq = ids[0]
    world = World(
        executor=executor,
        hq=hq,
        manager=_token(executor, Role.MANAGER, hq, "bench manager"),
        observer=_token(executor, Role.OBSERVER, hq, "bench observer"),
        city_ids=ids,
    )
    for city_id in ids[1 : min(len(ids), 21)]:
        world.responders.append(_token(executor, Role.RESPONDER, city_id, "bench responder"))
    return world


def declare(world: World, title: str, playbook: str | None = None) -> int:
    body = IncidentCreate(
        incident_type=playbook or "flood", title=title, playbook=playbook, severity="severe"
    )
    incident, _ = world.executor.run_sync(world.manager.actor, incidents.declare_incident, body)
    assert incident.id is not None
    return incident.id


def raise_request(world: World, incident_id: int, quantity: int) -> int:
    body = AidRequestCreate(resource=RESOURCE, quantity=quantity, priority="high")
    request, _ = world.executor.run_sync(
        world.manager.actor, aid_requests.raise_request, incident_id, body
    )
    assert request.id is not None
    return request.id


def add_packages(world: World, units: int = 10_000) -> dict[int, int]:
    """A package of `units` of RESOURCE for every responder's city: city id -> package id."""
    made: dict[int, int] = {}
    for token in world.responders:
        city_id = token.actor.city_id
        assert city_id is not None
        if city_id in made:
            continue
        manager = Actor(role=Role.MANAGER, city_id=city_id, token_id=None)
        body = PackageCreate(
            name=f"Paramedic strike team {city_id}",
            items=[PackageItemIn(resource=RESOURCE, quantity=units)],
            readiness_hours=2,
            self_sufficiency_days=3,
        )
        package, _ = world.executor.run_sync(manager, rosters.create_package, city_id, body)
        made[city_id] = package.id
    return made


def last_seqs(world: World, incident_ids: list[int]) -> dict[int, int]:
    from sqlmodel import col, select

    from service.persistence.tables import Incident

    with world.executor.db.read() as session:
        rows = session.exec(
            select(Incident.id, Incident.last_seq).where(col(Incident.id).in_(incident_ids))
        ).all()
    return {int(i): int(s) for i, s in rows if i is not None}


def event_template(world: World, request_id: int) -> bytes:
    """A real `claim.made` event as the gateway sends it, made by one claim."""
    (_claim, _created), events = world.executor.run_sync(
        world.responders[0].actor,
        claims.claim_request,
        request_id,
        ClaimCreate(quantity=1, note="bench p0 t0.000000"),
        uuid.uuid4().hex,
    )
    return encode(events[0].model_dump(mode="json"))


def naive_payload_factory(template: bytes) -> Any:
    """`make(seq, tag)` → the template event with incident 0, that seq and that tag."""
    import orjson

    envelope = orjson.loads(template)
    event = envelope["event"]
    event["incident_id"] = 0
    event["seq"] = 999_999_999
    event["data"]["claim"]["note"] = "bench p0 t0.000000"
    text = orjson.dumps(envelope).decode()
    head, tail = text.split('"seq":999999999', 1)
    before_tag, after_tag = tail.split("bench p0 t0.000000", 1)

    def make(seq: int, tag: str) -> str:
        return f'{head}"seq":{seq}{before_tag}{tag}{after_tag}'

    return make
