"""The layout promises of STYLE.md that code review alone would let slip.

- `service/domain` stays pure: no framework, database, bus, HTTP or other I/O
  imports and no `async`/`await`, so its rules are tested without a server.
- `realtime/` knows events and scopes, not the service: it imports nothing from
  `service`; the websocket edge (`realtime/`, `service/live*.py`) and the edge
  contract (`service/edge.py`) import nothing from `service.api`, the other transport.
- `service`, `realtime` and `playbooks` are also names of unrelated PyPI
  packages: each must import from this repository.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOMAIN = REPO / "service" / "domain"
OUR_PACKAGES = ("service", "realtime", "playbooks")

FORBIDDEN_IN_DOMAIN = frozenset(
    {
        "fastapi",
        "sqlmodel",
        "sqlalchemy",
        "redis",
        "httpx",
        "apscheduler",
        "starlette",
        "websockets",
        "psycopg",
        "psycopg_pool",
        "uvicorn",
        "anyio",
        # The standard library's I/O.
        "asyncio",
        "socket",
        "ssl",
        "selectors",
        "sqlite3",
        "subprocess",
    }
)
# Standard modules whose package also holds pure ones (`urllib.parse`, `http.HTTPStatus`).
FORBIDDEN_MODULES_IN_DOMAIN = ("urllib.request", "http.client", "http.server")


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module an AST imports, with its line (relative imports resolve to
    the package itself and are reported as `service.domain`)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "service.domain"))
            else:
                assert node.module is not None
                found.append((node.lineno, node.module))
    return found


def forbidden_imports(tree: ast.AST) -> list[str]:
    return [
        f"line {line}: {module}"
        for line, module in imported_modules(tree)
        if module.split(".")[0] in FORBIDDEN_IN_DOMAIN
        or any(module == m or module.startswith(m + ".") for m in FORBIDDEN_MODULES_IN_DOMAIN)
    ]


def foreign_imports(tree: ast.AST) -> list[str]:
    """Imports of anything but the standard library and the domain package itself."""
    return [
        f"line {line}: {module}"
        for line, module in imported_modules(tree)
        if module.split(".")[0] not in sys.stdlib_module_names
        and module.split(".")[0] != "__future__"
        and module != "service.domain"
        and not module.startswith("service.domain.")
    ]


def async_code(tree: ast.AST) -> list[str]:
    kinds = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)
    return [
        f"line {node.lineno}: {type(node).__name__}"
        for node in ast.walk(tree)
        if isinstance(node, kinds)
    ]


DOMAIN_FILES = sorted(DOMAIN.rglob("*.py"))


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_domain_package_has_modules_to_check() -> None:
    names = {p.name for p in DOMAIN_FILES}
    assert {"__init__.py", "claims.py", "lifecycles.py", "quantities.py", "rings.py"} <= names


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_domain_module_imports_no_framework_database_bus_or_http_client(path: Path) -> None:
    assert forbidden_imports(_parse(path)) == []


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_domain_module_imports_only_the_standard_library_and_the_domain(path: Path) -> None:
    assert foreign_imports(_parse(path)) == []


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_domain_module_has_no_async_code(path: Path) -> None:
    assert async_code(_parse(path)) == []


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy",
        "import redis.asyncio as aioredis",
        "from fastapi import HTTPException",
        "from sqlmodel import Session",
        "from starlette.requests import Request",
        "def f():\n    import httpx\n",
        "try:\n    import apscheduler\nexcept ImportError:\n    pass\n",
        "if False:\n    from websockets.sync import client\n",
        "import asyncio",
        "from urllib.request import urlopen",
        "import http.client",
        "from psycopg_pool import AsyncConnectionPool",
    ],
)
def test_the_import_check_catches_a_forbidden_import_wherever_it_hides(source: str) -> None:
    assert len(forbidden_imports(ast.parse(source))) == 1


@pytest.mark.parametrize(
    "source",
    [
        "async def f():\n    pass\n",
        "def f(x):\n    return (await x for _ in ())\n",
        "async def f(xs):\n    async for x in xs:\n        pass\n",
    ],
)
def test_the_async_check_catches_async_code(source: str) -> None:
    assert async_code(ast.parse(source)) != []


def test_the_purity_check_allows_the_standard_library_and_relative_domain_imports() -> None:
    source = (
        "from __future__ import annotations\nimport math\nfrom datetime import datetime\n"
        "from service.domain.errors import Conflict\nfrom .rings import Target\n"
    )
    assert foreign_imports(ast.parse(source)) == []
    assert foreign_imports(ast.parse("from service.persistence import tables")) != []


# -- one transport never imports the other -------------------------------------------

REALTIME_FILES = sorted((REPO / "realtime").rglob("*.py"))
WEBSOCKET_EDGE = [*REALTIME_FILES, *sorted((REPO / "service").glob("live*.py"))]
TRANSPORT_NEUTRAL = [REPO / "service" / "edge.py", REPO / "service" / "wire.py"]


def imports_of(tree: ast.AST, package: str) -> list[str]:
    """Absolute imports of `package` or any module under it (`from service import api`
    imports `service.api`)."""
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        if any(name == package or name.startswith(package + ".") for name in names):
            found.append(f"line {node.lineno}: {names[0]}")
    return found


def test_the_websocket_edge_has_files_to_check() -> None:
    names = {p.name for p in WEBSOCKET_EDGE}
    assert {"ws_endpoint.py", "gateway.py", "protocol.py", "live.py", "live_ops.py"} <= names


@pytest.mark.parametrize("path", REALTIME_FILES, ids=lambda p: p.name)
def test_realtime_imports_nothing_from_the_service(path: Path) -> None:
    assert imports_of(_parse(path), "service") == []


@pytest.mark.parametrize("path", WEBSOCKET_EDGE, ids=lambda p: p.name)
def test_the_websocket_edge_imports_nothing_from_the_rest_api(path: Path) -> None:
    assert imports_of(_parse(path), "service.api") == []


@pytest.mark.parametrize("path", TRANSPORT_NEUTRAL, ids=lambda p: p.name)
def test_the_edge_contract_imports_neither_transport(path: Path) -> None:
    tree = _parse(path)
    found = [
        *imports_of(tree, "service.api"),
        *imports_of(tree, "realtime"),
        *imports_of(tree, "fastapi"),
        *imports_of(tree, "starlette"),
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("from service.api.errors import status_for", "service.api"),
        ("import service.api", "service.api"),
        ("def f():\n    from service.api import deps\n", "service.api"),
        ("from service import api", "service.api"),
        ("from service import edge", "service"),
        ("from realtime.gateway import Viewer", "realtime"),
    ],
)
def test_the_transport_check_catches_an_import_wherever_it_hides(source: str, package: str) -> None:
    assert len(imports_of(ast.parse(source), package)) == 1


def test_the_transport_check_tells_a_package_from_a_longer_name() -> None:
    assert imports_of(ast.parse("import service_catalog\nimport realtimex"), "service") == []
    assert imports_of(ast.parse("from service.apix import y"), "service.api") == []


# -- our packages, not PyPI's ------------------------------------------------------


@pytest.mark.parametrize("name", OUR_PACKAGES)
def test_package_imports_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == REPO / name / "__init__.py"
    for location in module.__path__:
        assert Path(location).resolve() == REPO / name


@pytest.mark.parametrize("name", OUR_PACKAGES)
def test_no_installed_distribution_but_aidmesh_provides_the_package(name: str) -> None:
    providers = importlib.metadata.packages_distributions().get(name, [])
    assert set(providers) <= {"aidmesh"}, f"{name} is also installed by {providers}"


def test_packages_import_from_this_repository_outside_the_checkout(tmp_path: Path) -> None:
    # A fresh interpreter started elsewhere, as `aidmesh serve` would be, sees the
    # installed packages rather than the checkout on sys.path.
    script = (
        "import importlib, json\n"
        f"print(json.dumps({{n: importlib.import_module(n).__file__ for n in {OUR_PACKAGES!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
    )
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)
    for name in OUR_PACKAGES:
        assert Path(files[name]).resolve() == REPO / name / "__init__.py"


# -- one support module for processes, ports and scratch databases --------------------

PROCS = REPO / "tests" / "procs.py"
SUPPORT_SCOPE = ("tests", "bench")


def procs_helpers() -> frozenset[str]:
    """The names tests/procs.py defines at its top level: functions and classes."""
    tree = ast.parse(PROCS.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.ClassDef)
    return frozenset(node.name for node in tree.body if isinstance(node, kinds))


def _is_popen(node: ast.Call) -> bool:
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == "Popen") or (
        isinstance(func, ast.Name) and func.id == "Popen"
    )


def _binds_port_zero(node: ast.Call) -> bool:
    """`sock.bind((host, 0))`: asking the kernel for a free port."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "bind" and node.args):
        return False
    address = node.args[0]
    return (
        isinstance(address, ast.Tuple)
        and len(address.elts) == 2
        and isinstance(address.elts[1], ast.Constant)
        and address.elts[1].value == 0
    )


def process_helper_copies(tree: ast.AST, helpers: frozenset[str]) -> list[str]:
    """What a module does that is tests/procs.py's job: a top-level function or class
    named like one of its helpers (leading underscores aside), a subprocess.Popen, or
    a bind to port 0."""
    found = []
    body = tree.body if isinstance(tree, ast.Module) else []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name.lstrip("_") in helpers:
            found.append(f"line {node.lineno}: defines {node.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_popen(node):
            found.append(f"line {node.lineno}: starts a process with Popen")
        elif isinstance(node, ast.Call) and _binds_port_zero(node):
            found.append(f"line {node.lineno}: picks a free port")
    return found


SUPPORT_FILES = sorted(p for top in SUPPORT_SCOPE for p in (REPO / top).rglob("*.py") if p != PROCS)


def test_procs_offers_the_helpers_the_other_modules_may_not_copy() -> None:
    assert {
        "free_port",
        "start",
        "end",
        "wait_until_healthy",
        "wait_for_port",
        "RedisServer",
        "SentinelDeployment",
        "scratch_sqlite",
        "scratch_postgres",
    } <= procs_helpers()


@pytest.mark.parametrize("path", SUPPORT_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_processes_ports_and_scratch_databases_come_from_tests_procs(path: Path) -> None:
    assert process_helper_copies(_parse(path), procs_helpers()) == []


@pytest.mark.parametrize(
    "source",
    [
        "def free_port():\n    return 0\n",
        "def _free_port():\n    return 0\n",
        "class RedisServer:\n    pass\n",
        "def scratch_postgres(url):\n    yield url\n",
        "import subprocess\nsubprocess.Popen(['sleep', '1'])\n",
        "from subprocess import Popen\ndef go():\n    return Popen(['true'])\n",
        "def port(s):\n    s.bind(('127.0.0.1', 0))\n",
    ],
)
def test_the_procs_check_catches_a_copy(source: str) -> None:
    assert len(process_helper_copies(ast.parse(source), procs_helpers())) == 1


def test_the_procs_check_allows_methods_and_other_binds() -> None:
    source = (
        "class Replica:\n    def start(self):\n        pass\n    def end(self):\n        pass\n"
        "def serve(s, port):\n    s.bind(('127.0.0.1', port))\n"
        "import subprocess\nsubprocess.run(['true'], check=True)\n"
    )
    assert process_helper_copies(ast.parse(source), procs_helpers()) == []
