"""First start (issue #19, part 6): `aidmesh admin bootstrap --email` creates the first
admin account with a one-time link to choose its password, printed once; it still
issues a token for scripts without `--email`; and `aidmesh serve` says how to sign in."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.cli import _how_to_sign_in, main
from tests.accounts.people import API, PASSWORD
from tests.api.test_cli_admin import cli_env
from tests.support import World

__all__ = ["cli_env"]  # the fixture, shared with the other command-line tests


def test_bootstrap_creates_the_first_admin_whose_link_works_once(
    world: World, cli_env: None, capsys: pytest.CaptureFixture[str], client: TestClient
) -> None:
    assert main(["admin", "bootstrap", "--email", "Root@Network.example", "--name", "Root"]) == 0
    out = capsys.readouterr().out
    assert "root@network.example" in out
    found = re.search(r"/board#signup=(ami_[A-Za-z0-9_-]+)", out)
    assert found, out
    code = found.group(1)
    # Only one first admin.
    assert main(["admin", "bootstrap", "--email", "second@network.example"]) == 1
    assert "exists already" in capsys.readouterr().err
    r = client.post(f"{API}/auth/sign-up", json={"code": code, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert (
        client.post(f"{API}/auth/sign-up", json={"code": code, "password": PASSWORD}).status_code
        == 404
    )
    r = client.post(
        f"{API}/auth/sign-in", json={"email": "root@network.example", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["role"], r.json()["city_id"], r.json()["display_name"]) == (
        "admin",
        None,
        "Root",
    )


def test_bootstrap_without_an_email_still_prints_a_token_for_scripts(
    world: World, cli_env: None, capsys: pytest.CaptureFixture[str], client: TestClient
) -> None:
    assert main(["admin", "bootstrap"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("amk_")
    me = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["role"], me["user_id"]) == ("admin", None)


def test_an_email_that_is_not_one_is_refused(
    world: World, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["admin", "bootstrap", "--email", "x"]) == 1
    assert "email" in capsys.readouterr().err


def test_serve_says_how_to_sign_in() -> None:
    first = _how_to_sign_in("http://127.0.0.1:8000", has_account=False)
    assert "aidmesh admin bootstrap --email" in first
    later = _how_to_sign_in("http://127.0.0.1:8000", has_account=True)
    assert later == "Sign in at http://127.0.0.1:8000/board with your email and password."
