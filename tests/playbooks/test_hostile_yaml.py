"""Hostile YAML is refused by the parse itself: one problem saying why, in bounded time.

The same parse serves the upload route and ``aidmesh playbooks check``, so these tests hold
for both; tests/api/test_city_playbooks.py checks the HTTP answers on every backend.
"""

from __future__ import annotations

import codecs
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playbooks import (
    LIMITS,
    PlaybookError,
    PlaybookTooLarge,
    check_paths,
    load_catalogue,
    load_playbook,
    parse_playbook,
)
from tests.playbooks.hostile import BASE, BY_NAME, HOSTILE, Hostile, billion_laughs

#: Any hostile document is refused within this, on a loaded two-core machine.
PARSE_BOUND_S = 5.0  # a guard against unbounded work, not a speed figure


def _refuse(text: str) -> tuple[PlaybookError, float]:
    started = time.perf_counter()
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(text, "flood.yaml", load_catalogue())
    return caught.value, time.perf_counter() - started


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("hostile", HOSTILE, ids=[hostile.name for hostile in HOSTILE])
def test_hostile_playbook_is_refused_with_one_problem_in_bounded_time(hostile: Hostile) -> None:
    error, elapsed = _refuse(hostile.text)

    problems = error.problems
    print(f"{hostile.name}: {_size(hostile.text):,} bytes refused in {elapsed * 1000:.1f} ms")
    print(f"  {problems[0]}")
    assert len(problems) == 1, "\n".join(str(problem) for problem in problems)
    assert hostile.message in problems[0].message
    assert isinstance(error, PlaybookTooLarge) == (hostile.status == 413)
    assert elapsed < PARSE_BOUND_S


def test_slowest_hostile_document_is_refused_well_within_the_bound() -> None:
    timings = sorted(
        ((_refuse(hostile.text)[1], hostile.name) for hostile in HOSTILE), reverse=True
    )

    print(f"{len(HOSTILE)} hostile documents; the five slowest to refuse:")
    for elapsed, name in timings[:5]:
        print(f"  {elapsed * 1000:8.1f} ms  {name} ({_size(BY_NAME[name].text):,} bytes)")
    assert timings[0][0] < PARSE_BOUND_S


def test_billion_laughs_is_refused_in_milliseconds() -> None:
    text = billion_laughs(8)
    best = min(_refuse(text)[1] for _ in range(5))

    print(
        f"billion laughs: {_size(text)} bytes, 9**8 = {9**8:,} strings if expanded; "
        f"refused in {best * 1000:.2f} ms (best of 5)"
    )
    assert _size(text) < 300
    assert best < 0.05


def test_problem_points_at_the_line_of_the_first_alias_or_anchor() -> None:
    error, _ = _refuse(BASE + "base: &b {quantity: 1}\nother: *b\n")

    (problem,) = error.problems
    assert problem.line == BASE.count("\n") + 1
    assert "&b" in problem.message


def test_a_valid_playbook_near_the_byte_limit_parses_in_bounded_time() -> None:
    """The limits leave room: long notes and checklists up to the byte limit are fine."""
    notes = "n" * 500
    requests = "".join(
        f"  - {{resource: {resource}, quantity: 10000, priority: low, needed_within: 1h,"
        f" notes: {notes}}}\n"
        for resource in load_catalogue().ids()[:20]
    )
    items = "".join(f"      - {'i' * 497}{n:03}\n" for n in range(17))
    checklists = "".join(f"  - title: List {n}\n    items:\n{items}" for n in range(20))
    head = BASE.split("requests:")[0].replace("radius_km: 80", "radius_km: 19999.999999999999")
    text = f"{head}requests:\n{requests}checklists:\n{checklists}"

    started = time.perf_counter()
    playbook = parse_playbook(text, "flood.yaml", load_catalogue())
    elapsed = time.perf_counter() - started

    print(f"a valid playbook of {_size(text):,} bytes parsed in {elapsed * 1000:.1f} ms")
    assert len(playbook.requests) == 20
    assert sum(len(checklist.items) for checklist in playbook.checklists) == 20 * 17
    assert 0.9 * LIMITS.max_bytes < _size(text) <= LIMITS.max_bytes
    assert elapsed < PARSE_BOUND_S


# --- files, as the CLI reads them ---------------------------------------------------------------


def test_utf8_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "flood.yaml"
    path.write_bytes(codecs.BOM_UTF8 + BASE.encode())

    assert load_playbook(path, load_catalogue()).incident_type == "flood"


@pytest.mark.parametrize(
    ("encoding", "hint"),
    [("utf-16", "UTF-16"), ("utf-32", "UTF-32"), ("latin-1", "not valid UTF-8")],
)
def test_file_in_another_encoding_is_one_problem_naming_it(
    tmp_path: Path, encoding: str, hint: str
) -> None:
    path = tmp_path / "flood.yaml"
    path.write_bytes(BASE.replace("Nairobi's", "Nairobi Ümlaut ©").encode(encoding, "replace"))

    with pytest.raises(PlaybookError) as caught:
        load_playbook(path, load_catalogue())

    (problem,) = caught.value.problems
    print(problem)
    assert hint in problem.message
    assert "save it as UTF-8" in problem.message


def test_file_far_over_the_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "flood.yaml"
    with path.open("wb") as file:
        file.truncate(4 * 1024**3)  # sparse: 4 GiB that take no disk

    started = time.perf_counter()
    with pytest.raises(PlaybookTooLarge) as caught:
        load_playbook(path, load_catalogue())
    elapsed = time.perf_counter() - started

    (problem,) = caught.value.problems
    print(f"{problem} ({elapsed * 1000:.1f} ms)")
    assert f"limited to {LIMITS.max_bytes:,} bytes" in problem.message
    assert "4,294,967,296 bytes" in problem.message
    assert elapsed < 5  # bounded: the file is never read whole


def test_cli_check_reports_every_hostile_file_without_a_traceback(tmp_path: Path) -> None:
    for hostile in HOSTILE:
        (tmp_path / f"{hostile.name}.yaml").write_bytes(
            hostile.text.encode("utf-8", "surrogatepass")
        )
    (tmp_path / "utf16.yaml").write_bytes(BASE.encode("utf-16"))
    with (tmp_path / "sparse-4gib.yaml").open("wb") as file:
        file.truncate(4 * 1024**3)
    names = sorted(path.name for path in tmp_path.iterdir())

    started = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "service.cli", "playbooks", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - started

    print(f"aidmesh playbooks check over {len(names)} hostile files: {elapsed:.2f} s")
    print(r.stdout.strip())
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    reported = {line.split(":", 1)[0] for line in r.stderr.splitlines()}
    assert reported == {str(tmp_path / name) for name in names}
    assert f"0 playbook(s) valid, {len(names)} problem(s)" in r.stdout
    assert elapsed < 30


def test_checking_hostile_files_in_process_returns_problems_never_raises(tmp_path: Path) -> None:
    for hostile in HOSTILE:
        (tmp_path / f"{hostile.name}.yaml").write_bytes(
            hostile.text.encode("utf-8", "surrogatepass")
        )

    playbooks, problems = check_paths([tmp_path], load_catalogue())

    assert playbooks == []
    assert len(problems) == len(HOSTILE)
