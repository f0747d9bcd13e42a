"""Twenty endpoints of one city taking the same events: the worker batches their lease
renewals, reads and outcome writes (service/webhooks/worker.py, `_Batched`), and that
must change nothing an endpoint sees. Each endpoint gets every event exactly once, in seq
order per incident, with no failed attempt and no error logged (a deadlock between two
batched writes once showed up as duplicate deliveries and errors)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.main import create_app
from service.persistence.tables import WebhookAttempt
from service.settings import Settings
from tests.support import World
from tests.webhooks.conftest import declare, register
from tests.webhooks.receiver import Receiver

ENDPOINTS = 20  # a city's most
INCIDENTS = 5
REQUESTS = 6


@pytest.fixture
def patient_client(hook_settings: Settings, world: World) -> Iterator[TestClient]:
    """A worker that waits long for answers: on a loaded machine the receiver may be slow
    to accept, and a timed-out send is retried (at least once), which is not what this
    test looks for."""
    settings = hook_settings.model_copy(update={"webhook_timeout_s": 15.0})
    with TestClient(create_app(settings)) as client:
        yield client


def test_many_endpoints_each_get_every_event_once_and_in_order(
    patient_client: TestClient,
    world: World,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="service.webhooks")
    paths = [f"/many/{n}" for n in range(ENDPOINTS)]
    for path in paths:
        register(patient_client, world, receiver.url(path))
    for n in range(INCIDENTS):
        declare(patient_client, world, f"flood {n}", requests=REQUESTS)
    expected = INCIDENTS * (1 + REQUESTS)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(len({r.event_id for r in receiver.at(p)}) >= expected for p in paths):
            break
        time.sleep(0.1)
    time.sleep(1.0)  # room for anything sent twice to arrive

    for path in paths:
        got = [r for r in receiver.at(path) if r.event.get("incident_id") is not None]
        ids = Counter(r.event_id for r in got)
        assert len(ids) == expected, (path, len(ids))
        assert max(ids.values()) == 1, (path, [i for i, n in ids.items() if n > 1])
        last: dict[int, int] = {}
        for r in got:
            incident_id, seq = r.event["incident_id"], r.event["seq"]
            assert seq > last.get(incident_id, 0), (path, incident_id, seq)
            last[incident_id] = seq

    attempts = WebhookAttempt.__table__  # type: ignore[attr-defined]
    with world.executor.db.engine.begin() as conn:
        outcomes = dict(
            conn.execute(
                select(attempts.c.outcome, func.count()).group_by(attempts.c.outcome)
            ).all()
        )
        failed = conn.execute(
            select(attempts.c.source, attempts.c.status_code, attempts.c.error).where(
                attempts.c.outcome != "delivered"
            )
        ).all()
    assert outcomes == {"delivered": ENDPOINTS * expected}, (outcomes, failed)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not errors, [r.getMessage() for r in errors]
