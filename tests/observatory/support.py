"""A scripted run for the observatory's tests, through the API, with clocks known exactly.

The kenya network publishes under CC-BY-4.0, seven days after an incident closes.
Nairobi, Thika and Mombasa opted in; Machakos did not. Every incident is declared at a
point all three Kenyan neighbours reach at ring 0.

- `published`: Nairobi's flood, closed two hours after it began. Its pumps request (4)
  got 2 from Thika after 10 minutes and 1 from Machakos after 15, all on site; its
  analyst request (1) got 1 from Thika after 20 minutes, on site (fulfilled) after 50.
- `exercise`: Nairobi's drill, closed: never published.
- `opted_out`: Machakos' own incident, closed, with Thika's help: never published.
- `active`: Nairobi's incident still open: never published.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.support import FakeClock, World

API = "/api/v1"
CANARY = "zq-canary-7f3a"
LICENCE = "CC-BY-4.0"
DELAY_DAYS = 7
NEAR_ALL = {"lat": -1.30, "lon": 37.10}
_keys = itertools.count()


@dataclass
class Scripted:
    network_id: int
    published: int
    exercise: int
    opted_out: int
    active: int
    started_at: datetime
    closed_at: datetime  # when `published` closed


class Script:
    def __init__(self, client: TestClient, world: World, clock: FakeClock) -> None:
        self.client = client
        self.world = world
        self.clock = clock

    def call(self, method: str, path: str, who: tuple[str, str | None], **kw: Any) -> Any:
        r = self.client.request(method, API + path, headers=self.world.headers(*who), **kw)
        assert 200 <= r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    def settings(self, network: str = "kenya", delay_days: int = DELAY_DAYS) -> None:
        self.call(
            "PUT",
            f"/networks/{self.world.network_ids[network]}/observatory",
            ("admin", None),
            json={"licence": LICENCE, "publication_delay_days": delay_days},
        )

    def opt_in(self, city: str, opted_in: bool = True) -> None:
        self.call(
            "PUT",
            f"/cities/{self.world.city_ids[city]}/observatory",
            ("manager", city),
            json={"opted_in": opted_in},
        )

    def declare(self, city: str, *, exercise: bool = False, text: str = "") -> int:
        body = {
            "incident_type": "flood",
            "title": f"Flood {text}",
            "description": f"Flooded homes {text}",
            "exercise": exercise,
            "severity": "extreme",
            **NEAR_ALL,
        }
        return int(self.call("POST", "/incidents", ("manager", city), json=body)["id"])

    def request(self, city: str, incident_id: int, resource: str, quantity: int, text: str) -> int:
        body = {
            "resource": resource,
            "quantity": quantity,
            "notes": f"Notes {text}",
            "report_to": f"Gate 4 {text}",
        }
        found = self.call(
            "POST", f"/incidents/{incident_id}/requests", ("manager", city), json=body
        )
        return int(found["id"])

    def claim(self, city: str, request_id: int, quantity: int, text: str = "") -> int:
        r = self.client.post(
            f"{API}/requests/{request_id}/claims",
            json={"quantity": quantity, "note": f"Note {text}"},
            headers={
                **self.world.headers("responder", city),
                "Idempotency-Key": f"obs-{next(_keys)}",
            },
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def move(self, claim_id: int, who: tuple[str, str | None], status: str) -> None:
        self.call("POST", f"/claims/{claim_id}/status", who, json={"status": status})

    def deliver(self, claim_id: int, requester: str, helper: str) -> None:
        self.move(claim_id, ("manager", requester), "accepted")
        self.move(claim_id, ("responder", helper), "en_route")
        self.move(claim_id, ("responder", helper), "on_site")

    def close(self, city: str, incident_id: int) -> None:
        self.call("POST", f"/incidents/{incident_id}/close", ("manager", city))

    def later(self, minutes: float) -> None:
        self.clock.advance(timedelta(minutes=minutes))


def scripted_run(client: TestClient, world: World, clock: FakeClock, text: str = "") -> Scripted:
    s = Script(client, world, clock)
    s.settings()
    for city in ("nairobi", "thika", "mombasa"):
        s.opt_in(city)
    started_at = clock.now
    published = s.declare("nairobi", text=text)
    pumps = s.request("nairobi", published, "high-capacity-pump", 4, text)
    analyst = s.request("nairobi", published, "gis-analyst", 1, text)
    s.later(10)
    thika_pumps = s.claim("thika", pumps, 2, text)
    s.later(5)
    machakos_pumps = s.claim("machakos", pumps, 1, text)
    s.later(5)
    thika_analyst = s.claim("thika", analyst, 1, text)
    s.deliver(thika_pumps, "nairobi", "thika")
    s.deliver(machakos_pumps, "nairobi", "machakos")
    s.later(30)
    s.deliver(thika_analyst, "nairobi", "thika")

    exercise = s.declare("nairobi", exercise=True, text=text)
    drill = s.request("nairobi", exercise, "high-capacity-pump", 2, text)
    s.claim("thika", drill, 1, text)
    opted_out = s.declare("machakos", text=text)
    theirs = s.request("machakos", opted_out, "high-capacity-pump", 3, text)
    s.claim("thika", theirs, 2, text)
    active = s.declare("nairobi", text=text)
    s.request("nairobi", active, "high-capacity-pump", 1, text)

    clock.now = started_at + timedelta(hours=2)
    for city, incident_id in (
        ("nairobi", published),
        ("nairobi", exercise),
        ("machakos", opted_out),
    ):
        s.close(city, incident_id)
    return Scripted(
        network_id=world.network_ids["kenya"],
        published=published,
        exercise=exercise,
        opted_out=opted_out,
        active=active,
        started_at=started_at,
        closed_at=clock.now,
    )
