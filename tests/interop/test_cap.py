"""CAP 1.2: every alert aidmesh produces is valid against the OASIS schema and the rules
the schema does not check; the Atom feed; imports and their idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring
from fastapi.testclient import TestClient
from lxml import etree

from playbooks import load_stock_playbooks
from service.interop import cap, mapping
from service.models import EventPublic, IncidentPublic
from tests.interop.flow import API, ok
from tests.support import FakeClock, World

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "schemas" / "CAP-v1.2.xsd")))
SEVERITIES = ("minor", "moderate", "severe", "extreme")
T0 = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)


def _incident(incident_type: str, severity: str, exercise: bool) -> IncidentPublic:
    return IncidentPublic(
        id=7,
        city_id=1,
        incident_type=incident_type,
        title=f"{incident_type} & co <test>",
        severity=severity,
        description="Rivers over their banks",
        lat=-1.2864,
        lon=36.8172,
        playbook=None,
        exercise=exercise,
        status="active",
        last_seq=3,
        declared_at=T0,
        closed_at=None,
    )


def _event(seq: int, type_: str, incident: IncidentPublic, **change: str) -> EventPublic:
    snapshot = {**incident.model_dump(mode="json"), **change}
    return EventPublic(
        event_id=f"e{seq}",
        incident_id=incident.id,
        seq=seq,
        type=type_,
        occurred_at=T0 + timedelta(minutes=seq),
        actor_role="manager",
        actor_city_id=1,
        data={"incident": snapshot},
    )


def _alerts(incident: IncidentPublic) -> list[etree._Element]:
    events = [
        _event(1, cap.DECLARED, incident),
        _event(2, "request.raised", incident),
        _event(3, cap.UPDATED, incident, severity="extreme", description="Worse"),
        _event(4, cap.UPDATED, incident, severity="extreme", description="Worse"),  # no change
        _event(5, cap.CLOSED, incident),
    ]
    versions = cap.alert_versions(events)
    assert [v.msg_type for v in versions] == ["Alert", "Update", "Cancel"]
    area = cap.Area("Nairobi", incident.lat, incident.lon, 50.0)
    return [
        etree.fromstring(
            cap.to_bytes(
                cap.build_alert(
                    incident,
                    versions,
                    i,
                    sender="aidmesh",
                    area=area,
                    restriction="Network members only",
                )
            )
        )
        for i in range(len(versions))
    ]


INCIDENT_TYPES = sorted({*load_stock_playbooks(), "other-thing"})


@pytest.mark.parametrize("incident_type", INCIDENT_TYPES)
def test_every_alert_is_valid_cap_1_2(incident_type: str) -> None:
    checked = 0
    for severity in SEVERITIES:
        for exercise in (False, True):
            for alert in _alerts(_incident(incident_type, severity, exercise)):
                SCHEMA.assertValid(alert)
                assert cap.rule_problems(fromstring(etree.tostring(alert))) == []
                status = alert.findtext(f"{{{mapping.CAP_NAMESPACE}}}status")
                assert status == ("Exercise" if exercise else "Actual")
                checked += 1
    print(f"{incident_type}: {checked} alerts valid against CAP-v1.2.xsd")


def test_update_and_cancel_reference_the_alert_before() -> None:
    alert, update, cancel = _alerts(_incident("flood", "severe", False))
    ns = {"cap": mapping.CAP_NAMESPACE}
    assert alert.find("cap:references", ns) is None
    identifier = alert.findtext("cap:identifier", namespaces=ns)
    first = f"aidmesh,{identifier},{alert.findtext('cap:sent', namespaces=ns)}"
    assert update.findtext("cap:references", namespaces=ns) == first
    assert update.findtext("cap:info/cap:severity", namespaces=ns) == "Extreme"
    assert cancel.findtext("cap:msgType", namespaces=ns) == "Cancel"
    assert alert.findtext("cap:sent", namespaces=ns).endswith("-00:00")
    assert alert.findtext("cap:info/cap:area/cap:circle", namespaces=ns) == "-1.28640,36.81720 50.0"


def test_the_extra_rules_bite() -> None:
    bad = (
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a b</identifier>'
        b"<sender>x,y</sender><sent>2026-02-12T08:00:00Z</sent><info><area>"
        b"<circle>1,2</circle><polygon>1,1 2,2 3,3 4,4</polygon></area></info></alert>"
    )
    problems = cap.rule_problems(fromstring(bad))
    assert len(problems) == 5, problems


def test_exported_alert_follows_the_incident_from_declaration_to_cancel(
    client: TestClient, world: World
) -> None:
    manager = world.headers("manager", "nairobi")
    body = {
        "incident_type": "wildfire",
        "title": "Ngong forest fire",
        "severity": "extreme",
        "exercise": True,
    }
    incident = ok(client.post(f"{API}/incidents", headers=manager, json=body), 201)
    response = client.get(f"{API}/incidents/{incident['id']}/cap", headers=manager)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/cap+xml")
    alert = etree.fromstring(response.content)
    SCHEMA.assertValid(alert)
    ns = {"cap": mapping.CAP_NAMESPACE}
    assert alert.findtext("cap:msgType", namespaces=ns) == "Alert"
    assert alert.findtext("cap:status", namespaces=ns) == "Exercise"
    assert alert.findtext("cap:scope", namespaces=ns) == "Restricted"
    assert alert.findtext("cap:info/cap:category", namespaces=ns) == "Fire"
    assert alert.findtext("cap:info/cap:area/cap:areaDesc", namespaces=ns) == "Nairobi"
    ok(client.post(f"{API}/incidents/{incident['id']}/close", headers=manager))
    closed = etree.fromstring(
        client.get(f"{API}/incidents/{incident['id']}/cap", headers=manager).content
    )
    SCHEMA.assertValid(closed)
    assert closed.findtext("cap:msgType", namespaces=ns) == "Cancel"
    assert closed.findtext("cap:references", namespaces=ns).startswith("aidmesh,aidmesh-incident-")


def _current_alert(client: TestClient, headers: dict[str, str], incident_id: int) -> etree._Element:
    """The incident's exported alert, checked against the XSD and CAP's other rules."""
    response = client.get(f"{API}/incidents/{incident_id}/cap", headers=headers)
    assert response.status_code == 200, response.text
    alert = etree.fromstring(response.content)
    SCHEMA.assertValid(alert)
    assert cap.rule_problems(fromstring(response.content)) == []
    return alert


def test_a_severity_update_through_the_api_is_a_cap_update_and_the_cancel_references_it(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    manager = world.headers("manager", "nairobi")
    ns = {"cap": mapping.CAP_NAMESPACE}
    body = {"incident_type": "flood", "title": "Nairobi River flood", "severity": "moderate"}
    incident_id = ok(client.post(f"{API}/incidents", headers=manager, json=body), 201)["id"]
    declared = _current_alert(client, manager, incident_id)
    assert declared.findtext("cap:info/cap:severity", namespaces=ns) == "Moderate"

    clock.advance(timedelta(minutes=20))
    change = {"severity": "extreme", "description": "The Athi river too"}
    ok(client.patch(f"{API}/incidents/{incident_id}", headers=manager, json=change))
    update = _current_alert(client, manager, incident_id)

    def said(alert: etree._Element, name: str) -> str | None:
        return alert.findtext(f"cap:{name}", namespaces=ns)

    def reference_to(alert: etree._Element) -> str:
        return f"aidmesh,{said(alert, 'identifier')},{said(alert, 'sent')}"

    assert said(update, "msgType") == "Update"
    assert said(update, "identifier") == f"aidmesh-incident-{incident_id}-2"
    assert said(update, "sent") == "2026-02-12T08:20:00-00:00"
    assert said(update, "references") == reference_to(declared)
    assert said(update, "info/cap:severity") == "Extreme"
    assert said(update, "info/cap:urgency") == "Immediate"
    assert said(update, "info/cap:description") == "The Athi river too"
    assert said(update, "incidents") == said(declared, "incidents")

    clock.advance(timedelta(hours=3))
    ok(client.post(f"{API}/incidents/{incident_id}/close", headers=manager))
    cancel = _current_alert(client, manager, incident_id)
    assert said(cancel, "msgType") == "Cancel"
    assert said(cancel, "references") == reference_to(update)
    assert said(cancel, "info/cap:severity") == "Extreme"
    feed = etree.fromstring(client.get(f"{API}/feeds/cap", headers=manager).content)
    atom = "{http://www.w3.org/2005/Atom}"
    assert [e.findtext(f"{atom}title") for e in feed.iter(f"{atom}entry")] == [
        "Cancel: Nairobi River flood"
    ]


def test_a_headline_change_is_an_update_and_a_change_of_nothing_is_no_alert(
    client: TestClient, world: World
) -> None:
    manager = world.headers("manager", "nairobi")
    ns = {"cap": mapping.CAP_NAMESPACE}
    body = {"incident_type": "flood", "title": "Nairobi River flood"}
    incident_id = ok(client.post(f"{API}/incidents", headers=manager, json=body), 201)["id"]
    url = f"{API}/incidents/{incident_id}"

    ok(client.patch(url, headers=manager, json={"severity": "severe"}))  # as declared
    assert _current_alert(client, manager, incident_id).findtext("cap:msgType", namespaces=ns) == (
        "Alert"
    )
    ok(client.patch(url, headers=manager, json={"title": "Nairobi and Athi rivers flood"}))
    update = _current_alert(client, manager, incident_id)
    assert update.findtext("cap:msgType", namespaces=ns) == "Update"
    assert update.findtext("cap:info/cap:headline", namespaces=ns) == (
        "Nairobi and Athi rivers flood"
    )


def test_the_feed_lists_only_incidents_the_caller_may_see(client: TestClient, world: World) -> None:
    for city, title in (("nairobi", "Nairobi flood"), ("berlin", "Berlin storm")):
        body = {"incident_type": "flood", "title": title}
        ok(client.post(f"{API}/incidents", headers=world.headers("manager", city), json=body), 201)
    atom = "{http://www.w3.org/2005/Atom}"

    def titles(role: str, city: str | None) -> list[str]:
        response = client.get(f"{API}/feeds/cap", headers=world.headers(role, city))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/atom+xml")
        feed = etree.fromstring(response.content)
        assert feed.tag == f"{atom}feed" and feed.findtext(f"{atom}id")
        for entry in feed.findall(f"{atom}entry"):
            link = entry.find(f"{atom}link")
            assert link is not None and link.get("type") == "application/cap+xml"
            assert entry.findtext(f"{atom}updated").endswith("-00:00")
        return sorted(e.findtext(f"{atom}title") for e in feed.findall(f"{atom}entry"))

    assert titles("observer", "thika") == ["Alert: Nairobi flood"]
    assert titles("responder", "berlin") == ["Alert: Berlin storm"]
    assert titles("admin", None) == ["Alert: Berlin storm", "Alert: Nairobi flood"]
    assert client.get(f"{API}/feeds/cap").status_code == 401


CAP_ALERT = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>KMD-2026-0042</identifier><sender>warnings@meteo.example.ke</sender>
  <sent>2026-02-12T07:30:00+03:00</sent><status>{status}</status><msgType>Alert</msgType>
  <scope>Public</scope>
  <info><category>Met</category><event>{event}</event><urgency>Immediate</urgency>
    <severity>Extreme</severity><certainty>Observed</certainty>
    <headline>Flash floods on the Athi river</headline>
    <description>Stay away from the river</description>
    <area><areaDesc>Athi River</areaDesc>{geometry}</area></info>
</alert>"""


def test_a_cap_alert_declares_an_incident_once(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    headers = {**world.headers("manager", "nairobi"), "Content-Type": "application/cap+xml"}
    body = CAP_ALERT.format(
        status="Exercise",
        event="Flood",
        geometry="<polygon>-1.4,36.9 -1.4,37.1 -1.6,37.1 -1.6,36.9 -1.4,36.9</polygon>",
    )
    first = ok(client.post(f"{API}/incidents/import/cap", headers=headers, content=body), 201)
    assert first["incident_type"] == "flood"
    assert first["severity"] == "extreme"
    assert first["exercise"] is True
    assert first["title"] == "Flash floods on the Athi river"
    assert first["lat"] == pytest.approx(-1.5) and first["lon"] == pytest.approx(37.0)
    assert first["playbook"] == "flood", "the type's stock playbook applies"
    again = ok(client.post(f"{API}/incidents/import/cap", headers=headers, content=body), 200)
    assert again["id"] == first["id"]
    listed = ok(client.get(f"{API}/incidents", headers=headers))
    assert listed["count"] == 1


def test_an_unknown_event_falls_back_on_its_category(client: TestClient, world: World) -> None:
    headers = {**world.headers("manager", "nairobi"), "Content-Type": "application/xml"}
    body = CAP_ALERT.format(
        status="Actual", event="Tsunami", geometry="<circle>-4.05,39.66 10</circle>"
    )
    created = ok(client.post(f"{API}/incidents/import/cap", headers=headers, content=body), 201)
    assert created["incident_type"] == "flood"  # Met
    assert created["exercise"] is False
    assert (created["lat"], created["lon"]) == (-4.05, 39.66)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (CAP_ALERT.format(status="Test", event="Flood", geometry=""), "application/xml", 422),
        ("<alert xmlns='urn:other'/>", "application/xml", 422),
        ("{}", "application/json", 415),
        ("<alert", "application/xml", 422),
    ],
)
def test_imports_refuse_what_they_cannot_use(
    client: TestClient, world: World, body: str, content_type: str, status: int
) -> None:
    headers = {**world.headers("manager", "nairobi"), "Content-Type": content_type}
    response = client.post(f"{API}/incidents/import/cap", headers=headers, content=body)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str | list)
