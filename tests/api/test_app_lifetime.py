"""An app that has served and stopped is freed: nothing global holds it.

FastAPI keeps the callables of routes and dependencies in module-level caches (4,096
entries each). A route or dependency built per app as a closure over that app would pin
every app ever built in a process: a replica rebuilt in-process, or a test suite, whose
full garbage collections then grow to seconds.
"""

from __future__ import annotations

import gc
import json
import weakref

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.support import FakeClock, World


def test_an_app_that_served_every_kind_of_route_is_freed_once_dropped(
    settings: Settings, world: World, clock: FakeClock
) -> None:
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/board", "/manage"):
            assert client.get(path).status_code == 200, path
        r = client.get("/api/v1/incidents", headers=world.headers("manager", "nairobi"))
        assert r.status_code == 200, r.text
        assert client.get("/api/v1/me").status_code == 401
        with client.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps({"op": "auth", "token": world.token("responder", "thika")}))
            assert ws.receive_json()["type"] == "welcome"
    freed = weakref.ref(app)
    del app, client, r, ws
    gc.collect()
    assert freed() is None, [type(o).__name__ for o in gc.get_referrers(freed())]
