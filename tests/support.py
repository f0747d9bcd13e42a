"""Shared test scaffolding: databases on every backend, a seeded network, an app client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from playbooks import load_catalogue, load_stock_playbooks
from realtime.bus import InMemoryBus
from service.commands.admin import create_city, create_network, mint_token
from service.domain.actors import SYSTEM, Role
from service.executor import Executor
from service.models import CityCreate, NetworkCreate
from service.persistence.db import Database, build_engine, migrate
from service.settings import Settings
from tests.procs import scratch_postgres, scratch_sqlite

TABLES = [
    "observatory_cities",
    "observatory_networks",
    "sitreps",
    "interop_imports",
    "package_items",
    "webhook_attempts",
    "webhook_queue",
    "webhook_cursors",
    "webhook_endpoints",
    "city_playbooks",
    "notes",
    "offers",
    "events",
    "request_passes",
    "claims",
    "roster_packages",
    "request_targets",
    "aid_requests",
    "incidents",
    "playbook_versions",
    "ws_tickets",
    "api_tokens",
    "pending_sign_ins",
    "external_identities",
    "sign_in_providers",
    "user_sessions",
    "sign_in_throttle",
    "people",
    "network_memberships",
    "cities",
    "networks",
]


def missing(reason: str) -> None:
    """A service or tool a test needs is not there: a developer's run skips the test;
    under CI (`CI=true`, where .ci/run provides everything) that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI provides it: see .ci/run)")
    pytest.skip(reason)


def postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql")) else None


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if postgres_url() else ["sqlite"]


@contextmanager
def scratch_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """A migrated, empty database for one test session; dropped afterwards."""
    if backend == "sqlite":
        yield scratch_sqlite(tmp_dir)
        return
    base = postgres_url()
    assert base is not None
    with scratch_postgres(base) as url:
        yield url


@contextmanager
def postgres_only(tmp_dir: Path) -> Iterator[str]:
    """A scratch PostgreSQL database for a module that tests PostgreSQL alone (in place
    of conftest.py's every-backend one); missing without PostgreSQL."""
    if postgres_url() is None:
        missing("needs PostgreSQL: set DATABASE_URL")
    with scratch_database("postgresql", tmp_dir) as url:
        yield url


def app_settings(database_url: str) -> Settings:
    """Settings for an in-process app or executor: no Redis, no scheduler."""
    return Settings(
        database_url=database_url,
        redis_url=None,
        embedded_redis=False,
        scheduler_enabled=False,
        data_dir=Path("var/test"),
        # Tokens minted at the fake clock's time must still work on servers that run on
        # the wall clock: the fixtures' tokens live for a century. Tests of expiry use
        # the service's own defaults (tests/api/test_token_lifecycle.py).
        token_default_days=36_500,
        token_max_days=36_500,
    )


# The sequences of the tables' identity columns, each set back to its start: what
# `TRUNCATE ... RESTART IDENTITY` does, without the truncation.
_RESTART_SEQUENCES = text(
    """
    SELECT setval(seq.seqrelid, seq.seqstart, false)
    FROM pg_sequence seq
    JOIN pg_depend dep ON dep.objid = seq.seqrelid AND dep.classid = 'pg_class'::regclass
    WHERE dep.deptype IN ('a', 'i') AND dep.refobjid = ANY(CAST(:tables AS regclass[]))
    """
)


# Tables whose published rows PostgreSQL refuses to delete (migrations 0007 and 0014): the
# wipe lifts the guard for its own transaction, as the TRUNCATE it replaces (which fires
# no row trigger) passed it by.
GUARDED = {"playbook_versions": "playbook_versions_immutable", "sitreps": "sitreps_immutable"}


def wipe(db: Database) -> None:
    """Empty every table, children first, and start their ids again at 1.

    Rows are deleted on PostgreSQL too: a TRUNCATE of the 31 tables gives each table and
    index a new file and syncs them at commit (about 0.1 s on an idle disk, several times
    that on a busy one, before every test), while a test leaves only a few rows behind.
    """
    with db.engine.begin() as conn:
        for table in TABLES:
            delete = text(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
            if db.is_sqlite or table not in GUARDED:
                conn.execute(delete)
            elif conn.execute(text(f"SELECT EXISTS (SELECT FROM {table})")).scalar():  # noqa: S608
                guard = GUARDED[table]
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {guard}"))
                conn.execute(delete)
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {guard}"))
        if not db.is_sqlite:
            conn.execute(_RESTART_SEQUENCES, {"tables": TABLES})


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 2, 12, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_executor(settings: Settings, clock: FakeClock | None = None) -> Executor:
    engine = build_engine(settings)
    migrate(engine)
    catalogue = load_catalogue()
    stock = load_stock_playbooks(catalogue)
    return Executor(
        Database(engine), InMemoryBus(), settings, catalogue, lambda: stock, clock or FakeClock()
    )


# The seeded world: real coordinates. Thika is ~40 km from Nairobi (ring 0),
# Machakos ~56 km (ring 1), Mombasa ~440 km (ring 1). Munich shares the alliance
# network with Nairobi (ring 1); Augsburg shares only the German network with
# Munich, so a Nairobi request reaches it at ring 2. Berlin is in no network
# Nairobi can reach.
CITIES = {
    "nairobi": ("Nairobi", "KE", -1.2864, 36.8172, ["kenya", "alliance"]),
    "thika": ("Thika", "KE", -1.0333, 37.0693, ["kenya"]),
    "machakos": ("Machakos", "KE", -1.5177, 37.2634, ["kenya"]),
    "mombasa": ("Mombasa", "KE", -4.0435, 39.6682, ["kenya"]),
    "munich": ("Munich", "DE", 48.1351, 11.5820, ["alliance", "germany"]),
    "berlin": ("Berlin", "DE", 52.5200, 13.4050, ["germany-east"]),
    "augsburg": ("Augsburg", "DE", 48.3705, 10.8978, ["germany"]),
}
# The Kenyan cities know their time zone; the German ones leave it unset (the pages then
# show only the viewer's).
TIME_ZONES = {"nairobi": "Africa/Nairobi", "thika": "Africa/Nairobi", "mombasa": "Africa/Nairobi"}


@dataclass
class World:
    executor: Executor
    city_ids: dict[str, int] = field(default_factory=dict)
    network_ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str, city: str | None = None) -> str:
        key = f"{role}:{city}" if city else role
        if key not in self.tokens:
            city_id = self.city_ids[city] if city else None
            (_, secret), _ = self.executor.run_sync(SYSTEM, mint_token, Role(role), city_id, key)
            self.tokens[key] = secret
        return self.tokens[key]

    def headers(self, role: str, city: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, city)}"}


def seed_world(executor: Executor) -> World:
    world = World(executor)
    for slug in ("kenya", "alliance", "germany", "germany-east"):
        network, _ = executor.run_sync(
            SYSTEM, create_network, NetworkCreate(slug=slug, name=slug.title())
        )
        world.network_ids[slug] = network.id
    for slug, (name, country, lat, lon, nets) in CITIES.items():
        body = CityCreate(
            slug=slug,
            name=name,
            country=country,
            lat=lat,
            lon=lon,
            time_zone=TIME_ZONES.get(slug),
            networks=nets,
        )
        city, _ = executor.run_sync(SYSTEM, create_city, body)
        world.city_ids[slug] = city.id
    return world
