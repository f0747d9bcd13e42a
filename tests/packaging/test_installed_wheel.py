"""The built wheel, installed as a user installs it, serves aidmesh end to end.

The wheel is built from exactly what the Dockerfile copies, installed with the lock
file into a fresh venv outside the checkout, and run as an unprivileged user against
a scratch PostgreSQL database and Redis. Everything below talks to that install: a
file left out of the wheel (a subpackage, a migration, a playbook, a page's script)
fails here, where the checkout's own tests would still pass.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zipfile import ZipFile

import httpx
import psycopg
import pytest
import yaml
from alembic.script import ScriptDirectory
from websockets.sync.client import ClientConnection, connect

from service.persistence.db import alembic_config
from service.web.routes import STATIC_DIR
from service.web.routes import router as web_router
from tests.packaging.installed import (
    ROOT,
    Install,
    InstalledServer,
    dockerfile_sources,
    installed,
    run,
)
from tests.support import missing, postgres_url, scratch_database

pytestmark = pytest.mark.slow

API = "/api/v1"
OUR_PACKAGES = ("service", "realtime", "playbooks")
STOCK = ROOT / "playbooks" / "stock"


@pytest.fixture(scope="module")
def services() -> tuple[str, str]:
    """The backend and the Redis the installed server runs against."""
    if postgres_url() is None:
        missing("the installed-wheel test needs DATABASE_URL pointing at PostgreSQL")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        missing("the installed-wheel test needs REDIS_URL")
    assert redis_url is not None
    return "postgresql", redis_url


@pytest.fixture(scope="module")
def install() -> Iterator[Install]:
    with installed() as built:
        print(
            f"wheel {built.wheel.name}: built in {built.timings_s['build']:.1f} s, "
            f"venv ({built.python}) and install with the lock in "
            f"{built.timings_s['install']:.1f} s"
        )
        yield built


@pytest.fixture(scope="module")
def server(
    services: tuple[str, str], install: Install, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InstalledServer]:
    backend, redis_url = services
    with scratch_database(backend, tmp_path_factory.mktemp("wheel-db")) as database_url:
        started = InstalledServer(install, database_url=database_url, redis_url=redis_url)
        try:
            seconds = started.start()
            print(f"installed aidmesh serve answered /healthz {seconds:.1f} s after start")
            yield started
        finally:
            started.stop()


@pytest.fixture(scope="module")
def admin(server: InstalledServer) -> str:
    """An admin token from the installed `aidmesh admin bootstrap`."""
    lines = server.cli("admin", "bootstrap", "--label", "installed-wheel test").splitlines()
    assert lines, "aidmesh admin bootstrap printed no token"
    return lines[-1].strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the Dockerfile's sources ----------------------------------------------------


def test_dockerfile_sources_are_the_context_paths_of_copy_and_add_but_not_other_stages() -> None:
    text = (
        "FROM python:3.11-slim AS build\n"
        "# COPY commented-out ./nowhere\n"
        "COPY pyproject.toml README.md ./\n"
        "COPY --chown=1:1 service ./service\n"
        'COPY ["realtime", "./realtime"]\n'
        "ADD playbooks \\\n    ./playbooks\n"
        "FROM python:3.11-slim\n"
        "COPY --from=build /wheels /wheels\n"
        "COPY constraints.txt /wheels/constraints.txt\n"
    )
    assert dockerfile_sources(text) == [
        "pyproject.toml",
        "README.md",
        "service",
        "realtime",
        "playbooks",
        "constraints.txt",
    ]


def test_the_dockerfile_copies_the_packages_their_metadata_and_the_lock() -> None:
    sources = dockerfile_sources((ROOT / "Dockerfile").read_text())
    assert {"pyproject.toml", "README.md", *OUR_PACKAGES, "constraints.txt"} <= set(sources)


# -- the wheel -------------------------------------------------------------------


def test_wheel_holds_every_tracked_file_of_the_packages(install: Install) -> None:
    tracked = run(["git", "ls-files", "--", *OUR_PACKAGES], cwd=ROOT).split()
    assert len(tracked) > 50, tracked
    with ZipFile(install.wheel) as wheel:
        shipped = set(wheel.namelist())
    left_out = sorted(set(tracked) - shipped)
    assert left_out == [], f"missing from {install.wheel.name}: {left_out}"
    entry_points = next(n for n in shipped if n.endswith(".dist-info/entry_points.txt"))
    with ZipFile(install.wheel) as wheel:
        assert "aidmesh = service.cli:main" in wheel.read(entry_points).decode()


def test_installed_packages_import_from_the_venv_not_the_checkout(install: Install) -> None:
    script = (
        "import importlib, importlib.metadata, json, sys\n"
        f"files = {{n: importlib.import_module(n).__file__ for n in {OUR_PACKAGES!r}}}\n"
        "print(json.dumps({'files': files, 'path': sys.path,"
        " 'version': importlib.metadata.version('aidmesh')}))\n"
    )
    found = json.loads(install.run("python", "-c", script))
    venv = install.venv.resolve()
    for name, file in found["files"].items():
        where = Path(file).resolve()
        assert where.is_relative_to(venv), f"{name} imports from {where}, not the venv"
        assert not where.is_relative_to(ROOT), f"{name} imports from the checkout"
    assert not any(p and Path(p).resolve().is_relative_to(ROOT) for p in found["path"])
    assert found["version"] == "0.1.0"


def test_installed_cli_lists_and_checks_every_stock_playbook(install: Install) -> None:
    stock = sorted(p.stem for p in STOCK.glob("*.yaml"))
    assert len(stock) >= 8
    listed = install.run("aidmesh", "playbooks", "list").splitlines()
    assert sorted(line.split()[0] for line in listed) == stock
    checked = install.run("aidmesh", "playbooks", "check")
    assert f"{len(stock)} playbook(s) valid, 0 problem(s)" in checked


# -- the installed server --------------------------------------------------------


def test_installed_server_runs_unprivileged_and_migrates_the_empty_database(
    server: InstalledServer,
) -> None:
    if server.install.user.is_root:
        assert server.uid() == server.install.user.uid != 0
    with psycopg.connect(server.settings["DATABASE_URL"]) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert versions == [(head,)]
    assert {"incidents", "aid_requests", "claims", "events", "cities", "api_tokens"} <= tables


def test_installed_server_answers_health_readiness_and_docs(server: InstalledServer) -> None:
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "bus": "ok"}}
        docs = http.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        schema = http.get("/openapi.json")
        assert schema.status_code == 200
        assert f"{API}/incidents/{{incident_id}}/events" in schema.json()["paths"]


def test_installed_server_lists_the_stock_playbooks(server: InstalledServer, admin: str) -> None:
    stock = sorted(p.stem for p in STOCK.glob("*.yaml"))
    with server.client() as http:
        listed = http.get(f"{API}/playbooks", headers=bearer(admin))
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert [p["incident_type"] for p in body] == stock
        assert {p["origin"] for p in body} == {"stock"}
        assert all(p["request_count"] > 0 for p in body)
        flood = http.get(f"{API}/playbooks/flood", headers=bearer(admin)).json()
        expected = yaml.safe_load((STOCK / "flood.yaml").read_text())
        assert len(flood["playbook"]["requests"]) == len(expected["requests"])


class _Refs(HTMLParser):
    """Every `src` and `href` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs.extend(v for k, v in attrs if k in ("src", "href") and v)


# `import … from "./x.js"`, `import "./x.js"`, `import("./x.js")`, and CSS `url(…)`.
# An import's specifier is a path ("./dom.js"): a word "from" inside a string ("sitrep-from")
# is not an import.
_JS_IMPORT = re.compile(r"""(?<![\w-])(?:from|import)\s*\(?\s*["'](\.{0,2}/[^"']+)["']""")
# Data a module fetches by a literal address (the map's geography).
_JS_FETCH = re.compile(r'fetch\("(/static/[^"]+)"\)')
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


def references(response: httpx.Response) -> list[str]:
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/html"):
        parser = _Refs()
        parser.feed(response.text)
        return parser.refs
    if kind.startswith("text/javascript"):
        return _JS_IMPORT.findall(response.text) + _JS_FETCH.findall(response.text)
    if kind.startswith("text/css"):
        return [u for u in _CSS_URL.findall(response.text) if not u.startswith("data:")]
    return []


def page_paths() -> list[str]:
    """The pages service/web/routes.py serves (its GET routes; a page of one object, such
    as an incident's report, at id 1: the shell is the same for every id), not assets."""
    paths = [
        re.sub(r"\{[a-z_]+\}", "1", route.path)  # type: ignore[attr-defined]
        for route in web_router.routes
        if "GET" in getattr(route, "methods", ())
        and not getattr(route, "path", "/static/").startswith("/static/")
    ]
    assert "/" in paths and len(paths) >= 4, paths
    return paths


def test_installed_server_serves_every_page_and_everything_they_reference(
    server: InstalledServer,
) -> None:
    pages = page_paths()
    seen: dict[str, int] = {}
    queue = [server.url + p for p in pages]
    with server.client() as http:
        while queue:
            url = queue.pop()
            if url in seen:
                continue
            response = http.get(url)
            seen[url] = response.status_code
            assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
            path = urlsplit(url).path
            if path in pages or path.startswith("/static/"):
                for ref in references(response):
                    target = urljoin(url, ref).split("#")[0]
                    if urlsplit(target).netloc == urlsplit(server.url).netloc:
                        queue.append(target)
            if path.startswith("/static/"):
                # The installed copy is the checkout's, byte for byte.
                assert response.content == (STATIC_DIR / path.removeprefix("/static/")).read_bytes()
    assets = {urlsplit(u).path.removeprefix("/static/") for u in seen if "/static/" in u}
    on_disk = {p.name for p in STATIC_DIR.iterdir() if p.suffix != ".html"}
    assert assets == on_disk, f"referenced {sorted(assets)}, shipped {sorted(on_disk)}"
    print(f"{len(pages)} pages, {len(assets)} assets and {len(seen)} URLs in all answered 200")


def _next_event(ws: ClientConnection, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message.get("type") == "event" and message["event"]["type"] == kind:
            event: dict[str, Any] = message["event"]
            return event
        assert message.get("type") in ("event", "heartbeat"), message


def test_installed_server_carries_a_claim_from_a_stock_playbook_to_its_event(
    server: InstalledServer, admin: str
) -> None:
    flood = yaml.safe_load((STOCK / "flood.yaml").read_text())
    with server.client() as http:

        def post(path: str, token: str, body: dict[str, Any], **headers: str) -> Any:
            r = http.post(f"{API}{path}", json=body, headers={**bearer(token), **headers})
            assert r.status_code == 201, f"POST {path}: {r.status_code} {r.text}"
            return r.json()

        def get(path: str, token: str) -> Any:
            r = http.get(f"{API}{path}", headers=bearer(token))
            assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
            return r.json()

        assert get("/me", admin)["role"] == "admin"
        post("/networks", admin, {"slug": "kenya", "name": "Kenya mutual-aid compact"})
        nairobi = post(
            "/cities",
            admin,
            {
                "slug": "nairobi",
                "name": "Nairobi",
                "country": "KE",
                "lat": -1.2864,
                "lon": 36.8172,
                "networks": ["kenya"],
            },
        )
        thika = post(
            "/cities",
            admin,
            {
                "slug": "thika",
                "name": "Thika",
                "country": "KE",
                "lat": -1.0333,
                "lon": 37.0693,
                "networks": ["kenya"],
            },
        )
        manager = post("/tokens", admin, {"role": "manager", "city_id": nairobi["id"]})["token"]
        responder = post("/tokens", admin, {"role": "responder", "city_id": thika["id"]})["token"]

        incident = post(
            "/incidents",
            manager,
            {"incident_type": "flood", "title": "Nairobi River flood", "playbook": "flood"},
        )
        assert incident["playbook"] == "flood"
        assert len(incident["requests"]) == len(flood["requests"])
        inbox = get("/requests", responder)["data"]
        pumps = next(r for r in inbox if r["resource"] == "high-capacity-pump")
        assert pumps["incident_id"] == incident["id"]

        with connect(server.ws_url, proxy=None, compression=None, open_timeout=10) as ws:
            ws.send(json.dumps({"op": "auth", "token": manager}))
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
            ws.send(json.dumps({"op": "subscribe", "scopes": [f"incident:{incident['id']}"]}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            began = time.monotonic()
            claim = post(
                f"/requests/{pumps['id']}/claims",
                responder,
                {"quantity": 2},
                **{"Idempotency-Key": f"wheel-{uuid.uuid4().hex}"},
            )
            live = _next_event(ws, "claim.made")
            latency_ms = (time.monotonic() - began) * 1000
        assert claim["city_id"] == thika["id"] and claim["status"] == "claimed"
        assert live["data"]["claim"]["id"] == claim["id"]

        claims = get(f"/requests/{pumps['id']}/claims", manager)["data"]
        assert [c["id"] for c in claims] == [claim["id"]]
        after = get(f"/requests/{pumps['id']}", manager)
        assert after["claimed_quantity"] == 2 and after["status"] == "partially_claimed"
        events = get(f"/incidents/{incident['id']}/events?after=0", manager)["data"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert [e["type"] for e in events] == [
            "incident.declared",
            *["request.raised"] * len(flood["requests"]),
            "claim.made",
        ]
        assert events[-1]["data"]["claim"]["id"] == claim["id"]
    print(f"claim.made reached the manager's websocket {latency_ms:.0f} ms after the POST")
