"""`aidmesh admin`: networks, cities and tokens can be listed, tokens revoked and cities
moved in and out of networks from the command line, as the API allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.cli import main
from service.commands.admin import actor_for_token
from service.executor import Executor
from tests.support import World


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AIDMESH_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env of the developer's


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lists_show_networks_cities_and_their_memberships(
    world: World, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "admin", "network", "list")
    assert code == 0
    kenya = next(line for line in out.splitlines() if " kenya " in line)
    assert "nairobi" in kenya and "thika" in kenya and "munich" not in kenya

    code, out, _ = _run(capsys, "admin", "city", "list")
    assert code == 0
    munich = next(line for line in out.splitlines() if " munich " in line)
    assert "DE" in munich and "alliance" in munich and "germany" in munich
    assert len([line for line in out.splitlines()[1:] if line.strip()]) == len(world.city_ids)


def test_token_list_never_shows_a_secret_and_revoke_stops_the_token(
    world: World, executor: Executor, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = world.token("responder", "thika")
    with executor.db.read() as session:
        actor = actor_for_token(session, secret, executor.clock())
    assert actor is not None and actor.token_id is not None

    code, out, _ = _run(capsys, "admin", "token", "list")
    assert code == 0
    assert secret not in out and secret[:10] in out
    line = next(line for line in out.splitlines() if line.split()[0] == str(actor.token_id))
    assert "responder" in line and "thika" in line

    code, out, _ = _run(capsys, "admin", "token", "revoke", str(actor.token_id))
    assert code == 0 and "revoked" in out
    with executor.db.read() as session:
        assert actor_for_token(session, secret, executor.clock()) is None

    _, out, _ = _run(capsys, "admin", "token", "list")
    assert not any(line.split()[0] == str(actor.token_id) for line in out.splitlines()[1:])
    _, out, _ = _run(capsys, "admin", "token", "list", "--all")
    assert any(line.split()[0] == str(actor.token_id) for line in out.splitlines()[1:])

    code, _, err = _run(capsys, "admin", "token", "revoke", "99999")
    assert code == 1 and "token 99999 not found" in err


def test_a_city_leaves_and_rejoins_a_network_by_slug(
    world: World, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _run(capsys, "admin", "network", "remove-member", "kenya", "thika")
    assert code == 0
    _, out, _ = _run(capsys, "admin", "network", "list")
    kenya = next(line for line in out.splitlines() if " kenya " in line)
    assert "thika" not in kenya

    code, _, err = _run(capsys, "admin", "network", "remove-member", "kenya", "thika")
    assert code == 1 and "not a member" in err
    code, _, err = _run(capsys, "admin", "network", "add-member", "kenya", "atlantis")
    assert code == 1 and "unknown city 'atlantis'" in err

    assert _run(capsys, "admin", "network", "add-member", "kenya", "thika")[0] == 0
    _, out, _ = _run(capsys, "admin", "network", "list")
    assert "thika" in next(line for line in out.splitlines() if " kenya " in line)


def test_a_token_is_issued_with_a_label_scopes_and_an_expiry_listed_and_rotated(
    world: World, executor: Executor, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys,
        "admin",
        "token",
        "issue",
        "--role",
        "responder",
        "--city",
        "thika",
        "--label",
        "dispatch bot",
        "--scopes",
        "claims,webhooks",
        "--expires",
        "30",
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("amk_") and "expires" in err and secret not in err
    now = datetime.now(UTC)
    with executor.db.read() as session:
        actor = actor_for_token(session, secret, now)
        assert actor is not None and actor.scopes == frozenset({"claims", "webhooks"})
        assert actor_for_token(session, secret, now + timedelta(days=30, minutes=1)) is None

    _, out, _ = _run(capsys, "admin", "token", "list")
    line = next(line for line in out.splitlines() if line.split()[0] == str(actor.token_id))
    assert "claims,webhooks" in line and "dispatch bot" in line and secret not in out
    assert f"{now + timedelta(days=30):%Y-%m-%d}" in line
    assert "expires" in out.splitlines()[0] and "last used" in out.splitlines()[0]

    code, out, err = _run(capsys, "admin", "token", "rotate", str(actor.token_id))
    assert code == 0 and "rotated" in err
    rotated = out.strip()
    with executor.db.read() as session:
        assert actor_for_token(session, secret, now) is None
        again = actor_for_token(session, rotated, now)
        assert again is not None and again.token_id == actor.token_id

    for bad in (["--scopes", "everything"], ["--expires", "400"], ["--expires", "0"]):
        argv = ["admin", "token", "issue", "--role", "observer", "--city", "thika", *bad]
        code, _, err = _run(capsys, *argv)
        assert code == 1 and err, bad
