"""Generated bad playbooks through the parse and the CLI checker: never a crash, never slow."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings

from playbooks import Playbook, PlaybookError, check_paths, load_catalogue, parse_playbook
from tests.playbooks.yaml_strategies import bad_playbooks

#: Any generated document is parsed or refused within this.
PARSE_BOUND_S = 5.0  # a guard against unbounded work, not a speed figure


def test_generated_bad_playbooks_parse_or_fail_with_problems_in_bounded_time() -> None:
    catalogue = load_catalogue()
    timings: list[tuple[float, int, str]] = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(bad_playbooks())
    def check(text: str) -> None:
        started = time.perf_counter()
        try:
            result: Playbook | PlaybookError = parse_playbook(text, "flood.yaml", catalogue)
        except PlaybookError as exc:
            result = exc
            assert exc.problems, "a refusal names at least one problem"
        elapsed = time.perf_counter() - started
        timings.append((elapsed, len(text.encode("utf-8", "surrogatepass")), type(result).__name__))
        assert elapsed < PARSE_BOUND_S, (elapsed, text[:300])

    check()

    slowest = max(timings)
    refused = sum(kind == "PlaybookError" for _, _, kind in timings)
    print(
        f"{len(timings)} generated documents, {refused} refused; slowest "
        f"{slowest[0] * 1000:.1f} ms ({slowest[1]:,} bytes), largest "
        f"{max(size for _, size, _ in timings):,} bytes"
    )


def test_cli_check_over_generated_bad_files_reports_problems_without_a_traceback(
    tmp_path: Path,
) -> None:
    written: list[Path] = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(bad_playbooks())
    def write(text: str) -> None:
        path = tmp_path / f"generated-{len(written):03}.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        written.append(path)

    write()
    # The same files in process: what the CLI must report.
    loaded, problems = check_paths([tmp_path], load_catalogue())

    started = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "service.cli", "playbooks", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - started

    print(
        f"aidmesh playbooks check over {len(written)} generated files: {elapsed:.2f} s, "
        f"{r.stdout.strip()}"
    )
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{len(loaded)} playbook(s) valid, {len(problems)} problem(s)" in r.stdout
    assert r.returncode == (1 if problems else 0)
    assert elapsed < 60
