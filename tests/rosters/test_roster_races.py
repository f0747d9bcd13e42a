"""C7: claims from one roster package across incidents never exceed its units or its cap
(RELIABILITY.md C7), in one process on every backend and on two replicas over PostgreSQL.

Each trial is one claim attempt from Thika's package, made at the same time as many
others against requests of two incidents, while the package's manager edits its units
and cap and earlier claims are withdrawn. After every burst, for every resource of the
package: `committed_quantity <= cap_quantity <= quantity`, and `committed_quantity`
equals the units of the claims from the package that still hold them (so no commit
and no give-back was lost). Every attempt ends as a claim or a 409 refusal.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from service.commands.aid_requests import raise_request
from service.commands.claims import change_claim_status, claim_request
from service.commands.incidents import declare_incident
from service.commands.rosters import create_package, update_package
from service.domain.actors import Actor, Role
from service.domain.errors import Conflict
from service.domain.rosters import HOLDING_CLAIM_STATUSES
from service.executor import Executor
from service.models import (
    AidRequestCreate,
    ClaimCreate,
    ClaimStatusChange,
    IncidentCreate,
    PackageCreate,
    PackageItemIn,
    PackageUpdate,
)
from service.persistence.tables import Claim, PackageItem
from tests.replicas import Cluster, cluster_fixture, http_step
from tests.support import World

PUMP = "high-capacity-pump"
TRIALS = 1_000
BURST = 40  # attempts released together
WAIT_S = 30.0  # bound on any wait for another thread; far above what a healthy run needs


@dataclass(frozen=True)
class Problem:
    burst: int
    what: str


def package_problems(executor: Executor, package_id: int) -> list[str]:
    """Everything wrong with the package's committed units, read straight from the rows."""
    with executor.db.read() as session:
        items = session.exec(
            select(PackageItem).where(col(PackageItem.package_id) == package_id)
        ).all()
        claims = session.exec(select(Claim).where(col(Claim.package_id) == package_id)).all()
    holding = sum(c.quantity for c in claims if c.status in HOLDING_CLAIM_STATUSES)
    problems = []
    for item in items:
        if not 0 <= item.committed_quantity <= item.cap_quantity <= item.quantity:
            problems.append(
                f"over-commit: {item.committed_quantity} committed, cap {item.cap_quantity},"
                f" units {item.quantity}"
            )
    pumps = [i for i in items if i.resource == PUMP]
    if len(pumps) != 1 or pumps[0].committed_quantity != holding:
        problems.append(f"committed {[i.committed_quantity for i in pumps]} != {holding} held")
    return problems


# -- one process, every backend ------------------------------------------------------------


@dataclass
class Scene:
    executor: Executor
    manager: Actor  # Thika's: keeps the roster
    responder: Actor  # Thika's: claims from it
    package_id: int
    request_ids: list[int]  # one pump request in each of two incidents


@pytest.fixture
def scene(executor: Executor, world: World) -> Scene:
    nairobi = Actor(role=Role.MANAGER, city_id=world.city_ids["nairobi"], token_id=None)
    thika = world.city_ids["thika"]
    manager = Actor(role=Role.MANAGER, city_id=thika, token_id=None)
    body = PackageCreate(
        name="Pump strike team",
        items=[PackageItemIn(resource=PUMP, quantity=12)],
        readiness_hours=4,
        self_sufficiency_days=3,
        cap_percent=75,
    )
    package, _ = executor.run_sync(manager, create_package, thika, body)
    request_ids = []
    for title in ("Nairobi River flood", "Mathare landslide"):
        incident, _ = executor.run_sync(
            nairobi, declare_incident, IncidentCreate(incident_type="flood", title=title)
        )
        request, _ = executor.run_sync(
            nairobi, raise_request, incident.id, AidRequestCreate(resource=PUMP, quantity=10_000)
        )
        request_ids.append(int(request.id))
    responder = Actor(role=Role.RESPONDER, city_id=thika, token_id=None)
    return Scene(executor, manager, responder, package.id, request_ids)


def _act(scene: Scene, start: threading.Barrier, step: tuple[str, int, int]) -> str:
    """One action of a burst: a claim from the package, a withdrawal or a roster edit.
    Returns "ok", "refused" (a 409) or the error."""
    kind, a, b = step
    run = scene.executor.run_sync
    try:
        start.wait(timeout=WAIT_S)
        if kind == "claim":
            body = ClaimCreate(quantity=b, package_id=scene.package_id)
            run(scene.responder, claim_request, a, body, uuid.uuid4().hex)
        elif kind == "withdraw":
            run(scene.responder, change_claim_status, a, ClaimStatusChange(status="withdrawn"))
        else:
            edit = PackageUpdate(items=[PackageItemIn(resource=PUMP, quantity=a)], cap_percent=b)
            thika = scene.manager.city_id
            run(scene.manager, update_package, thika, scene.package_id, edit)
    except Conflict:
        return "refused"
    except Exception as exc:  # every other error is a failure the test reports
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _holding(executor: Executor, package_id: int) -> list[int]:
    with executor.db.read() as session:
        rows = session.exec(
            select(Claim.id).where(
                col(Claim.package_id) == package_id,
                col(Claim.status).in_(sorted(s.value for s in HOLDING_CLAIM_STATUSES)),
            )
        ).all()
    return [int(i) for i in rows if i is not None]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=BURST + 8, thread_name_prefix="roster") as threads:
        yield threads


@pytest.mark.slow
def test_claims_from_one_package_across_incidents_never_over_commit_it(
    scene: Scene, pool: ThreadPoolExecutor, backend: str
) -> None:
    rng = random.Random(7)
    problems: list[Problem] = []
    claims_tried = made = refused = 0
    for burst in range(TRIALS // BURST):
        holding = _holding(scene.executor, scene.package_id)
        steps = [("claim", rng.choice(scene.request_ids), rng.randint(1, 3)) for _ in range(BURST)]
        steps += [("withdraw", c, 0) for c in rng.sample(holding, min(len(holding), 4))]
        steps += [("edit", rng.randint(8, 16), rng.randint(40, 100)) for _ in range(2)]
        start = threading.Barrier(len(steps))
        futures = [pool.submit(_act, scene, start, step) for step in steps]
        outcomes = [f.result(timeout=WAIT_S * 2) for f in futures]
        for step, outcome in zip(steps, outcomes, strict=True):
            if step[0] == "claim":
                claims_tried += 1
                made += outcome == "ok"
                refused += outcome == "refused"
            if outcome not in ("ok", "refused"):
                problems.append(Problem(burst, f"{step}: {outcome}"))
        problems += [Problem(burst, p) for p in package_problems(scene.executor, scene.package_id)]
    print(
        f"C7 {backend}: {claims_tried} claims from one package across 2 incidents, "
        f"{made} made, {refused} refused, problems (over-commits among them) {len(problems)}"
    )
    assert problems == []
    assert claims_tried == TRIALS
    assert made > 0 and refused > 0  # the package's limits were reached, and bit


# -- two replicas over PostgreSQL --------------------------------------------------------

cluster = cluster_fixture(replicas=2)


@pytest.mark.slow
@pytest.mark.postgres
def test_claims_from_one_package_on_two_replicas_never_over_commit_it(
    cluster: Cluster, tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    thika = cluster.city["thika"]
    manager = cluster.headers("manager", "thika")
    nairobi = cluster.headers("manager", "nairobi")
    responder = cluster.headers("responder", "thika")
    first, second = cluster.replicas[0].url, cluster.replicas[1].url
    with httpx.Client(timeout=WAIT_S) as http:
        r = http.post(
            f"{first}/api/v1/cities/{thika}/roster",
            json={
                "name": "Pump strike team",
                "items": [{"resource": PUMP, "quantity": 12}],
                "readiness_hours": 4,
                "self_sufficiency_days": 3,
                "cap_percent": 75,
            },
            headers=manager,
        )
        assert r.status_code == 201, r.text
        package_id = r.json()["id"]
        request_ids = []
        for title in ("Nairobi River flood", "Mathare landslide"):
            r = http.post(
                f"{first}/api/v1/incidents",
                json={"incident_type": "flood", "title": title},
                headers=nairobi,
            )
            assert r.status_code == 201, r.text
            r = http.post(
                f"{second}/api/v1/incidents/{r.json()['id']}/requests",
                json={"resource": PUMP, "quantity": 10_000},
                headers=nairobi,
            )
            assert r.status_code == 201, r.text
            request_ids.append(r.json()["id"])

    rng = random.Random(11)
    problems: list[Problem] = []
    made = refused = 0
    edit_path = f"/api/v1/cities/{thika}/roster/{package_id}"
    with (
        httpx.Client(timeout=WAIT_S, headers=responder) as claimer,
        httpx.Client(timeout=WAIT_S, headers=manager) as editor,
    ):
        for burst in range(TRIALS // BURST):
            holding = _holding(cluster.executor, package_id)
            steps: list[tuple[httpx.Client, str, tuple[str, str, object]]] = []
            for n in range(BURST):
                body = {"quantity": rng.randint(1, 3), "package_id": package_id}
                path = f"/api/v1/requests/{rng.choice(request_ids)}/claims"
                steps.append((claimer, (first, second)[n % 2], ("POST", path, body)))
            for claim_id in rng.sample(holding, min(len(holding), 4)):
                change = ("POST", f"/api/v1/claims/{claim_id}/status", {"status": "withdrawn"})
                steps.append((claimer, rng.choice((first, second)), change))
            for _ in range(2):
                edit = {
                    "items": [{"resource": PUMP, "quantity": rng.randint(8, 16)}],
                    "cap_percent": rng.randint(40, 100),
                }
                steps.append((editor, rng.choice((first, second)), ("PATCH", edit_path, edit)))
            start = threading.Barrier(len(steps))
            futures = [pool.submit(http_step, c, start, url, step) for c, url, step in steps]
            outcomes = [f.result(timeout=WAIT_S * 2) for f in futures]
            for (_, _, step), outcome in zip(steps, outcomes, strict=True):
                if step[1].endswith("/claims"):
                    made += outcome == "ok"
                    refused += outcome == "refused"
                if outcome not in ("ok", "refused"):
                    problems.append(Problem(burst, f"{step}: {outcome}"))
            problems += [Problem(burst, p) for p in package_problems(cluster.executor, package_id)]
    print(
        f"C7 two replicas: {made + refused} claims from one package across 2 incidents, "
        f"{made} made, {refused} refused, problems {len(problems)}"
    )
    assert problems == [], cluster.logs()
    assert made + refused == TRIALS
    assert made > 0 and refused > 0
