"""Webhook deliveries per second from one replica's worker to a local receiver, signed.

One city, one endpoint, `incidents` incidents of `per_incident` events each written
straight into the events table; then the delivery worker (the same class a replica runs,
with its sender, signing and SSRF checks) delivers them to a minimal HTTP/1.1 receiver on
loopback (a process of its own), and the time until the receiver has them all is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from bench.harness import log
from playbooks import load_catalogue, load_stock_playbooks
from realtime.bus import InMemoryBus
from service.commands.admin import create_city, mint_token
from service.commands.incidents import declare_incident
from service.commands.webhooks import register_endpoint
from service.domain.actors import SYSTEM, Actor, Role
from service.executor import Executor
from service.models import CityCreate, IncidentCreate
from service.persistence.db import Database, build_engine, migrate
from service.persistence.tables import Event, Incident, WebhookCursor
from service.settings import Settings
from service.webhooks.models import WebhookCreate
from service.webhooks.sender import Sender
from service.webhooks.wiring import address_policy
from service.webhooks.worker import WebhookWorker
from tests.procs import free_port

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


async def _serve(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    seen: Any,
    repeats: Any = None,
    taken: set[bytes] | None = None,
) -> None:
    """A receiver that reads each request (headers, then Content-Length bytes) and says 200.

    With `repeats` and `taken`, it also counts deliveries of a message id to an endpoint
    path that already had it (the receivers' duplicates)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            message = head.split(b" ", 2)[1]  # the endpoint's path
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                elif line[:11].lower() == b"webhook-id:":
                    message += b" " + line[11:].strip()
            await reader.readexactly(length)
            with seen.get_lock():
                seen.value += 1
            if taken is not None and repeats is not None:
                if message in taken:
                    with repeats.get_lock():
                        repeats.value += 1
                taken.add(message)
            writer.write(_OK)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the worker closed its connection: the receiver waits for the next one
    finally:
        writer.close()


def _seed(database_url: str, incidents: int, per_incident: int, port: int) -> Database:
    settings = Settings(database_url=database_url, webhook_allow_http=True)
    engine = build_engine(settings)
    migrate(engine)
    catalogue = load_catalogue()
    stock = load_stock_playbooks(catalogue)
    executor = Executor(Database(engine), InMemoryBus(), settings, catalogue, lambda: stock)
    city, _ = executor.run_sync(
        SYSTEM, create_city, CityCreate(slug="bench", name="Bench", country="KE", lat=0, lon=0)
    )
    (token, _), _ = executor.run_sync(SYSTEM, mint_token, Role.MANAGER, city.id, "bench")
    manager = Actor(Role.MANAGER, city.id, token.id)
    executor.run_sync(
        SYSTEM,
        register_endpoint,
        WebhookCreate(url=f"http://127.0.0.1:{port}/hook", city_id=city.id),
    )
    audience = {"cities": [city.id], "viewers": [city.id]}
    now = datetime.now(UTC)
    for n in range(incidents):
        incident, _ = executor.run_sync(
            manager, declare_incident, IncidentCreate(incident_type="flood", title=f"bench {n}")
        )
        rows = [
            {
                "event_id": str(uuid.uuid4()),
                "incident_id": incident.id,
                "seq": seq,
                "type": "request.raised",
                "occurred_at": now,
                "actor_role": "manager",
                "actor_city_id": city.id,
                "data": {"n": seq},
                "audience": audience,
            }
            for seq in range(2, per_incident + 1)
        ]
        with engine.begin() as conn:
            conn.execute(insert(Event.__table__), rows)  # type: ignore[attr-defined]
            conn.execute(
                update(Incident.__table__)  # type: ignore[attr-defined]
                .where(Incident.__table__.c.id == incident.id)  # type: ignore[attr-defined]
                .values(last_seq=per_incident)
            )
    return executor.db


def _behind(db: Database) -> int:
    c, i = WebhookCursor.__table__, Incident.__table__  # type: ignore[attr-defined]
    with db.engine.begin() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(i.c.last_seq - c.c.seq), 0)).select_from(
                    c.join(i, i.c.id == c.c.incident_id)
                )
            ).scalar_one()
        )


def _receiver(port: int, seen: Any, repeats: Any = None) -> None:
    """The receiver, in a process of its own: it does not share the worker's core."""
    taken: set[bytes] | None = set() if repeats is not None else None

    async def serve() -> None:
        server = await asyncio.start_server(
            lambda r, w: _serve(r, w, seen, repeats, taken), "127.0.0.1", port
        )
        async with server:
            await server.serve_forever()

    # Stopped by the bench with SIGTERM, which its handler raises as KeyboardInterrupt.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


async def _measure(database_url: str, incidents: int, per_incident: int) -> dict[str, Any]:
    seen = multiprocessing.Value("q", 0)
    port = free_port()
    receiver = multiprocessing.Process(target=_receiver, args=(port, seen), daemon=True)
    receiver.start()
    db = await asyncio.to_thread(_seed, database_url, incidents, per_incident, port)
    total = incidents * per_incident
    settings = Settings(
        database_url=database_url,
        webhook_allow_http=True,
        webhook_allowed_private=["127.0.0.1/32"],
        webhook_poll_interval_s=0.05,
    )
    sender = Sender(
        address_policy(settings),
        timeout_s=settings.webhook_timeout_s,
        lanes=settings.webhook_concurrency + 1,
    )
    worker = WebhookWorker(db, sender, settings, lambda: datetime.now(UTC))
    started = time.perf_counter()
    await worker.start()
    try:
        while seen.value < total:  # noqa: ASYNC110 (a counter the receiver bumps)
            await asyncio.sleep(0.05)
        delivered_at = time.perf_counter()
        while await asyncio.to_thread(_behind, db):  # noqa: ASYNC110 (the database)
            await asyncio.sleep(0.05)
        recorded_at = time.perf_counter()
    finally:
        await worker.close()
        receiver.terminate()
        receiver.join(5)
        db.dispose()
    seconds = delivered_at - started
    return {
        "events": total,
        "incidents": incidents,
        "received": seen.value,
        "seconds": round(seconds, 2),
        "deliveries_per_s": round(total / seconds),
        "recorded_per_s": round(total / (recorded_at - started)),
        "concurrency": settings.webhook_concurrency,
    }


def run(database_url: str, *, incidents: int = 32, per_incident: int = 250) -> dict[str, Any]:
    log(f"webhooks: {incidents} x {per_incident} events to one endpoint on {database_url[:10]}")
    figures = asyncio.run(_measure(database_url, incidents, per_incident))
    log(f"webhooks: {figures}")
    return figures
