"""Who may write what (RELIABILITY S1, S2, S4): every write route against every kind of caller.

Each row of the matrix is one write route, each column one caller. A cell expects
401 (with `WWW-Authenticate`) for a missing, unknown or revoked token, 403 for a
wrong role, 403 or 404 for another city's objects, and 2xx only for the caller the
route exists for. Every cell runs against fresh objects, and a refused write must
leave no trace.
"""

from __future__ import annotations

import functools
import itertools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update
from sqlmodel import SQLModel

import playbooks
from service.account_models import PersonInvite
from service.api.body_limits import XML_DOCUMENT_ROUTES
from service.api.routes_accounts import PUBLIC_WRITES
from service.api.routes_observatory import PUBLIC_READS
from service.commands.accounts import invite_person
from service.commands.admin import add_member, create_city, create_network, mint_token, revoke_token
from service.domain.actors import SYSTEM, Role
from service.models import CityCreate, NetworkCreate
from service.persistence import tables  # (also registers every table in the metadata)
from service.sessions import SESSION_COOKIE
from tests.accounts.people import PASSWORD, Signed, make_person, sign_in
from tests.support import World
from tests.webhooks.test_webhook_routes import ROUTES as WEBHOOK_ROUTES

API = "/api/v1"
STOCK_PLAYBOOKS = Path(playbooks.__file__).parent / "stock"

# Callers without a usable token.
NO_TOKEN = "no token"
UNKNOWN_TOKEN = "unknown token"
REVOKED_TOKEN = "revoked token"
EXPIRED_TOKEN = "expired token"  # tokens only: a session's ending is the revoked caller
UNAUTHENTICATED = (NO_TOKEN, UNKNOWN_TOKEN, REVOKED_TOKEN, EXPIRED_TOKEN)

# Tokens with scopes, of the identity the route exists for (its first allowed caller): a
# scoped token writes only through its scopes' routes, and every scope opens the live feed.
READ_ONLY_TOKEN = "read-only token"
CLAIMS_TOKEN = "claims-scoped token"
WEBHOOKS_TOKEN = "webhooks-scoped token"
SCOPED = {READ_ONLY_TOKEN: "read", CLAIMS_TOKEN: "claims", WEBHOOKS_TOKEN: "webhooks"}
ALL_SCOPES = frozenset(SCOPED.values())
CLAIM_SCOPE = frozenset({"claims"})

# Callers with a valid token: (role, city). Nairobi is the requesting city of every seeded
# incident. Thika shares the kenya network and is targeted at ring 0; Machakos shares it
# too but is targeted only at ring 1, which the seeded request has not reached; Berlin
# shares no network with Nairobi and is never targeted.
ADMIN = "admin"
OWN_MANAGER = "manager of the requesting city"
OWN_RESPONDER = "responder of the requesting city"
OBSERVER = "observer of the requesting city"
PEER_MANAGER = "manager of a targeted peer city"
TARGETED_RESPONDER = "responder of a targeted city"
UNREACHED_RESPONDER = "responder of a peer city not yet targeted"
FOREIGN_MANAGER = "manager of a city in no shared network"
FOREIGN_RESPONDER = "responder of a non-targeted foreign city"

IDENTITIES: dict[str, tuple[str, str | None]] = {
    ADMIN: ("admin", None),
    OWN_MANAGER: ("manager", "nairobi"),
    OWN_RESPONDER: ("responder", "nairobi"),
    OBSERVER: ("observer", "nairobi"),
    PEER_MANAGER: ("manager", "thika"),
    TARGETED_RESPONDER: ("responder", "thika"),
    UNREACHED_RESPONDER: ("responder", "machakos"),
    FOREIGN_MANAGER: ("manager", "berlin"),
    FOREIGN_RESPONDER: ("responder", "berlin"),
}
# Callers holding tokens, and callers signed in with sessions (the expired and scoped
# callers are tokens' alone).
CALLERS = [*UNAUTHENTICATED, *IDENTITIES, *SCOPED]
SESSION_CALLERS = [c for c in CALLERS if c != EXPIRED_TOKEN and c not in SCOPED]
# Callers standing for the identity a route exists for (`Endpoint.revoked_identity`).
STAND_INS = frozenset({REVOKED_TOKEN, EXPIRED_TOKEN, *SCOPED})


def callers(via: str) -> list[str]:
    return SESSION_CALLERS if via == "session" else CALLERS


@dataclass(frozen=True)
class Seed:
    """Fresh objects for one cell, so an allowed write never changes what the next cell sees.

    Network-admin rows get a network, two cities, a token and a city playbook; incident
    rows get an incident of Nairobi with one request and one claim by Thika.
    """

    n: int
    incident_id: int = 0
    request_id: int = 0
    claim_id: int = 0
    offer_id: int = 0  # an open offer of Thika's to the incident
    network_id: int = 0  # a network whose only member is `member_city_id`
    member_city_id: int = 0
    outsider_city_id: int = 0  # a city in no network
    token_id: int = 0  # an observer token of `member_city_id` nobody uses
    city_playbook: str = "flood"  # the member city has its own
    new_playbook: str = "wildfire"  # it has none
    own_city_id: int = 0  # library rows: Nairobi, which adopted Thika's flood playbook
    version_id: int = 0  # and a newer version of it, published since
    package_id: int = 0  # roster rows: a package of Nairobi's (`own_city_id`)
    person_id: int = 0  # people rows: an observer of Nairobi, invited
    # Second-factor rows: each signed-in caller's current TOTP code, of a fresh secret.
    totp_codes: dict[str, str] = field(default_factory=dict)


def _totp_body(caller: str, seed: Seed) -> dict[str, str]:
    return {"code": seed.totp_codes.get(caller, "000000")}


Body = Callable[[str, Seed], Any]


@dataclass(frozen=True)
class Endpoint:
    """One write route and who may use it.

    `allowed` maps each caller the route exists for to its success status; the first
    one is also the identity behind the revoked token. Callers in `foreign` act on
    another city's objects (403 or 404); every other caller with a valid token gets 403.
    """

    name: str
    method: str
    path: str
    allowed: dict[str, int]
    foreign: frozenset[str] = frozenset()
    body: Body | None = None
    idempotency_key: bool = False
    seeds: str = "incident"  # or "admin", "library", "city", "roster", "person": per cell
    # Who may use the route when callers are signed-in people instead of tokens (None:
    # the same as `allowed`), and whether a call ends the caller's session.
    session_allowed: dict[str, int] | None = None
    ends_session: bool = False
    # The token scopes that allow this write (a token without scopes may do what its role may).
    scopes: frozenset[str] = frozenset()

    def as_called(self, via: str) -> Endpoint:
        """The row as it stands for callers with tokens or with session cookies."""
        if via == "session" and self.session_allowed is not None:
            return replace(self, allowed=self.session_allowed)
        return self

    def expected(self, caller: str) -> frozenset[int]:
        if caller in UNAUTHENTICATED:
            return frozenset({401})
        if caller in SCOPED:
            identity = self.revoked_identity
            if SCOPED[caller] in self.scopes and identity in self.allowed:
                return frozenset({self.allowed[identity]})
            return frozenset({403})
        if caller in self.allowed:
            return frozenset({self.allowed[caller]})
        if caller in self.foreign:
            return frozenset({403, 404})
        return frozenset({403})

    @property
    def revoked_identity(self) -> str:
        return next(iter(self.allowed), OWN_MANAGER)

    def succeeds(self, caller: str) -> bool:
        return any(200 <= status < 300 for status in self.expected(caller))


def stock_playbook(name: str) -> str:
    return (STOCK_PLAYBOOKS / f"{name}.yaml").read_text(encoding="utf-8")


def _claim_status_body(caller: str, _: Seed) -> dict[str, str]:
    # The requesting manager accepts; the claiming city withdraws. Both are legal from `claimed`.
    return {"status": "accepted" if caller == OWN_MANAGER else "withdrawn"}


def _offer_status_body(caller: str, _: Seed) -> dict[str, str]:
    # The requesting manager declines (with a reason); the offering city withdraws.
    if caller == OWN_MANAGER:
        return {"status": "declined", "reason": "Pumps enough"}
    return {"status": "withdrawn"}


def _package_body(n: int) -> dict[str, Any]:
    return {
        "name": f"Pump team {n}",
        "items": [{"resource": "high-capacity-pump", "quantity": 4}],
        "readiness_hours": 4,
        "self_sufficiency_days": 3,
    }


def _provider_body(n: int, city_id: int | None) -> dict[str, Any]:
    """A sign-in provider (setting one contacts nobody) mapping one group to observers."""
    rule = {"claim": "groups", "value": f"group-{n}", "roles": ["observer"]}
    return {
        "label": f"Provider {n}",
        "issuer": "https://idp.matrix.example",
        "client_id": f"client-{n}",
        "client_secret": f"secret-{n}",
        "rules": [{**rule, **({"city_id": city_id} if city_id else {})}],
    }


ENDPOINTS = [
    Endpoint(
        "create network",
        "POST",
        "/networks",
        {ADMIN: 201},
        body=lambda _, s: {"slug": f"relief-compact-{s.n}", "name": "Relief compact"},
        seeds="admin",
    ),
    Endpoint(
        "add network member",
        "PUT",
        "/networks/{network_id}/members/{outsider_city_id}",
        {ADMIN: 200},
        seeds="admin",
    ),
    Endpoint(
        "remove network member",
        "DELETE",
        "/networks/{network_id}/members/{member_city_id}",
        {ADMIN: 204},
        seeds="admin",
    ),
    Endpoint(
        "create city",
        "POST",
        "/cities",
        {ADMIN: 201},
        body=lambda _, s: {
            "slug": f"new-town-{s.n}",
            "name": "New town",
            "country": "KE",
            "lat": -0.5,
            "lon": 36.0,
        },
        seeds="admin",
    ),
    Endpoint(
        "issue token",
        "POST",
        "/tokens",
        {ADMIN: 201},
        body=lambda _, s: {"role": "observer", "city_id": s.member_city_id},
        seeds="admin",
    ),
    # The seeded token is of a city no caller manages: its managers would be allowed
    # (tests/api/test_token_lifecycle.py).
    Endpoint("revoke token", "POST", "/tokens/{token_id}/revoke", {ADMIN: 200}, seeds="admin"),
    Endpoint("rotate token", "POST", "/tokens/{token_id}/rotate", {ADMIN: 200}, seeds="admin"),
    Endpoint(
        "upload city playbook",
        "PUT",
        "/cities/{member_city_id}/playbooks/{new_playbook}",
        {ADMIN: 200},
        body=lambda _, s: {"source": stock_playbook(s.new_playbook)},
        seeds="admin",
    ),
    Endpoint(
        "delete city playbook",
        "DELETE",
        "/cities/{member_city_id}/playbooks/{city_playbook}",
        {ADMIN: 204},
        seeds="admin",
    ),
    Endpoint(
        "declare incident",
        "POST",
        "/incidents",
        # Any city's manager declares an incident of their own city.
        {OWN_MANAGER: 201, PEER_MANAGER: 201, FOREIGN_MANAGER: 201},
        body=lambda _, s: {"incident_type": "flood", "title": f"Flood {s.n}"},
    ),
    Endpoint(
        "update incident",
        "PATCH",
        "/incidents/{incident_id}",
        # The requesting city's manager, and the admin; a peer sees the incident but may not.
        {OWN_MANAGER: 200, ADMIN: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"severity": "extreme", "description": f"Worse {s.n}"},
    ),
    Endpoint(
        "close incident",
        "POST",
        "/incidents/{incident_id}/close",
        {OWN_MANAGER: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
    ),
    Endpoint(
        "raise request",
        "POST",
        "/incidents/{incident_id}/requests",
        {OWN_MANAGER: 201},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"resource": "high-capacity-pump", "quantity": 1},
    ),
    Endpoint(
        "update request",
        "PATCH",
        "/requests/{request_id}",
        # As for the incident: the requesting city's manager, and the admin.
        {OWN_MANAGER: 200, ADMIN: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"quantity": 5, "priority": "critical", "report_to": f"Gate {s.n}"},
    ),
    Endpoint(
        "cancel request",
        "POST",
        "/requests/{request_id}/cancel",
        {OWN_MANAGER: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
    ),
    Endpoint(
        "claim request",
        "POST",
        "/requests/{request_id}/claims",
        {TARGETED_RESPONDER: 201, PEER_MANAGER: 201},
        foreign=frozenset({UNREACHED_RESPONDER, FOREIGN_MANAGER, FOREIGN_RESPONDER}),
        body=lambda _, s: {"quantity": 1},
        idempotency_key=True,
        scopes=CLAIM_SCOPE,
    ),
    Endpoint(
        "pass on request",
        "POST",
        "/requests/{request_id}/passes",
        # A city the request reaches says it cannot help; never the requesting city.
        {TARGETED_RESPONDER: 201, PEER_MANAGER: 201},
        foreign=frozenset({UNREACHED_RESPONDER, FOREIGN_MANAGER, FOREIGN_RESPONDER}),
        body=lambda _, s: {"reason": f"Pumps deployed at home {s.n}"},
        scopes=CLAIM_SCOPE,
    ),
    Endpoint(
        "change claim status",
        "POST",
        "/claims/{claim_id}/status",
        {TARGETED_RESPONDER: 200, PEER_MANAGER: 200, OWN_MANAGER: 200},
        foreign=frozenset({OWN_RESPONDER, UNREACHED_RESPONDER, FOREIGN_MANAGER, FOREIGN_RESPONDER}),
        body=_claim_status_body,
        scopes=CLAIM_SCOPE,
    ),
    Endpoint(
        "make an offer",
        "POST",
        "/incidents/{incident_id}/offers",
        # A city that can see the incident, not its own; Machakos sees it through the
        # network it shares, before any request reaches it.
        {TARGETED_RESPONDER: 201, PEER_MANAGER: 201, UNREACHED_RESPONDER: 201},
        foreign=frozenset({FOREIGN_MANAGER, FOREIGN_RESPONDER}),
        body=lambda _, s: {
            "resource": "high-capacity-pump",
            "quantity": 2,
            "ready_at": "2026-02-12T14:00:00+03:00",
            "note": f"Offer {s.n}",
        },
        idempotency_key=True,
    ),
    Endpoint(
        "answer or follow an offer",
        "POST",
        "/offers/{offer_id}/status",
        # The requesting city's manager answers; the offering city (Thika) withdraws.
        {OWN_MANAGER: 200, TARGETED_RESPONDER: 200, PEER_MANAGER: 200},
        foreign=frozenset({UNREACHED_RESPONDER, FOREIGN_MANAGER, FOREIGN_RESPONDER}),
        body=_offer_status_body,
    ),
    Endpoint(
        "tick a checklist item",
        "POST",
        "/incidents/{incident_id}/checklist",
        {OWN_MANAGER: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"checklist": 0, "item": 0, "done": True},
        seeds="playbook incident",
    ),
    Endpoint(
        "add a note to a request",
        "POST",
        "/requests/{request_id}/notes",
        # The requesting city and the cities the request reaches (or that claimed it).
        {OWN_MANAGER: 201, OWN_RESPONDER: 201, PEER_MANAGER: 201, TARGETED_RESPONDER: 201},
        foreign=frozenset({UNREACHED_RESPONDER, FOREIGN_MANAGER, FOREIGN_RESPONDER}),
        body=lambda _, s: {"body": f"Note {s.n}"},
    ),
    Endpoint(
        "add a note to a claim",
        "POST",
        "/claims/{claim_id}/notes",
        # The requesting city and the claiming city (Thika).
        {OWN_MANAGER: 201, OWN_RESPONDER: 201, PEER_MANAGER: 201, TARGETED_RESPONDER: 201},
        foreign=frozenset({UNREACHED_RESPONDER, FOREIGN_MANAGER, FOREIGN_RESPONDER}),
        body=lambda _, s: {"body": f"Note {s.n}"},
    ),
    Endpoint(
        "publish playbook version",
        "POST",
        "/cities/{own_city_id}/library/{city_playbook}",
        # A city's manager publishes for their own city only.
        {OWN_MANAGER: 201},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"change_note": f"Note {s.n}"},
        seeds="library",
    ),
    *(
        Endpoint(
            f"{verb} playbook version",
            "POST",
            f"/cities/{{own_city_id}}/library/versions/{{version_id}}/{verb}",
            {OWN_MANAGER: 200},
            foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
            seeds="library",
        )
        for verb in ("adopt", "fork", "ignore")
    ),
    Endpoint(
        "add roster package",
        "POST",
        "/cities/{own_city_id}/roster",
        # A city's managers keep its roster; its networks' cities only read it.
        {OWN_MANAGER: 201},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: _package_body(s.n),
        seeds="roster",
    ),
    Endpoint(
        "update roster package",
        "PATCH",
        "/cities/{own_city_id}/roster/{package_id}",
        {OWN_MANAGER: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"cap_percent": 50, "contact": f"Desk {s.n}"},
        seeds="roster",
    ),
    Endpoint(
        "remove roster package",
        "DELETE",
        "/cities/{own_city_id}/roster/{package_id}",
        {OWN_MANAGER: 204},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        seeds="roster",
    ),
    Endpoint(
        "publish situation report",
        "POST",
        "/incidents/{incident_id}/sitreps",
        # A manager of the incident's city; a peer reads the reports but may not publish.
        {OWN_MANAGER: 201},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"period_from": "2026-02-12T07:00:00+00:00"},
    ),
    Endpoint(
        "dry run a declaration",
        "POST",
        "/incidents/dry-run",
        {OWN_MANAGER: 200, PEER_MANAGER: 200, FOREIGN_MANAGER: 200},
        body=lambda _, s: {"incident_type": "flood", "title": f"Flood {s.n}", "playbook": "flood"},
        seeds="none",
    ),
    Endpoint(
        "set a network's observatory",
        "PUT",
        "/networks/{network_id}/observatory",
        {ADMIN: 200},
        body=lambda _, s: {"licence": "CC-BY-4.0", "publication_delay_days": s.n % 30},
        seeds="admin",
    ),
    Endpoint(
        "opt a city in or out of the observatory",
        "PUT",
        "/cities/{own_city_id}/observatory",
        # The city's own manager, or the admin.
        {OWN_MANAGER: 200, ADMIN: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"opted_in": s.n % 2 == 0},
        seeds="city",
    ),
    Endpoint(
        "issue websocket ticket",
        "POST",
        "/ws-ticket",
        # Any valid token may open the live feed; what it then sees is scoped by the gateway.
        dict.fromkeys(IDENTITIES, 200),
        seeds="none",
        # A signed-in page opens the websocket with its cookie: tickets are for tokens.
        session_allowed={},
        scopes=ALL_SCOPES,  # reading the live feed
    ),
    Endpoint(
        "invite person",
        "POST",
        "/people",
        # A manager invites into their own city; the admin names the city.
        {ADMIN: 201, OWN_MANAGER: 201, PEER_MANAGER: 201, FOREIGN_MANAGER: 201},
        body=lambda caller, s: {
            "email": f"invited-{s.n}@matrix.example",
            "display_name": "Invited",
            "roles": ["observer"],
            **({"city_id": s.member_city_id or 1} if caller == ADMIN else {}),
        },
        seeds="none",
    ),
    Endpoint(
        "change person",
        "PATCH",
        "/people/{person_id}",
        {ADMIN: 200, OWN_MANAGER: 200},
        foreign=frozenset({PEER_MANAGER, FOREIGN_MANAGER}),
        body=lambda _, s: {"display_name": f"Renamed {s.n}", "roles": ["responder"]},
        seeds="person",
    ),
    *(
        Endpoint(
            name,
            "POST",
            path,
            # Signing out is for sessions: a token is revoked instead.
            {},
            seeds="none",
            session_allowed=dict.fromkeys(IDENTITIES, 200),
            ends_session=True,
        )
        for name, path in (
            ("sign out", "/auth/sign-out"),
            ("sign out everywhere", "/auth/sign-out-everywhere"),
        )
    ),
    Endpoint(
        "change password",
        "POST",
        "/auth/password",
        # A password is a person's: a token is rotated instead.
        {},
        body=lambda _, s: {
            "current_password": PASSWORD,
            "new_password": f"copper-meadow-{s.n}-quietly-hums",
        },
        seeds="none",
        session_allowed=dict.fromkeys(IDENTITIES, 200),
    ),
    Endpoint(
        "enrol a second factor",
        "POST",
        "/auth/totp/enrol",
        # A second factor is a person's: a token has none.
        {},
        seeds="none",
        session_allowed=dict.fromkeys(IDENTITIES, 200),
    ),
    *(
        Endpoint(
            name,
            "POST",
            path,
            {},
            body=_totp_body,
            seeds=seeds,
            session_allowed=dict.fromkeys(IDENTITIES, 200),
        )
        for name, path, seeds in (
            ("confirm a second factor", "/auth/totp/confirm", "totp enrolled"),
            ("turn a second factor off", "/auth/totp/disable", "totp on"),
        )
    ),
    Endpoint(
        "require a second factor of a city's managers",
        "PUT",
        "/cities/{own_city_id}/managers-need-totp",
        {ADMIN: 200},
        body=lambda _, s: {"required": s.n % 2 == 0},
        seeds="city",
    ),
    Endpoint(
        "set a city's sign-in provider",
        "PUT",
        "/cities/{own_city_id}/sign-in-provider",
        {ADMIN: 200, OWN_MANAGER: 200},
        body=lambda _, s: _provider_body(s.n, None),
        seeds="city",
    ),
    Endpoint(
        "remove a city's sign-in provider",
        "DELETE",
        "/cities/{own_city_id}/sign-in-provider",
        {ADMIN: 204, OWN_MANAGER: 204},
        seeds="city provider",
    ),
    Endpoint(
        "set a network's sign-in provider",
        "PUT",
        "/networks/{network_id}/sign-in-provider",
        {ADMIN: 200},
        body=lambda _, s: _provider_body(s.n, s.member_city_id),
        seeds="admin",
    ),
    Endpoint(
        "remove a network's sign-in provider",
        "DELETE",
        "/networks/{network_id}/sign-in-provider",
        {ADMIN: 204},
        seeds="network provider",
    ),
]


@dataclass
class Seeder:
    """Makes fresh objects through the API and the commands the fixtures already use."""

    client: TestClient
    world: World
    revoked: dict[str, str] = field(default_factory=dict)
    minted: dict[tuple[str, str], str] = field(default_factory=dict)  # (identity, kind) -> secret
    counter: Iterator[int] = field(default_factory=itertools.count)
    # "token": callers hold tokens; "session": they are people signed in with cookies.
    via: str = "token"
    people: dict[str, str] = field(default_factory=dict)  # identity -> email
    sessions: dict[str, Signed] = field(default_factory=dict)

    def incident(self, **extra: Any) -> int:
        r = self.client.post(
            f"{API}/incidents",
            json={"incident_type": "flood", "title": "Nairobi River flood", **extra},
            headers=self.world.headers("manager", "nairobi"),
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def aid_request(self, incident_id: int) -> int:
        r = self.client.post(
            f"{API}/incidents/{incident_id}/requests",
            json={"resource": "high-capacity-pump", "quantity": 4},
            headers=self.world.headers("manager", "nairobi"),
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def claim(self, request_id: int) -> int:
        r = self.client.post(
            f"{API}/requests/{request_id}/claims",
            json={"quantity": 1},
            headers={
                **self.world.headers("responder", "thika"),
                "Idempotency-Key": f"seed-{next(self.counter)}",
            },
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def offer(self, incident_id: int) -> int:
        r = self.client.post(
            f"{API}/incidents/{incident_id}/offers",
            json={"resource": "generator-100kw", "quantity": 1, "ready_at": "2026-02-12T12:00:00Z"},
            headers={
                **self.world.headers("manager", "thika"),
                "Idempotency-Key": f"seed-{next(self.counter)}",
            },
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def seed(self, kind: str = "incident") -> Seed:
        n = next(self.counter)
        if kind == "admin":
            return self._admin_seed(n)
        if kind == "library":
            return self._library_seed(n)
        if kind == "city":
            return Seed(n, own_city_id=self.world.city_ids["nairobi"])
        if kind == "city provider":
            nairobi = self.world.city_ids["nairobi"]
            self._provider(f"/cities/{nairobi}/sign-in-provider", n, None)
            return Seed(n, own_city_id=nairobi)
        if kind == "network provider":
            seed = self._admin_seed(n)
            path = f"/networks/{seed.network_id}/sign-in-provider"
            self._provider(path, n, seed.member_city_id)
            return seed
        if kind == "roster":
            return self._roster_seed(n)
        if kind == "playbook incident":  # declared from the flood playbook: its checklists
            return Seed(n, incident_id=self.incident(playbook="flood", playbook_requests=[]))
        if kind == "person":
            body = PersonInvite(
                email=f"seeded-{n}@matrix.example",
                display_name="Seeded",
                roles=["observer"],
                city_id=self.world.city_ids["nairobi"],
            )
            (person, _), _ = self.world.executor.run_sync(SYSTEM, invite_person, body)
            assert person.id is not None
            return Seed(n, person_id=person.id)
        if kind in ("totp enrolled", "totp on"):
            return Seed(n, totp_codes=self._totp(on=kind == "totp on"))
        if kind == "incident":
            incident_id = self.incident()
            request_id = self.aid_request(incident_id)
            claim_id = self.claim(request_id)
            return Seed(
                n,
                incident_id=incident_id,
                request_id=request_id,
                claim_id=claim_id,
                offer_id=self.offer(incident_id),
            )
        return Seed(n)

    def _provider(self, path: str, n: int, city_id: int | None) -> None:
        r = self.client.put(
            API + path, json=_provider_body(n, city_id), headers=self.world.headers("admin")
        )
        assert r.status_code == 200, r.text

    def _totp(self, on: bool) -> dict[str, str]:
        """A fresh TOTP secret for every signed-in caller (confirmed if `on`): their codes."""
        executor = self.world.executor
        codes = {}
        for identity, email in self.people.items():
            self.ended_session(identity)  # signed in (and out) before a code is needed
            secret = pyotp.random_base32()
            with executor.db.engine.begin() as conn:
                conn.execute(
                    update(tables.Person)
                    .where(tables.Person.email == email)  # type: ignore[arg-type]
                    .values(totp_secret="ats_" + secret, totp_enabled=on, totp_last_step=None)
                )
            codes[identity] = pyotp.TOTP(secret).at(executor.clock())
        return codes

    def _admin_seed(self, n: int) -> Seed:
        run = self.world.executor.run_sync
        network, _ = run(SYSTEM, create_network, NetworkCreate(slug=f"seed-net-{n}", name="Seed"))
        member, _ = run(SYSTEM, create_city, self._city(f"seed-member-{n}"))
        outsider, _ = run(SYSTEM, create_city, self._city(f"seed-outsider-{n}"))
        run(SYSTEM, add_member, network.id, member.id)
        (token, _), _ = run(SYSTEM, mint_token, Role.OBSERVER, member.id, f"seed-{n}")
        r = self.client.put(
            f"{API}/cities/{member.id}/playbooks/{Seed.city_playbook}",
            json={"source": stock_playbook(Seed.city_playbook)},
            headers=self.world.headers("admin"),
        )
        assert r.status_code == 200, r.text
        assert network.id and member.id and outsider.id and token.id
        return Seed(
            n,
            network_id=network.id,
            member_city_id=member.id,
            outsider_city_id=outsider.id,
            token_id=token.id,
        )

    def _library_seed(self, n: int) -> Seed:
        """Nairobi adopted a version of Thika's flood playbook, and Thika published another."""
        thika, nairobi = self.world.city_ids["thika"], self.world.city_ids["nairobi"]
        r = self.client.put(
            f"{API}/cities/{thika}/playbooks/flood",
            json={"source": stock_playbook("flood")},
            headers=self.world.headers("admin"),
        )
        assert r.status_code == 200, r.text
        versions = []
        for step in ("first", "newer"):
            r = self.client.post(
                f"{API}/cities/{thika}/library/flood",
                json={"change_note": f"{step} {n}"},
                headers=self.world.headers("manager", "thika"),
            )
            assert r.status_code == 201, r.text
            versions.append(int(r.json()["id"]))
            if step == "first":
                r = self.client.post(
                    f"{API}/cities/{nairobi}/library/versions/{versions[0]}/adopt",
                    headers=self.world.headers("manager", "nairobi"),
                )
                assert r.status_code == 200, r.text
        return Seed(n, own_city_id=nairobi, version_id=versions[1])

    def _roster_seed(self, n: int) -> Seed:
        nairobi = self.world.city_ids["nairobi"]
        r = self.client.post(
            f"{API}/cities/{nairobi}/roster",
            json=_package_body(n),
            headers=self.world.headers("manager", "nairobi"),
        )
        assert r.status_code == 201, r.text
        return Seed(n, own_city_id=nairobi, package_id=int(r.json()["id"]))

    @staticmethod
    def _city(slug: str) -> CityCreate:
        # Far from every seeded city and in no seeded network: it never changes targeting.
        return CityCreate(slug=slug, name=slug, country="CL", lat=-53.16, lon=-70.91)

    def revoked_token(self, identity: str) -> str:
        if identity not in self.revoked:
            role, city = IDENTITIES[identity]
            city_id = self.world.city_ids[city] if city else None
            run = self.world.executor.run_sync
            (token, secret), _ = run(SYSTEM, mint_token, Role(role), city_id, "to revoke")
            run(SYSTEM, revoke_token, token.id)
            self.revoked[identity] = secret
        return self.revoked[identity]

    def expired_token(self, identity: str) -> str:
        """A token of `identity` whose expiry has just passed."""
        if (identity, "expired") not in self.minted:
            secret, token_id = self._mint(identity, "expired")
            clock = self.world.executor.clock
            with self.world.executor.db.engine.begin() as conn:
                conn.execute(
                    update(tables.ApiToken)
                    .where(tables.ApiToken.id == token_id)  # type: ignore[arg-type]
                    .values(expires_at=clock())
                )
            self.minted[identity, "expired"] = secret
        return self.minted[identity, "expired"]

    def scoped_token(self, identity: str, scope: str) -> str:
        """A token of `identity` with one scope, used once (a first use is recorded)."""
        if (identity, scope) not in self.minted:
            secret, _ = self._mint(identity, scope, scopes=[scope])
            r = self.client.get(f"{API}/me", headers={"Authorization": f"Bearer {secret}"})
            assert r.status_code == 200, r.text
            self.minted[identity, scope] = secret
        return self.minted[identity, scope]

    def _mint(self, identity: str, label: str, **kw: Any) -> tuple[str, int]:
        role, city = IDENTITIES[identity]
        city_id = self.world.city_ids[city] if city else None
        command = functools.partial(mint_token, **kw)
        (token, secret), _ = self.world.executor.run_sync(
            SYSTEM, command, Role(role), city_id, label
        )
        assert token.id is not None
        return secret, token.id

    def use_sessions(self) -> None:
        """From now on, callers are people signed in with session cookies: one person
        per identity, signed in up front (a sign-in is a change too)."""
        self.via = "session"
        for identity, (role, city) in IDENTITIES.items():
            email = f"{role}.{city or 'network'}@matrix.example"
            make_person(self.world.executor, self.world, [role], city, email)
            self.people[identity] = email
            self.session_headers(identity)

    def session_headers(self, identity: str) -> dict[str, str]:
        if identity not in self.sessions:
            self.sessions[identity] = sign_in(self.client, self.people[identity])
        return self.sessions[identity].write

    def forget_session(self, caller: str) -> None:
        """The caller signed out: its next cell signs in again."""
        self.sessions.pop(caller, None)

    def ended_session(self, identity: str) -> dict[str, str]:
        if identity not in self.revoked:
            signed = sign_in(self.client, self.people[identity])
            r = self.client.post(f"{API}/auth/sign-out", headers=signed.write)
            assert r.status_code == 200, r.text
            self.revoked[identity] = signed.session
            self.client.cookies.clear()
        return {"Cookie": f"{SESSION_COOKIE}={self.revoked[identity]}", "X-CSRF-Token": "x"}

    def headers(self, caller: str, endpoint: Endpoint | None = None) -> dict[str, str]:
        if self.via == "session":
            return self._session_caller(caller, endpoint)
        if caller == NO_TOKEN:
            return {}
        if caller == UNKNOWN_TOKEN:
            return {"Authorization": f"Bearer amk_{secrets.token_urlsafe(32)}"}
        identity = endpoint.revoked_identity if endpoint else OWN_MANAGER
        if caller == REVOKED_TOKEN:
            return {"Authorization": f"Bearer {self.revoked_token(identity)}"}
        if caller == EXPIRED_TOKEN:
            return {"Authorization": f"Bearer {self.expired_token(identity)}"}
        if caller in SCOPED:
            return {"Authorization": f"Bearer {self.scoped_token(identity, SCOPED[caller])}"}
        role, city = IDENTITIES[caller]
        return self.world.headers(role, city)

    def _session_caller(self, caller: str, endpoint: Endpoint | None) -> dict[str, str]:
        if caller == NO_TOKEN:
            return {}
        if caller == UNKNOWN_TOKEN:
            unknown = f"ams_{secrets.token_urlsafe(32)}"
            return {"Cookie": f"{SESSION_COOKIE}={unknown}", "X-CSRF-Token": "x"}
        if caller == REVOKED_TOKEN:
            return self.ended_session(endpoint.revoked_identity if endpoint else OWN_MANAGER)
        return self.session_headers(caller)

    def snapshot(self) -> dict[str, list[str]]:
        """Every row of every table: a refused write must not change any of them."""
        with self.world.executor.db.engine.connect() as conn:
            return {
                table.name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
                for table in SQLModel.metadata.sorted_tables
            }


@pytest.fixture
def seeder(client: TestClient, world: World) -> Seeder:
    seeder = Seeder(client, world)
    for caller in IDENTITIES:  # mint every caller's token up front: minting is a change too
        # and use it once: so is its first use (its last use is recorded once a minute)
        r = client.get(f"{API}/me", headers=seeder.headers(caller))
        assert r.status_code == 200, r.text
    return seeder


@pytest.fixture
def seed(seeder: Seeder) -> Seed:
    """One of everything: an incident with a request and a claim, a network, cities, a token."""
    admin_objects = seeder.seed("admin")
    return replace(
        seeder.seed("incident"), **{k: v for k, v in vars(admin_objects).items() if k != "n" and v}
    )


@dataclass(frozen=True)
class Cell:
    endpoint: str
    caller: str
    status: int
    expected: frozenset[int]
    problems: tuple[str, ...]

    @property
    def unexpected_success(self) -> bool:
        return 200 <= self.status < 300 and self.status not in self.expected


def _call(
    client: TestClient, endpoint: Endpoint, caller: str, seed: Seed, headers: dict[str, str]
) -> Response:
    path = API + endpoint.path.format(**vars(seed))
    if endpoint.idempotency_key:
        headers = {**headers, "Idempotency-Key": f"matrix-{seed.n}"}
    body = None
    if endpoint.body is not None:
        as_caller = endpoint.revoked_identity if caller in STAND_INS else caller
        body = endpoint.body(as_caller, seed)
    return client.request(endpoint.method, path, json=body, headers=headers)


def _problems(endpoint: Endpoint, caller: str, r: Response) -> list[str]:
    problems = []
    if r.status_code not in endpoint.expected(caller):
        problems.append(f"status {r.status_code}: {r.text[:200]}")
    if r.status_code == 401 and r.headers.get("WWW-Authenticate") != "Bearer":
        problems.append(f"401 without 'WWW-Authenticate: Bearer' ({r.headers!r})")
    if r.status_code >= 400:
        try:
            detail = r.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = None
        if not detail:
            problems.append(f"error without a JSON detail: {r.text[:200]}")
    return problems


def run_row(endpoint: Endpoint, seeder: Seeder) -> list[Cell]:
    cells = []
    for caller in callers(seeder.via):
        seed = seeder.seed(endpoint.seeds)
        headers = seeder.headers(caller, endpoint)
        before = seeder.snapshot()
        r = _call(seeder.client, endpoint, caller, seed, headers)
        if endpoint.ends_session and 200 <= r.status_code < 300:
            seeder.forget_session(caller)
        problems = _problems(endpoint, caller, r)
        if not 200 <= r.status_code < 300 and seeder.snapshot() != before:
            problems.append("refused, yet something changed")
        cells.append(
            Cell(endpoint.name, caller, r.status_code, endpoint.expected(caller), tuple(problems))
        )
    return cells


@pytest.mark.parametrize("via", ["token", "session"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name.replace(" ", "-"))
def test_write_route_answers_each_caller_as_the_matrix_says(
    endpoint: Endpoint, via: str, seeder: Seeder
) -> None:
    """Callers hold tokens, or are people signed in with session cookies (who send the
    session's CSRF token; tests/accounts/test_csrf.py refuses writes without it)."""
    if via == "session":
        seeder.use_sessions()
    endpoint = endpoint.as_called(via)
    cells = run_row(endpoint, seeder)

    assert len(cells) == len(callers(via))
    unexpected_2xx = [f"{c.caller} got {c.status}" for c in cells if c.unexpected_success]
    wrong = [f"{c.caller}: {'; '.join(c.problems)}" for c in cells if c.problems]
    assert unexpected_2xx == [], f"{endpoint.name}: unexpected 2xx"
    assert wrong == [], f"{endpoint.name}:\n" + "\n".join(wrong)
    allowed = [c for c in cells if 200 <= c.status < 300]
    assert len(allowed) == len([c for c in callers(via) if endpoint.succeeds(c)])


def _api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every documented API operation."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith(API)
        for method in operations
    ]


# Routes whose body is an XML document have a matrix of their own, with documents to send:
# tests/interop/test_geojson_and_access.py.
XML_IMPORTS = set(XML_DOCUMENT_ROUTES)
# Webhook endpoints are a city's own: their matrix is tests/webhooks/test_webhook_routes.py
# (registering: test_registering_is_for_the_city_manager_and_the_admin there).
WEBHOOK_WRITES = {
    (method, template.replace("{id}", "{endpoint_id}").replace("{attempt}", "{attempt_id}"))
    for method, template, _, _ in WEBHOOK_ROUTES.values()
    if method != "GET"
} | {("POST", "/webhooks")}
# Sign-in and sign-up are made before there is a caller: tests/accounts/ tries them.
SIGN_IN_WRITES = set(PUBLIC_WRITES)


def test_the_matrix_covers_every_write_route_of_the_api(client: TestClient) -> None:
    writes = {(m, p.removeprefix(API)) for m, p in _api_routes(client) if m != "GET"}
    writes -= XML_IMPORTS | WEBHOOK_WRITES | SIGN_IN_WRITES
    covered = {(e.method, _route_template(e.path)) for e in ENDPOINTS}

    assert writes == covered
    assert len(ENDPOINTS) * len(CALLERS) == 48 * 16
    assert len(ENDPOINTS) * len(SESSION_CALLERS) == 48 * 12


def _route_template(path: str) -> str:
    # The matrix names the seeded objects; the router names its parameters.
    renames = {
        "outsider_city_id": "city_id",
        "member_city_id": "city_id",
        "new_playbook": "incident_type",
        "city_playbook": "incident_type",
        "own_city_id": "city_id",
    }
    for ours, theirs in renames.items():
        path = path.replace(f"{{{ours}}}", f"{{{theirs}}}")
    return path


def test_a_manager_declares_incidents_only_for_their_own_city(
    client: TestClient, world: World
) -> None:
    r = client.post(
        f"{API}/incidents",
        json={"incident_type": "flood", "title": "Flood"},
        headers=world.headers("manager", "berlin"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["city_id"] == world.city_ids["berlin"]


# Reads ----------------------------------------------------------------------------------------


def _read_paths(client: TestClient, seed: Seed) -> list[str]:
    """Every GET route of the API but the observatory's public feeds, with the seeded
    objects in its path."""
    ids = {
        "incident_id": seed.incident_id,
        "request_id": seed.request_id,
        "claim_id": seed.claim_id,
        "offer_id": seed.offer_id,
        "network_id": seed.network_id,
        "city_id": seed.member_city_id,
        "incident_type": seed.city_playbook,
        "endpoint_id": 1,  # refused before it is looked up
        "version_id": 1,
        "package_id": 1,
        "number": 1,
        "person_id": 1,  # refused before it is looked up
    }
    public = {API + path for path in PUBLIC_READS}
    return sorted(
        path.format(**ids)
        for method, path in _api_routes(client)
        if method == "GET" and path not in public
    )


def test_every_read_route_refuses_a_missing_unknown_or_revoked_token_with_401(
    client: TestClient, seeder: Seeder, seed: Seed
) -> None:
    paths = _read_paths(client, seed)
    assert len(paths) >= 13
    wrong = []
    for caller, path in itertools.product(UNAUTHENTICATED, paths):
        r = client.get(path, headers=seeder.headers(caller))
        if r.status_code != 401 or r.headers.get("WWW-Authenticate") != "Bearer":
            wrong.append(f"{caller}: GET {path}: {r.status_code} {r.text[:100]}")
        elif not r.json().get("detail"):
            wrong.append(f"{caller}: GET {path}: 401 without detail")
    assert wrong == []


def test_the_only_reads_without_a_token_are_the_observatorys_public_feeds(
    client: TestClient, seed: Seed
) -> None:
    # Unauthenticated, each answers (404: the seeded network has no observatory) instead of
    # 401; every other read is in the test above.
    gets = {path for method, path in _api_routes(client) if method == "GET"}
    assert {API + path for path in PUBLIC_READS} <= gets
    for path in PUBLIC_READS:
        r = client.get(API + path.format(network_id=seed.network_id))
        assert r.status_code in (200, 404), (path, r.status_code, r.text)
        assert "WWW-Authenticate" not in r.headers
    assert [m for m, p in _api_routes(client) if p.removeprefix(API) in PUBLIC_READS] == [
        "GET"
    ] * len(PUBLIC_READS)


FOREIGN_READS = [
    "/incidents/{incident_id}",
    "/incidents/{incident_id}/events",
    "/requests/{request_id}",
    "/requests/{request_id}/claims",
    "/claims/{claim_id}",
    "/incidents/{incident_id}/report",
    "/incidents/{incident_id}/report.csv",
    "/incidents/{incident_id}/sitreps",
]


@pytest.mark.parametrize("role", ["manager", "responder", "observer"])
def test_a_city_in_no_shared_network_gets_404_on_another_citys_objects(
    role: str, client: TestClient, world: World, seed: Seed
) -> None:
    berlin = world.headers(role, "berlin")
    thika = world.headers(role, "thika")
    for template in FOREIGN_READS:
        path = API + template.format(**vars(seed))
        assert client.get(path, headers=thika).status_code == 200, path  # the control
        r = client.get(path, headers=berlin)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert "not found" in r.json()["detail"]

    listed = client.get(f"{API}/incidents", headers=berlin).json()
    assert seed.incident_id not in [i["id"] for i in listed["data"]]
    by_city = client.get(
        f"{API}/incidents", params={"city_id": world.city_ids["nairobi"]}, headers=berlin
    ).json()
    assert by_city["count"] == 0
    inbox = client.get(f"{API}/requests", params={"incident_id": seed.incident_id}, headers=berlin)
    assert inbox.json()["count"] == 0


def test_a_city_sees_a_request_only_once_it_reaches_its_ring(
    client: TestClient, world: World, seed: Seed
) -> None:
    # Munich shares the alliance network with Nairobi, so it may see the incident; but it is
    # hundreds of kilometres away, beyond ring 0, so it cannot claim a fresh request yet.
    munich = world.headers("responder", "munich")
    assert client.get(f"{API}/requests/{seed.request_id}", headers=munich).status_code == 200
    inbox = client.get(f"{API}/requests", headers=munich).json()
    assert seed.request_id not in [r["id"] for r in inbox["data"]]
    r = client.post(
        f"{API}/requests/{seed.request_id}/claims",
        json={"quantity": 1},
        headers={**munich, "Idempotency-Key": "munich-early"},
    )
    assert r.status_code == 403


def test_the_token_list_is_for_the_admin_and_shows_a_manager_only_their_citys(
    client: TestClient, seeder: Seeder, world: World
) -> None:
    everyone = client.get(f"{API}/tokens", headers=seeder.headers(ADMIN)).json()["data"]
    for caller, (role, city) in IDENTITIES.items():
        r = client.get(f"{API}/tokens", headers=seeder.headers(caller))
        if role == "admin":
            assert r.status_code == 200, r.text
        elif role == "manager":
            assert r.status_code == 200, (caller, r.text)
            assert city is not None
            listed = r.json()["data"]
            own = [t for t in everyone if t["city_id"] == world.city_ids[city]]
            assert listed == own and listed, caller
            assert all("token" not in t and "token_hash" not in t for t in listed)
        else:
            assert r.status_code == 403, (caller, r.text)


def test_the_inbox_belongs_to_a_city_so_an_admin_token_gets_403(
    client: TestClient, world: World
) -> None:
    r = client.get(f"{API}/requests", headers=world.headers("admin"))
    assert r.status_code == 403
    assert r.json()["detail"]


MALFORMED_AUTHORIZATION = [
    "Basic YWRtaW46YWRtaW4=",
    "Bearer",
    "Bearer ",
    "amk_no-scheme",
    "Bearer " + "a" * 10_000,
    "Bearer amk_\x00",
    "Bearer amk_ünïcode",
    "Bearer amk_one amk_two",
]


def test_malformed_authorization_headers_get_401(client: TestClient, seed: Seed) -> None:
    wrong = []
    for authorization in MALFORMED_AUTHORIZATION:
        r = client.post(
            f"{API}/incidents/{seed.incident_id}/close",
            headers={"Authorization": authorization.encode("utf-8")},
        )
        if r.status_code != 401 or r.headers.get("WWW-Authenticate") != "Bearer":
            wrong.append(f"{authorization[:40]!r}: {r.status_code} {r.text[:100]}")
        elif not r.json().get("detail"):
            wrong.append(f"{authorization[:40]!r}: 401 without detail")
    assert wrong == []


def test_a_revoked_token_stops_working_at_once(client: TestClient, world: World) -> None:
    admin = world.headers("admin")
    issued = client.post(
        f"{API}/tokens",
        json={"role": "manager", "city_id": world.city_ids["nairobi"]},
        headers=admin,
    ).json()
    mine = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get(f"{API}/me", headers=mine).status_code == 200

    r = client.post(f"{API}/tokens/{issued['id']}/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None

    r = client.post(f"{API}/incidents", json={"incident_type": "flood", "title": "x"}, headers=mine)
    assert r.status_code == 401
    assert r.headers.get("WWW-Authenticate") == "Bearer"
    assert client.get(f"{API}/incidents", headers=admin).json()["count"] == 0


# Hidden and missing ---------------------------------------------------------------------------

# An id far above anything the tests create, yet within the database's integer range.
MISSING_ID = 2_147_480_000
HIDDEN_FROM = [FOREIGN_MANAGER, FOREIGN_RESPONDER, ("observer", "berlin")]
OTHER_PARAMS = {"number": 1}  # a situation report's number within its incident


def _hidden_and_missing(
    client: TestClient, seeder: Seeder, seed: Seed, method: str, template: str, caller: Any
) -> tuple[Response, Response, int] | None:
    """The answers to a call on the seeded object and on a missing one, and the seeded id;
    None when the route takes none of the incident's objects."""
    params = {"incident_id": seed.incident_id, "request_id": seed.request_id}
    params["claim_id"] = seed.claim_id
    params["offer_id"] = seed.offer_id
    names = [name for name in params if f"{{{name}}}" in template]
    if not names:
        return None
    (name,) = names
    endpoint = next(
        (e for e in ENDPOINTS if (e.method, e.path) == (method, template.removeprefix(API))), None
    )
    headers = seeder.world.headers(*caller) if isinstance(caller, tuple) else seeder.headers(caller)
    if endpoint is not None and endpoint.idempotency_key:
        headers = {**headers, "Idempotency-Key": f"hidden-{next(seeder.counter)}"}
    who = OWN_MANAGER if isinstance(caller, tuple) else caller
    body = endpoint.body(who, seed) if endpoint is not None and endpoint.body else None
    answers = [
        client.request(
            method,
            template.format(**{**params, **OTHER_PARAMS, name: id_}),
            json=body,
            headers=headers,
        )
        for id_ in (params[name], MISSING_ID)
    ]
    return answers[0], answers[1], params[name]


def test_a_hidden_object_answers_exactly_as_a_missing_one_on_every_route(
    client: TestClient, seeder: Seeder, seed: Seed
) -> None:
    # A city that may not see an incident must not learn that a request or claim exists,
    # nor which incident it belongs to: the body is the missing object's, byte for byte.
    wrong = []
    compared = 0
    for (method, template), caller in itertools.product(_api_routes(client), HIDDEN_FROM):
        found = _hidden_and_missing(client, seeder, seed, method, template, caller)
        if found is None:
            continue
        hidden, missing, hidden_id = found
        as_missing = missing.content.replace(str(MISSING_ID).encode(), str(hidden_id).encode())
        if hidden.status_code != missing.status_code or hidden.content != as_missing:
            wrong.append(
                f"{caller} {method} {template}: hidden {hidden.status_code} {hidden.text[:80]} "
                f"but missing {missing.status_code} {missing.text[:80]}"
            )
        compared += 1
    # The incident, its requests, claims and the commands on them (12 routes, the
    # incident's and the request's updates among them), the notes of its requests and
    # claims (4: read and write each), ticking its checklists (1), its exports as CAP,
    # EDXL-RM and GeoJSON (3), its after-action report as JSON and CSV (2), its
    # situation reports: publish, list, read one (3), who could help with its requests
    # (2), passes on a request (2), and its offers: make, list, read one, answer (4).
    assert compared == 33 * len(HIDDEN_FROM)
    assert wrong == []
