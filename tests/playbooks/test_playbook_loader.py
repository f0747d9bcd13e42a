"""The loader: line-accurate problems, all of them at once, and playbooks fit for an API."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from playbooks import (
    Catalogue,
    Playbook,
    PlaybookError,
    Problem,
    check_paths,
    load_catalogue,
    load_playbook,
    load_stock_playbooks,
    parse_playbook,
    stock_dir,
)

VALID = """\
incident_type: flood
title: Riverine or flash flood
description: Rivers over their banks.
default_severity: severe
escalation:
  ring0_radius_km: 50
  ring_intervals: [30m, 2h]
claim_acceptance_timeout: 20m
requests:
  - resource: sandbags
    quantity: 40
    priority: high
    needed_within: 6h
  - resource: hydrological-forecast
    quantity: 1
    priority: critical
    needed_within: 90m
    notes: Gauges upstream of the city.
  - resource: swift-water-rescue-team
    quantity: 2
    priority: critical
    needed_within: 2h
checklists:
  - title: Situation
    items: [River gauge levels at affected stations]
"""


def _catalogue_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "resources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_playbook_parses_with_durations_as_timedeltas() -> None:
    playbook = parse_playbook(VALID, "flood.yaml", load_catalogue())

    assert playbook.escalation.ring_intervals == [timedelta(minutes=30), timedelta(hours=2)]
    assert playbook.claim_acceptance_timeout == timedelta(minutes=20)
    assert playbook.requests[1].needed_within == timedelta(minutes=90)
    assert playbook.requests[0].notes is None
    assert playbook.checklists[0].items == ["River gauge levels at affected stations"]


def test_unknown_resource_is_reported_with_line_and_close_matches() -> None:
    text = VALID.replace("resource: swift-water-rescue-team", "resource: swift-water-rescue")

    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "flood.yaml", load_catalogue())

    assert [str(problem) for problem in caught.value.problems] == [
        "flood.yaml:19: requests[2].resource: unknown resource 'swift-water-rescue' "
        "(did you mean: swift-water-rescue-team?)"
    ]


def test_unknown_resource_with_nothing_similar_says_it_is_not_catalogued() -> None:
    text = VALID.replace("resource: sandbags", "resource: unicorns")

    with pytest.raises(PlaybookError, match="unknown resource 'unicorns' \\(not in the resource"):
        parse_playbook(text, "flood.yaml", load_catalogue())


def test_every_problem_in_a_file_is_reported_at_once_in_line_order() -> None:
    text = (
        VALID.replace("resource: swift-water-rescue-team", "resource: swift-water-rescue")
        .replace("needed_within: 90m", "needed_within: 90 minutes")
        .replace("default_severity: severe", "default_severity: severe\nowner: duty officer")
        .replace("    priority: high\n", "    priorty: high\n")
    )

    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "flood.yaml", load_catalogue())

    assert [(problem.line, problem.location) for problem in caught.value.problems] == [
        (5, "owner"),
        (11, "requests[0].priority"),  # missing, placed on its request
        (13, "requests[0].priorty"),
        (18, "requests[1].needed_within"),
        (20, "requests[2].resource"),
    ]
    messages = [problem.message for problem in caught.value.problems]
    assert messages[1] == "missing required key 'priority'"
    assert messages[2] == "unknown key 'priorty' (did you mean: priority?)"


def test_unquoted_yes_or_no_as_a_key_is_explained_on_its_mapping() -> None:
    text = VALID.replace("    quantity: 40\n", "    quantity: 40\n    no: 3\n")

    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "flood.yaml", load_catalogue())

    (problem,) = caught.value.problems
    assert (problem.line, problem.location) == (10, "requests[0]")
    assert problem.message.startswith("key False is not a string")


def test_playbook_error_is_a_value_error_listing_each_problem_on_its_own_line() -> None:
    problems = [
        Problem("flood.yaml", 3, "title", "first"),
        Problem("flood.yaml", None, "", "second"),
    ]

    error = PlaybookError(problems)

    assert isinstance(error, ValueError)
    assert error.problems == problems
    assert str(error) == "flood.yaml:3: title: first\nflood.yaml: second"


def test_non_mapping_top_level_is_a_problem() -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook("just a sentence\n", "note.yaml", load_catalogue())

    assert str(caught.value) == (
        "note.yaml:1: expected a mapping of keys at the top level, got a string"
    )


def test_yaml_syntax_error_carries_the_line_of_the_yaml_mark() -> None:
    text = VALID.replace("  ring_intervals: [30m, 2h]", "  ring_intervals: [30m, 2h")

    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "flood.yaml", load_catalogue())

    (problem,) = caught.value.problems
    assert problem.message.startswith("invalid YAML:")
    assert problem.line == 8  # where the parser noticed the list never closed


def test_load_playbook_names_the_file_and_accepts_a_matching_stem(tmp_path: Path) -> None:
    path = tmp_path / "flood.yaml"
    path.write_text(VALID, encoding="utf-8")

    assert load_playbook(path, load_catalogue()).incident_type == "flood"

    mismatched = tmp_path / "floods.yaml"
    mismatched.write_text(VALID, encoding="utf-8")
    with pytest.raises(PlaybookError, match=r"floods\.yaml:1: incident_type: incident type"):
        load_playbook(mismatched, load_catalogue())


def test_file_that_is_not_utf8_is_a_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "flood.yaml"
    path.write_bytes(VALID.replace("Rivers over", "Flüsse über").encode("latin-1"))

    with pytest.raises(PlaybookError) as caught:
        load_playbook(path, load_catalogue())

    assert [(problem.line, problem.message) for problem in caught.value.problems] == [
        (3, "not valid UTF-8 text; save it as UTF-8")
    ]


def test_json_dump_renders_durations_as_playbook_strings() -> None:
    playbook = parse_playbook(VALID, "flood.yaml", load_catalogue())

    dumped = playbook.model_dump(mode="json")

    assert dumped["escalation"]["ring_intervals"] == ["30m", "2h"]
    assert dumped["claim_acceptance_timeout"] == "20m"
    assert [request["needed_within"] for request in dumped["requests"]] == ["6h", "90m", "2h"]
    assert Playbook.model_validate(json.loads(json.dumps(dumped))) == playbook


def test_every_stock_playbook_survives_a_json_round_trip() -> None:
    for playbook in load_stock_playbooks().values():
        assert Playbook.model_validate_json(playbook.model_dump_json()) == playbook


def test_python_dump_keeps_timedeltas() -> None:
    playbook = parse_playbook(VALID, "flood.yaml", load_catalogue())

    assert playbook.model_dump()["claim_acceptance_timeout"] == timedelta(minutes=20)


def test_json_schema_describes_durations_as_strings() -> None:
    schema = Playbook.model_json_schema(mode="serialization")

    timeout = schema["properties"]["claim_acceptance_timeout"]
    assert timeout["type"] == "string"
    assert timeout["pattern"] == "^[0-9]+[smhd]$"


def test_playbooks_built_in_code_are_validated_too() -> None:
    playbook = parse_playbook(VALID, "flood.yaml", load_catalogue())
    data = playbook.model_dump()
    data["claim_acceptance_timeout"] = timedelta(0)

    with pytest.raises(ValidationError, match="positive"):
        Playbook.model_validate(data)
    with pytest.raises(ValidationError, match="frozen"):
        playbook.title = "Changed"  # type: ignore[misc]


def test_default_catalogue_is_read_once_and_shared() -> None:
    assert load_catalogue() is load_catalogue()


def test_catalogue_lookups() -> None:
    catalogue = load_catalogue()

    resource = catalogue.get("generator-100kw")
    assert resource is not None
    assert resource.kind == "infrastructure"
    assert catalogue.get("generator-100") is None
    assert "gis-analyst" in catalogue
    assert "gis" not in catalogue
    assert len(catalogue) == len(catalogue.ids())
    assert catalogue.close_matches("generator-100") == [
        "generator-100kw",
        "generator-500kw",
        "generator-20kw",
    ]
    assert catalogue.close_matches("generator-100", n=1) == ["generator-100kw"]


def test_catalogue_with_a_duplicate_id_reports_the_second_one(tmp_path: Path) -> None:
    path = _catalogue_file(
        tmp_path,
        """\
resources:
  - id: cots
    kind: infrastructure
    unit: unit
    description: Folding cot.
  - id: cots
    kind: infrastructure
    unit: unit
    description: Another folding cot.
""",
    )

    with pytest.raises(PlaybookError) as caught:
        load_catalogue(path)

    assert [str(problem) for problem in caught.value.problems] == [
        f"{path}:6: resources[1].id: duplicate resource id 'cots' (first at line 2)"
    ]


def test_catalogue_entries_are_validated_with_lines(tmp_path: Path) -> None:
    path = _catalogue_file(
        tmp_path,
        """\
resources:
  - id: cots
    kind: equipment
    unit: unit
    description: Folding cot.
    weight_kg: 9
""",
    )

    with pytest.raises(PlaybookError) as caught:
        load_catalogue(path)

    assert [(problem.line, problem.location) for problem in caught.value.problems] == [
        (3, "resources[0].kind"),
        (6, "resources[0].weight_kg"),
    ]


def test_catalogue_built_in_code_refuses_duplicate_ids() -> None:
    cot = {"id": "cots", "kind": "infrastructure", "unit": "unit", "description": "Folding cot."}

    with pytest.raises(ValidationError, match="duplicate resource ids: cots"):
        Catalogue.model_validate({"resources": [cot, cot]})


def test_stock_playbooks_against_a_smaller_catalogue_report_every_file() -> None:
    full = load_catalogue()
    small = Catalogue(resources=[full.get("sandbags")])  # type: ignore[list-item]

    with pytest.raises(PlaybookError) as caught:
        load_stock_playbooks(small)

    sources = {Path(problem.source).stem for problem in caught.value.problems}
    assert sources == {path.stem for path in stock_dir().glob("*.yaml")}


def test_check_paths_returns_good_playbooks_and_the_problems_of_the_rest(tmp_path: Path) -> None:
    (tmp_path / "flood.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "wildfire.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a playbook", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing.yaml"

    playbooks, problems = check_paths([tmp_path, empty, missing], load_catalogue())

    assert [playbook.incident_type for playbook in playbooks] == ["flood"]
    assert [(Path(problem.source).name, problem.line) for problem in problems] == [
        ("wildfire.yaml", 1),
        ("empty", None),
        ("missing.yaml", None),
    ]
    assert problems[1].message == "no *.yaml playbooks in directory"
    assert problems[2].message == "no such file or directory"


def test_check_paths_accepts_single_files() -> None:
    playbooks, problems = check_paths([stock_dir() / "flood.yaml"], load_catalogue())

    assert problems == []
    assert [playbook.incident_type for playbook in playbooks] == ["flood"]
