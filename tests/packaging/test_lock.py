"""Reproducible installs: pyproject caps every dependency's major version, constraints.txt
pins each one to a version inside its range, and this environment runs those versions."""

from __future__ import annotations

import importlib.metadata
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.packaging.installed import ROOT

LOCK = ROOT / "constraints.txt"


def declared() -> list[Requirement]:
    """Every requirement pyproject.toml states: build, runtime and every extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lines = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *(r for extra in project["project"]["optional-dependencies"].values() for r in extra),
    ]
    return [Requirement(line) for line in lines]


def locked(text: str) -> dict[str, str]:
    """The pins of a constraints file, by canonical name; anything but `name==version` is
    an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            raise ValueError(f"line {number}: {raw!r} is not an exact pin")
        name = canonicalize_name(requirement.name)
        if name in pins:
            raise ValueError(f"line {number}: {requirement.name} is pinned twice")
        pins[name] = specs[0].version
    return pins


def caps_the_major_version(specifier: SpecifierSet) -> bool:
    return any(spec.operator in ("<", "<=", "==", "~=", "===") for spec in specifier)


def test_every_declared_dependency_caps_its_major_version() -> None:
    uncapped = [str(r) for r in declared() if not caps_the_major_version(r.specifier)]
    assert uncapped == []


def test_the_cap_check_catches_an_open_range() -> None:
    assert not caps_the_major_version(Requirement("fastapi>=0.115").specifier)
    assert not caps_the_major_version(Requirement("types-PyYAML").specifier)
    assert caps_the_major_version(Requirement("fastapi>=0.115,<1").specifier)


def test_the_lock_pins_exact_versions_once_each() -> None:
    pins = locked(LOCK.read_text())
    assert len(pins) > 30
    assert "aidmesh" not in pins, "the lock must not pin aidmesh itself"
    with pytest.raises(ValueError, match="not an exact pin"):
        locked("fastapi>=0.115\n")
    with pytest.raises(ValueError, match="pinned twice"):
        locked("PyYAML==6.0.4\npyyaml==6.0.4\n")


def test_the_lock_pins_every_runtime_and_dev_dependency_inside_its_range() -> None:
    pins = locked(LOCK.read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        Requirement(line)
        for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]
    unpinned = [str(r) for r in wanted if canonicalize_name(r.name) not in pins]
    assert unpinned == [], "run make lock"
    outside = [
        f"{r} (locked {pins[canonicalize_name(r.name)]})"
        for r in wanted
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == [], "run make lock"


def test_this_environment_runs_the_locked_versions() -> None:
    pins = locked(LOCK.read_text())
    differ = []
    for name, version in sorted(pins.items()):
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != version:
            differ.append(f"{name}: locked {version}, installed {installed}")
    assert differ == [], "make install-dev installs the locked versions"
