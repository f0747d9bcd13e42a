"""Deliberately broken playbooks prove that each check bites and points at the right line.

Each fixture in ``fixtures/broken`` states in its header the one problem it must produce:
``# expect-line:`` (a number, or ``none``) and ``# expect-message:`` (a substring of the
problem as printed). Exactly one problem is expected, so a check that fires twice, or drags
a second problem along with it, fails too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from playbooks import PlaybookError, check_paths, load_catalogue, load_playbook

BROKEN_DIR = Path(__file__).parent / "fixtures" / "broken"
BROKEN = sorted(BROKEN_DIR.glob("*.yaml"))
_HEADER = re.compile(r"^# expect-(line|message): (.+)$", re.MULTILINE)


def _expectation(path: Path) -> tuple[int | None, str]:
    header = dict(_HEADER.findall(path.read_text(encoding="utf-8")))
    assert {"line", "message"} <= header.keys(), f"{path.name} lacks its expect- header"
    line = None if header["line"] == "none" else int(header["line"])
    return line, header["message"]


def test_there_is_a_broken_fixture_for_each_kind_of_mistake() -> None:
    names = {path.stem for path in BROKEN}
    assert {
        "unknown-key",
        "unknown-resource",
        "bad-duration",
        "zero-quantity",
        "quantity-over-limit",
        "bad-priority",
        "yaml-syntax-error",
        "wrong-top-level-type",
        "duplicate-resource",
        "stem-mismatch",
        "billion-laughs",
        "anchor-alias",
        "long-number",
        "deep-nesting",
        "python-tag",
        "binary-tag",
        "merge-key",
        "several-documents",
    } <= names


@pytest.mark.parametrize("path", BROKEN, ids=[path.stem for path in BROKEN])
def test_broken_playbook_is_rejected_with_one_problem_on_the_expected_line(path: Path) -> None:
    line, message = _expectation(path)

    with pytest.raises(PlaybookError) as caught:
        load_playbook(path, load_catalogue())

    problems = caught.value.problems
    assert len(problems) == 1, "\n".join(str(problem) for problem in problems)
    (problem,) = problems
    assert problem.source == str(path)
    assert problem.line == line, str(problem)
    assert message in str(problem)


def test_checking_the_broken_directory_reports_every_file_and_loads_none() -> None:
    playbooks, problems = check_paths([BROKEN_DIR], load_catalogue())

    assert playbooks == []
    assert sorted({problem.source for problem in problems}) == [str(path) for path in BROKEN]
