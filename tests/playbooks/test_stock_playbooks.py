"""Every stock playbook and the resource catalogue hold the invariants the service relies on.

These walk the shipped data files, so a new playbook or resource is checked the day it is added.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
import yaml

from playbooks import (
    ResourceKind,
    check_paths,
    load_catalogue,
    load_playbook,
    load_stock_playbooks,
    stock_dir,
)

STOCK = sorted(stock_dir().glob("*.yaml"))
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

INCIDENT_TYPES = {
    "flood",
    "earthquake",
    "wildfire",
    "heatwave",
    "winter-storm",
    "cyberattack",
    "power-grid-failure",
    "chemical-release",
}

# Resources that playbooks, the demo and the documentation name; the catalogue must keep them.
REQUIRED_RESOURCES = {
    "swift-water-rescue-team", "urban-search-and-rescue-team", "incident-management-team",
    "damage-assessor", "shelter-manager", "generator-20kw", "generator-100kw", "generator-500kw",
    "high-capacity-pump", "potable-water-truck", "mobile-cell-site", "field-hospital",
    "sandbags", "cots", "gis-analyst", "hydrological-forecast", "building-inspection-data",
    "cyber-incident-responder", "forensic-analyst", "structural-engineer", "paramedic-team",
    "ambulance", "hazmat-team", "wildland-fire-crew", "fire-engine", "water-tender",
    "chainsaw-crew", "snow-plough", "road-salt", "warming-centre", "cooling-centre",
    "mental-health-counsellor", "interpreter", "logistics-coordinator",
    "public-information-officer", "satellite-phone-kit", "water-purification-unit",
    "portable-toilets", "lighting-tower", "excavator", "drone-survey-team",
    "air-quality-monitoring", "plume-model", "power-restoration-crew", "grid-status-report",
    "evacuation-bus", "heavy-rescue-vehicle", "veterinary-team",
}  # fmt: skip


def test_there_is_one_stock_playbook_per_incident_type() -> None:
    assert {path.stem for path in STOCK} == INCIDENT_TYPES
    assert set(load_stock_playbooks()) == INCIDENT_TYPES


@pytest.mark.parametrize("path", STOCK, ids=[path.stem for path in STOCK])
def test_stock_playbook_holds_every_invariant(path: Path) -> None:
    catalogue = load_catalogue()
    playbook = load_playbook(path, catalogue)

    assert playbook.incident_type == path.stem
    assert 4 <= len(playbook.requests) <= 10
    resources = [request.resource for request in playbook.requests]
    assert len(set(resources)) == len(resources)
    kinds = set()
    for request in playbook.requests:
        resource = catalogue.get(request.resource)
        assert resource is not None, request.resource
        kinds.add(resource.kind)
        assert request.needed_within > timedelta(0)
    assert len(kinds) >= 2, f"{path.name} asks for {kinds} only"
    intervals = playbook.escalation.ring_intervals
    assert intervals == sorted(intervals), "a wider ring should not wait less than a narrower one"
    assert playbook.claim_acceptance_timeout > timedelta(0)


def test_checking_the_stock_directory_finds_no_problems() -> None:
    playbooks, problems = check_paths([stock_dir()], load_catalogue())

    assert problems == []
    assert len(playbooks) == len(STOCK)


def _raw_catalogue_ids() -> list[str]:
    # Read the file directly: the loader's own duplicate check is what is under test elsewhere.
    path = Path(stock_dir().parent, "resources.yaml")
    return [entry["id"] for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["resources"]]


def test_catalogue_has_at_least_45_resources_with_unique_slug_ids() -> None:
    ids = _raw_catalogue_ids()

    assert len(ids) >= 45
    assert len(set(ids)) == len(ids)
    assert all(SLUG.fullmatch(resource_id) for resource_id in ids)
    assert load_catalogue().ids() == ids


def test_catalogue_includes_every_required_resource() -> None:
    assert REQUIRED_RESOURCES - set(load_catalogue().ids()) == set()


def test_catalogue_uses_every_resource_kind() -> None:
    kinds = {resource.kind for resource in load_catalogue().resources}

    assert kinds == set(get_args(ResourceKind))


def test_bulk_supplies_are_counted_in_their_customary_units() -> None:
    units = {resource.id: resource.unit for resource in load_catalogue().resources}

    assert units["sandbags"] == "pallet"
    assert units["road-salt"] == "tonne"
