"""EDXL-RM 1.0: every message type of a realistic incident, in the standard's element
order, the same in XML and JSON, and a RequestResource round trip (XML -> import -> XML)."""

from __future__ import annotations

from typing import Any

from defusedxml.ElementTree import fromstring
from fastapi.testclient import TestClient

from service.interop import edxl_rm, mapping
from tests.interop.flow import API, ok, run_flow
from tests.support import FakeClock, World


def _messages(client: TestClient, world: World, incident_id: int) -> list[edxl_rm.Message]:
    response = client.get(
        f"{API}/incidents/{incident_id}/edxl-rm", headers=world.headers("manager", "nairobi")
    )
    assert response.status_code == 200, response.text
    root = fromstring(response.content)
    return [edxl_rm.tree_of(element) for element in root]


def test_a_realistic_incident_produces_every_message_type_in_order(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    flow = run_flow(client, world, clock)
    messages = _messages(client, world, flow.incident_id)
    kinds = [m.message_type for m in messages]
    print("EDXL-RM sequence:", kinds)
    assert kinds[:4] == [
        "RequestResource",
        "RequestInformation",
        "RequestResource",
        "RequestResource",
    ]
    for expected in (
        "ResponseToRequestResource",
        "RequisitionResource",
        "CommitResource",
        "ReportResourceDeploymentStatus",
        "ReleaseResource",
        "ResponseToRequestInformation",
    ):
        assert expected in kinds, expected
    deployments = [m for m in messages if m.message_type == "ReportResourceDeploymentStatus"]
    assert [_find(m, "DeploymentStatus", "Value") for m in deployments] == ["EnRoute", "OnSite"]
    answer = next(m for m in messages if m.message_type == "ResponseToRequestInformation")
    assert _find(answer, "ResponseReason") == "Two bridges closed on the A2"
    recalls = [m for m in messages if _find(m, "MessageRecall") is not None]
    assert [m.message_type for m in recalls] == ["RequestResource", "ResponseToRequestResource"]
    escalation = messages[-1]
    assert escalation.message_type == "RequestResource"
    assert _find(escalation, "MessageDescription") == "Escalated to ring 1"
    ids = {m.message_id: m for m in messages}
    preceding = ids[str(_find(escalation, "PrecedingMessageID"))]
    assert _find(preceding, "Resource", "TypeStructure", "Value") == "potable-water-truck"
    assert len(ids) == len(messages), "message ids are unique"
    claim = next(m for m in messages if m.message_type == "ResponseToRequestResource")
    assert _find(claim, "ResponseType") == "Accept"
    assert _find(claim, "Amount") == "3"
    assert _find(claim, "ContactRole") == "Responder"


def test_every_message_has_its_required_elements_in_the_standards_order(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    flow = run_flow(client, world, clock)
    messages = _messages(client, world, flow.incident_id)
    for message in messages:
        assert edxl_rm.order_problems(message) == [], message.message_type
    # The check bites: a swapped pair and a missing element are both found.
    broken = edxl_rm.Message(
        "RequestResource",
        [messages[0].elements[1], messages[0].elements[0], *messages[0].elements[3:]],
    )
    problems = edxl_rm.order_problems(broken)
    assert any("out of order" in p for p in problems)
    assert any("MessageContentType missing" in p for p in problems)


def test_xml_and_json_carry_the_same_messages(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    flow = run_flow(client, world, clock)
    messages = _messages(client, world, flow.incident_id)
    response = client.get(
        f"{API}/incidents/{flow.incident_id}/edxl-rm",
        params={"format": "json"},
        headers=world.headers("manager", "nairobi"),
    )
    assert response.status_code == 200
    as_json = response.json()["messages"]
    assert as_json == [edxl_rm.to_json(m) for m in messages]
    first = as_json[0]["RequestResource"]
    assert list(first)[:3] == ["MessageID", "SentDateTime", "MessageContentType"]
    assert isinstance(first["ResourceInformation"], list)
    assert first["ResourceInformation"][0]["Resource"]["TypeStructure"] == {
        "ValueListURN": mapping.RESOURCE_LIST_URN,
        "Value": "high-capacity-pump",
    }


def test_a_request_resource_round_trips_through_import(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    flow = run_flow(client, world, clock)
    messages = _messages(client, world, flow.incident_id)
    original = messages[0]
    # Thika's manager imports Nairobi's request into its own system.
    body = edxl_rm.message_xml(original)
    thika = world.headers("manager", "thika")
    headers = {**thika, "Content-Type": "application/xml"}
    raised = ok(client.post(f"{API}/incidents/import/edxl-rm", headers=headers, content=body), 201)
    again = ok(client.post(f"{API}/incidents/import/edxl-rm", headers=headers, content=body), 200)
    assert again["id"] == raised["id"], "a second import of the same MessageID is idempotent"
    assert raised["city_id"] == world.city_ids["thika"]
    exported = _messages_of(client, thika, raised["incident_id"])
    copy = exported[0]
    for path in (
        ("Resource", "TypeStructure", "Value"),
        ("Amount",),
        ("UnitOfMeasure",),
        ("AssignmentInstructions",),
        ("ScheduleType",),
        ("DateTime",),
        ("LocationDescription",),
        ("IncidentDescription",),
    ):
        assert _find(copy, *path) == _find(original, *path), path
    keywords = lambda m: [v for n, v in _resource(m) if n == "rm:Keyword"]  # noqa: E731
    assert keywords(copy) == keywords(original)
    assert copy.message_type == original.message_type == "RequestResource"


def test_catalogue_resources_map_to_resource_types_consistently(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    flow = run_flow(client, world, clock)
    catalogue = world.executor.catalogue
    detail = ok(client.get(f"{API}/incidents/{flow.incident_id}", headers=world.headers("admin")))
    by_info_id = {edxl_rm.resource_info_id(r["id"]): r for r in detail["requests"]}
    for message in _messages(client, world, flow.incident_id):
        info = dict(dict(message.elements)["ResourceInformation"])  # type: ignore[arg-type]
        request = by_info_id[str(info["rm:ResourceInfoElementID"])]
        resource = _resource(message)
        type_value = dict(dict(resource)["rm:TypeStructure"])["rm:Value"]  # type: ignore[arg-type]
        assert type_value == request["resource"]
        entry = catalogue.get(request["resource"])
        assert entry is not None and entry.kind == request["kind"]
        assert dict(resource)["rm:Description"] == entry.description


def _messages_of(
    client: TestClient, headers: dict[str, str], incident_id: int
) -> list[edxl_rm.Message]:
    response = client.get(f"{API}/incidents/{incident_id}/edxl-rm", headers=headers)
    assert response.status_code == 200, response.text
    return [edxl_rm.tree_of(e) for e in fromstring(response.content)]


def _resource(message: edxl_rm.Message) -> list[Any]:
    info = dict(dict(message.elements)["ResourceInformation"])  # type: ignore[arg-type]
    return list(info["rm:Resource"])


def _find(message: edxl_rm.Message, *path: str) -> Any:
    """The first element whose local names end with `path` (depth-first), its text or children."""

    def walk(nodes: Any, trail: tuple[str, ...]) -> Any:
        for name, value in nodes:
            here = (*trail, name.rpartition(":")[2])
            if here[-len(path) :] == path:
                return value
            if not isinstance(value, str):
                found = walk(value, here)
                if found is not None:
                    return found
        return None

    return walk(message.elements, ())
