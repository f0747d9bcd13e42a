"""`aidmesh demo`: the service with a seeded network of real cities, a flood in Nairobi,
and simulated responders, so a newcomer sees the product move.

Everything runs in this process. The service runs the embedded default (a fresh SQLite
file and the embedded Redis under `./var/demo/`, or `$AIDMESH_DATA_DIR/demo`); a driver
thread talks to it over the HTTP API only, like any other client: it registers the
networks, cities and tokens, declares the flood from Nairobi's playbook, then plays the
responding cities and Nairobi's duty officer for `minutes`. The service keeps running until Ctrl-C.
"""

from __future__ import annotations

import fcntl
import logging
import random
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from playbooks import load_catalogue, load_stock_playbooks
from realtime.bus import InMemoryBus
from service.commands.admin import mint_token
from service.domain.actors import SYSTEM, Role
from service.executor import Executor
from service.logs import configure_logging
from service.main import create_app
from service.persistence.db import Database, build_engine, migrate
from service.serving import CannotListen, Server, base_url, bind, server_config
from service.settings import Settings

log = logging.getLogger(__name__)

NETWORKS = {
    "kenya": "Kenya mutual-aid compact",
    "germany": "German cities' civil protection network",
    "south-africa": "South African metros' disaster management forum",
    "alliance": "Nairobi 2024 partnership (a network of the three networks)",
}

# slug: (name, country, lat, lon, networks). The partnership holds the cities that met
# in Nairobi in February 2024; their neighbours join through the regional networks only.
CITIES: dict[str, tuple[str, str, float, float, list[str]]] = {
    "nairobi": ("Nairobi", "KE", -1.2864, 36.8172, ["kenya", "alliance"]),
    "thika": ("Thika", "KE", -1.0333, 37.0693, ["kenya"]),
    "machakos": ("Machakos", "KE", -1.5177, 37.2634, ["kenya"]),
    "kisumu": ("Kisumu", "KE", -0.0917, 34.7680, ["kenya", "alliance"]),
    "mombasa": ("Mombasa", "KE", -4.0435, 39.6682, ["kenya", "alliance"]),
    "wote": ("Wote", "KE", -1.7833, 37.6333, ["kenya", "alliance"]),
    "munich": ("Munich", "DE", 48.1351, 11.5820, ["germany", "alliance"]),
    "augsburg": ("Augsburg", "DE", 48.3705, 10.8978, ["germany"]),
    "berlin": ("Berlin", "DE", 52.5200, 13.4050, ["germany", "alliance"]),
    "pforzheim": ("Pforzheim (Enzkreis)", "DE", 48.8922, 8.6946, ["germany", "alliance"]),
    "karlsruhe": ("Karlsruhe", "DE", 49.0069, 8.4037, ["germany"]),
    "stuttgart": ("Stuttgart", "DE", 48.7758, 9.1829, ["germany"]),
    "cape-town": ("Cape Town", "ZA", -33.9249, 18.4241, ["south-africa", "alliance"]),
    "johannesburg": ("Johannesburg", "ZA", -26.2041, 28.0473, ["south-africa", "alliance"]),
    "ekurhuleni": ("Ekurhuleni", "ZA", -26.1700, 28.3200, ["south-africa", "alliance"]),
    "tshwane": ("Tshwane", "ZA", -25.7479, 28.2293, ["south-africa"]),
}

# Each demo country has one time zone.
ZONES = {"KE": "Africa/Nairobi", "DE": "Europe/Berlin", "ZA": "Africa/Johannesburg"}

# What each simulated city offers: resource → most units it claims of one request.
ROSTERS: dict[str, dict[str, int]] = {
    "machakos": {"sandbags": 15, "cots": 150, "shelter-manager": 1, "swift-water-rescue-team": 1},
    "kisumu": {"hydrological-forecast": 1, "swift-water-rescue-team": 1, "high-capacity-pump": 1},
    "mombasa": {"high-capacity-pump": 2, "potable-water-truck": 2, "sandbags": 10},
    "wote": {"cots": 100, "shelter-manager": 1},
    "munich": {"gis-analyst": 1, "damage-assessor": 2},
    "berlin": {"gis-analyst": 1, "potable-water-truck": 1},
    "pforzheim": {"high-capacity-pump": 1, "damage-assessor": 1},
    "cape-town": {"damage-assessor": 2, "shelter-manager": 1},
    "johannesburg": {"cots": 150, "potable-water-truck": 1},
    "ekurhuleni": {"sandbags": 10},
    "stuttgart": {"damage-assessor": 1},
    "tshwane": {"cots": 100},
}
USER_CITY = "thika"  # left to the person trying the demo: its responder token is printed
REQUESTING_CITY = "nairobi"
FORECAST_ANSWER = (
    "Nairobi River at Museum Hill: 2.9 m and rising 10 cm/h; peak expected in about 18 h. "
    "Ngong and Mathare tributaries above flood stage. Rain eases after 36 h."
)


@dataclass
class _Claim:
    claim_id: int
    city: str
    kind: str
    status: str = "claimed"
    next_step_at: float = 0.0


@dataclass
class _World:
    base_url: str
    admin: str
    city_ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    incident_id: int = 0


def run_demo(host: str, port: int, minutes: float, *, verbose: bool = False) -> int:
    """Serve the demo on `host:port` until Ctrl-C, simulating for `minutes`; the exit code.

    The port is bound and the demo directory locked before anything is deleted or
    written: a demo already running (on this port or from this directory) is left
    alone, and the driver talks only to the server this process started.
    """
    minutes = max(0.1, minutes)
    base = Settings()
    configure_logging(base, level="debug" if verbose else "warning")
    try:
        sock = bind(host, port)
    except CannotListen as exc:
        print(f"aidmesh demo: {exc}", file=sys.stderr)
        return 1
    data_dir = (base.data_dir / "demo").resolve()
    with sock, _DemoLock(data_dir.with_name("demo.lock")) as locked:
        if not locked:
            print(
                f"aidmesh demo: another demo is running from {data_dir}: stop it first",
                file=sys.stderr,
            )
            return 1
        port = sock.getsockname()[1]
        return _serve_demo(sock, _fresh_settings(data_dir, host, port), minutes)


def _fresh_settings(data_dir: Path, host: str, port: int) -> Settings:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    return Settings(
        database_url=f"sqlite:///{data_dir / 'aidmesh-demo.db'}",
        redis_url=None,
        embedded_redis=True,
        data_dir=data_dir,
        host=host,
        port=port,
        sweep_interval_s=2.0,
    )


def _serve_demo(sock: socket.socket, settings: Settings, minutes: float) -> int:
    admin = _bootstrap_admin(settings)
    url = base_url(settings.host, settings.port)
    config = server_config(create_app(settings), settings, timeout_graceful_shutdown=3)
    server = Server(config, f"aidmesh demo ready on {url}")
    stop = threading.Event()
    outcome: list[int] = []
    driver = threading.Thread(
        target=_drive,
        args=(_World(url, admin), minutes, stop, server, outcome),
        name="aidmesh-demo-driver",
        daemon=True,
    )
    print(f"aidmesh demo: starting on {url} (data in {settings.data_dir}) …", flush=True)
    driver.start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a demo ends; the driver is stopped below
    finally:
        stop.set()
        driver.join(timeout=10)
    if not server.started:
        outcome.append(3)
    print("aidmesh demo: stopped.", flush=True)
    return outcome[0] if outcome else 0


class _DemoLock:
    """An exclusive lock on a file beside the demo directory, held while the demo runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __enter__(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *_: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock


def _bootstrap_admin(settings: Settings) -> str:
    engine = build_engine(settings)
    try:
        migrate(engine)
        catalogue = load_catalogue()
        stock = load_stock_playbooks(catalogue)
        executor = Executor(Database(engine), InMemoryBus(), settings, catalogue, lambda: stock)
        (_token, secret), _ = executor.run_sync(SYSTEM, mint_token, Role.ADMIN, None, "demo")
        return secret
    finally:
        engine.dispose()


def _drive(
    world: _World, minutes: float, stop: threading.Event, server: Server, outcome: list[int]
) -> None:
    try:
        with httpx.Client(base_url=world.base_url + "/api/v1", timeout=15.0) as http:
            if not _wait_started(server, stop):
                return
            if _call(http, "GET", "/me", world.admin).status_code != 200:
                # Not this process's server: seed nothing.
                print(f"aidmesh demo: {world.base_url} is not this demo's server", flush=True)
                outcome.append(1)
                server.should_exit = True
                return
            _seed(http, world, minutes)
            _print_welcome(world, minutes)
            _simulate(http, world, minutes, stop)
            if not stop.is_set():
                print(
                    "aidmesh demo: the simulation is over; the service keeps running. "
                    "Ctrl-C stops it.",
                    flush=True,
                )
    except Exception:
        if stop.is_set():
            return  # the server is going away under us: not an error
        log.exception("the demo driver failed")
        outcome.append(1)
        server.should_exit = True


def _wait_started(server: Server, stop: threading.Event, timeout_s: float = 60.0) -> bool:
    """Wait until this process's server has started (it listens on the bound socket)."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        if server.started:
            return True
        stop.wait(0.1)
    return False


def _call(http: httpx.Client, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return http.request(method, path, headers=headers, **kwargs)


def _seed(http: httpx.Client, world: _World, minutes: float) -> None:
    """Networks, cities, tokens, Nairobi's own flood playbook, and the flood itself."""
    for slug, name in NETWORKS.items():
        _call(http, "POST", "/networks", world.admin, json={"slug": slug, "name": name})
    for slug, (name, country, lat, lon, networks) in CITIES.items():
        body = {
            "slug": slug,
            "name": name,
            "country": country,
            "lat": lat,
            "lon": lon,
            "time_zone": ZONES[country],
            "networks": networks,
        }
        response = _call(http, "POST", "/cities", world.admin, json=body)
        response.raise_for_status()
        world.city_ids[slug] = response.json()["id"]
    wanted = [("manager", REQUESTING_CITY), ("observer", REQUESTING_CITY), ("responder", USER_CITY)]
    wanted += [("responder", slug) for slug in ROSTERS]
    for role, slug in wanted:
        body = {"role": role, "city_id": world.city_ids[slug], "label": f"demo {role}"}
        response = _call(http, "POST", "/tokens", world.admin, json=body)
        response.raise_for_status()
        world.tokens[f"{role}:{slug}"] = response.json()["token"]

    nairobi = world.city_ids[REQUESTING_CITY]
    playbook = _demo_playbook(minutes)
    _call(
        http, "PUT", f"/cities/{nairobi}/playbooks/flood", world.admin, json={"source": playbook}
    ).raise_for_status()
    declared = _call(
        http,
        "POST",
        "/incidents",
        world.tokens[f"manager:{REQUESTING_CITY}"],
        json={
            "incident_type": "flood",
            "playbook": "flood",
            "title": "Nairobi River flood",
            "severity": "severe",
            "description": (
                "Nairobi River and Ngong River over their banks after 36 hours of rain; "
                "Kibera, Mukuru and the Kirinyaga Road area flooded."
            ),
            "exercise": True,
        },
    )
    declared.raise_for_status()
    world.incident_id = declared.json()["id"]


def _demo_playbook(minutes: float) -> str:
    """The stock flood playbook with rings that widen within the demo's minutes."""
    stock = load_stock_playbooks(load_catalogue())["flood"].model_dump(mode="json")
    seconds = minutes * 60
    first = max(20, int(seconds * 0.2))
    second = max(20, int(seconds * 0.35))
    stock["title"] = "Riverine or flash flood (Nairobi plan, demo timings)"
    stock["escalation"] = {
        "ring0_radius_km": 80,
        "ring_intervals": [f"{first}s", f"{second}s"],
    }
    stock["claim_acceptance_timeout"] = "30m"
    return yaml.safe_dump(stock, sort_keys=False)


def _print_welcome(world: _World, minutes: float) -> None:
    base = world.base_url
    simulated = ", ".join(CITIES[slug][0] for slug in ROSTERS)
    lines = [
        "",
        "aidmesh demo is running. Open these pages and paste the token shown beside each:",
        "",
        f"  Board    {base}/board     observer in Nairobi:  {world.tokens['observer:nairobi']}",
        f"  Respond  {base}/respond   responder in Thika:   {world.tokens['responder:thika']}",
        f"  Manage   {base}/manage    manager of Nairobi:   {world.tokens['manager:nairobi']}",
        "",
        f"  Admin token (API docs at {base}/docs):  {world.admin}",
        "",
        f"Nairobi declared a flood (an exercise) from its playbook. For {minutes:g} minutes,",
        f"simulated responders in {simulated}",
        "claim and report progress, and Nairobi's duty officer accepts their claims.",
        "Unclaimed requests widen ring by ring. Thika is yours to play. Ctrl-C stops the demo.",
        "",
    ]
    print("\n".join(lines), flush=True)


def _simulate(http: httpx.Client, world: _World, minutes: float, stop: threading.Event) -> None:
    """Responding cities claim and progress; Nairobi's duty officer accepts claims."""
    rng = random.Random(2024)  # a simulation, not security
    started = time.monotonic()
    ends_at = started + minutes * 60
    tick_s = min(3.0, max(1.0, minutes * 60 / 120))
    # Steps are spaced so that a claim moves through its states within the demo.
    step_s = max(4.0, minutes * 60 / 20)
    claimed: set[tuple[str, int]] = set()
    claims: list[_Claim] = []
    manager = world.tokens[f"manager:{REQUESTING_CITY}"]
    while not stop.is_set() and time.monotonic() < ends_at:
        now = time.monotonic()
        for slug, roster in ROSTERS.items():
            token = world.tokens[f"responder:{slug}"]
            inbox = _call(http, "GET", "/requests", token).json().get("data", [])
            for request in inbox:
                offer = roster.get(request["resource"], 0)
                key = (slug, request["id"])
                if not offer or key in claimed or request["remaining_quantity"] < 1:
                    continue
                if rng.random() > 0.06:
                    continue  # not every city answers at once
                quantity = min(offer, request["remaining_quantity"])
                response = _call(
                    http,
                    "POST",
                    f"/requests/{request['id']}/claims",
                    token,
                    json={"quantity": quantity},
                    headers={"Idempotency-Key": f"demo-{slug}-{request['id']}"},
                )
                claimed.add(key)
                if response.status_code == 201:
                    claims.append(
                        _Claim(response.json()["id"], slug, request["kind"], next_step_at=now)
                    )
        for claim in claims:
            _advance(http, world, manager, claim, now, step_s, rng)
        stop.wait(tick_s)


def _advance(
    http: httpx.Client,
    world: _World,
    manager: str,
    claim: _Claim,
    now: float,
    step_s: float,
    rng: random.Random,
) -> None:
    """One step of one claim, when it is due: accepted, en route, on site (or answered)."""
    if now < claim.next_step_at or claim.status in ("on_site", "released", "gone"):
        return
    token = world.tokens[f"responder:{claim.city}"]
    if claim.status == "claimed":
        body: dict[str, Any] = {"status": "accepted", "note": "Accepted by Nairobi EOC"}
        token = manager
    elif claim.kind == "information":
        body = {"status": "released", "answer": FORECAST_ANSWER}
    elif claim.status == "accepted":
        body = {"status": "en_route"}
    else:
        body = {"status": "on_site"}
    response = _call(http, "POST", f"/claims/{claim.claim_id}/status", token, json=body)
    if response.status_code == 200:
        claim.status = response.json()["status"]
    elif response.status_code in (403, 404, 409):
        current = _call(http, "GET", f"/claims/{claim.claim_id}", token).json()
        claim.status = current.get("status", "gone")
        if claim.status in ("withdrawn", "declined", "expired"):
            claim.status = "gone"
    claim.next_step_at = now + step_s * rng.uniform(0.6, 1.4)
