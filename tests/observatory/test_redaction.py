"""RELIABILITY S11: the public feeds leak nothing. A realistic run, every incident closed,
then a canary string written into every free-text field of every table and every event;
not one public feed or page may carry it, nor a city that opted out, nor an exercise."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, text, update
from sqlalchemy import select as select_rows
from sqlmodel import SQLModel, col, select

from service.commands import admin, claims, incidents, observatory
from service.domain.actors import SYSTEM
from service.domain.errors import DomainError
from service.executor import Executor
from service.main import create_app
from service.models import ClaimStatusChange, NetworkCreate
from service.persistence import tables
from service.settings import Settings
from tests.observatory.support import API, CANARY
from tests.persistence.realistic_run import RealisticRun, realistic_run
from tests.support import FakeClock

# Every string column of every table is one or the other; a new column must be sorted here.
FREE_TEXT = {
    "networks": {"description"},
    "cities": {"contact_email"},
    "api_tokens": {"label"},
    "incidents": {"title", "description"},
    "aid_requests": {"report_to", "notes"},
    "claims": {"note", "answer", "contact", "end_reason", "team_lead", "vehicle"},
    "city_playbooks": {"source"},
    "playbook_versions": {"source", "change_note"},
    "interop_imports": {"sender", "identifier"},
    "webhook_endpoints": {"url", "description", "status_reason"},
    "webhook_attempts": {"error", "response_excerpt"},
    "events": {"actor_name"},
    "notes": {"body"},
    "people": {"display_name", "email"},
    "request_passes": {"reason"},
    "offers": {"note", "end_reason"},
    "roster_packages": {"name", "contact", "limitations", "unavailable_reason"},
    # Who tried to sign in: an account name or an address.
    "sign_in_throttle": {"key"},
    # A provider's button label, typed by a manager; who a provider says a person is.
    "sign_in_providers": {"label"},
    "external_identities": {"subject"},
}
STRUCTURED = {
    "networks": {"slug", "name"},
    "cities": {"slug", "name", "country", "time_zone"},
    "api_tokens": {"token_hash", "prefix", "role", "scopes"},
    "incidents": {"incident_type", "severity", "playbook", "status"},
    "aid_requests": {"kind", "resource", "priority", "status"},
    "claims": {"status", "idempotency_key", "body_fingerprint"},
    "offers": {"resource", "status", "idempotency_key", "body_fingerprint"},
    "events": {"event_id", "type", "actor_role"},
    "city_playbooks": {"incident_type", "lineage"},
    "playbook_versions": {"incident_type"},
    "interop_imports": {"format"},
    "webhook_endpoints": {"status", "secret", "previous_secret", "leased_by"},
    "webhook_queue": {"kind", "event_id"},
    "webhook_attempts": {"event_id", "event_type", "source", "outcome"},
    "ws_tickets": {"ticket_hash"},
    "observatory_networks": {"licence"},
    "notes": {"author_role", "idempotency_key", "body_fingerprint"},
    "package_items": {"resource"},
    "people": {"invite_hash", "password_hash", "totp_secret"},
    "roster_packages": {"cost_currency"},
    "user_sessions": {"csrf_hash", "id_hash"},
    # A provider's address and client; its secret (never answered, never published).
    "sign_in_providers": {"issuer", "client_id", "client_secret"},
    "external_identities": {"issuer"},
    "pending_sign_ins": {"state_hash", "nonce", "code_verifier", "next_path"},
}
# Keys of event data that carry free text, wherever they sit in it.
FREE_TEXT_KEYS = {
    "title",
    "description",
    "notes",
    "report_to",
    "note",
    "answer",
    "label",
    "body",
    "reason",
    "end_reason",
    "team_lead",
    "vehicle",
    "contact",
    "limitations",
    "unavailable_reason",
    "display_name",
    "actor_name",
}


def _string_columns() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table in SQLModel.metadata.sorted_tables:
        # SQLModel's str columns are a decorator over String.
        names = {
            c.name
            for c in table.columns
            if isinstance(c.type, String) or isinstance(getattr(c.type, "impl", None), String)
        }
        if names:
            found[table.name] = names
    return found


def test_every_string_column_is_sorted_as_free_text_or_structured() -> None:
    assert tables.Claim  # the tables are registered
    sorted_ = {
        name: FREE_TEXT.get(name, set()) | STRUCTURED.get(name, set())
        for name in set(FREE_TEXT) | set(STRUCTURED)
    }
    assert _string_columns() == sorted_


def _canary_everywhere(executor: Executor) -> None:
    with executor.db.engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            columns = FREE_TEXT.get(table.name, set())
            if not columns:
                continue
            if table.name == "playbook_versions":
                # Immutable (a trigger refuses UPDATE); the run publishes none.
                assert conn.execute(select_rows(table)).first() is None
                continue
            values = {c: f"{CANARY} {c}" for c in columns}
            conn.execute(update(table).values(**values))
        events = tables.Event.__table__  # type: ignore[attr-defined]
        for event_id, data in conn.execute(select_rows(events.c.id, events.c.data)).all():
            conn.execute(update(events).where(events.c.id == event_id).values(data=_planted(data)))
        assert conn.execute(text("select count(*) from incidents")).scalar_one() > 0


def _planted(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _planted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_planted(v, key) for v in value]
    if key in FREE_TEXT_KEYS and isinstance(value, str | type(None)):
        return f"{CANARY} {key}"
    return value


@pytest.fixture
def app_client(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock)) as client:
        yield client


_STEPS = {"claimed": "accepted", "accepted": "en_route", "en_route": "on_site"}


def _deliver_everything(run: RealisticRun) -> None:
    """Every claim still travelling reaches the site, so closing keeps the aid it gave."""
    by_id = {city_id: slug for slug, city_id in run.city_ids.items()}
    for _ in range(len(_STEPS)):
        with run.executor.db.read() as session:
            moving = session.exec(
                select(tables.Claim, tables.Incident.city_id)
                .join(tables.Incident, tables.Incident.id == tables.Claim.incident_id)
                .where(
                    col(tables.Claim.status).in_(list(_STEPS)),
                    tables.Incident.status == "active",
                    col(tables.Claim.quantity) > 0,
                )
            ).all()
        for claim, requester in moving:
            status = _STEPS[claim.status]
            who = f"manager:{by_id[requester]}" if status == "accepted" else None
            actor = run.actor(who or f"responder:{by_id[claim.city_id]}")
            body = ClaimStatusChange(status=status)  # type: ignore[arg-type]
            if claim.status == "accepted" and _is_information(run, claim.request_id):
                body = ClaimStatusChange(status="released", answer="forecast")
            try:
                run.executor.run_sync(actor, claims.change_claim_status, claim.id, body)
            except DomainError:
                continue  # its request ended meanwhile


def _is_information(run: RealisticRun, request_id: int) -> bool:
    with run.executor.db.read() as session:
        request = session.get(tables.AidRequest, request_id)
        return request is not None and request.kind == "information"


def _close_everything(run: RealisticRun) -> None:
    _deliver_everything(run)
    with run.executor.db.read() as session:
        active = session.exec(
            select(tables.Incident.id, tables.Incident.city_id).where(
                tables.Incident.status == "active"
            )
        ).all()
    by_id = {city_id: slug for slug, city_id in run.city_ids.items()}
    for incident_id, city_id in active:
        manager = run.actor(f"manager:{by_id[city_id]}")
        run.executor.run_sync(manager, incidents.close_incident, incident_id)


def _publish(run: RealisticRun, opted_out: str) -> list[int]:
    ex = run.executor
    with ex.db.read() as session:
        network_ids = [n for n in session.exec(select(tables.Network.id)).all() if n is not None]
    for network_id in network_ids:
        ex.run_sync(SYSTEM, observatory.set_network_settings, network_id, "CC-BY-4.0", 0)
    for slug, city_id in run.city_ids.items():
        ex.run_sync(SYSTEM, observatory.set_city_opt_in, city_id, slug != opted_out)
    return network_ids


def test_no_free_text_opted_out_city_or_exercise_reaches_any_public_feed_or_page(
    executor: Executor, clock: FakeClock, app_client: TestClient
) -> None:
    run = realistic_run(executor, clock, events=400)
    _close_everything(run)
    # The city that helped most opts out: its name must vanish from every feed.
    helpers = Counter(c.city for c in run.claims)
    opted_out = helpers.most_common(1)[0][0]
    opted_out_name = next(name for slug, name in _city_names(executor).items() if slug == opted_out)
    network_ids = _publish(run, opted_out)
    # A network without an observatory, described in free text: never listed.
    unlisted = NetworkCreate(slug="unlisted", name="Unlisted", description="private")
    executor.run_sync(SYSTEM, admin.create_network, unlisted)
    _canary_everywhere(executor)

    exercises = {run.incidents["nairobi"], run.incidents["mombasa"]}
    bodies: dict[str, str] = {}
    published: set[int] = set()
    flow_rows = 0
    for network_id in network_ids:
        base = f"{API}/observatory/networks/{network_id}"
        for suffix in ("", "/incidents.geojson", "/flows.csv"):
            r = app_client.get(base + suffix)
            assert r.status_code == 200, r.text
            bodies[base + suffix] = r.text
        published |= {
            f["id"] for f in app_client.get(f"{base}/incidents.geojson").json()["features"]
        }
        flow_rows += app_client.get(f"{base}/flows.csv").text.count("\r\n") - 2
    for path in (f"{API}/observatory", "/observatory", "/static/observatory.js"):
        bodies[path] = app_client.get(path).text

    # The control: the run published incidents and aid, including help from other cities.
    assert len(published) >= 3 and flow_rows >= 5
    assert any("other cities" in b for b in bodies.values())
    leaks = [path for path, body in bodies.items() if CANARY in body]
    assert leaks == []
    assert [path for path, body in bodies.items() if opted_out_name in body] == []
    assert published.isdisjoint(exercises)
    for secret in [s for _, s in run.tokens.values()]:
        assert not [path for path, body in bodies.items() if secret in body]


def _city_names(executor: Executor) -> dict[str, str]:
    with executor.db.read() as session:
        return {
            slug: name for slug, name in session.exec(select(tables.City.slug, tables.City.name))
        }
