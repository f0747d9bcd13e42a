"""The pages that end a refused OpenID Connect sign-in speak the person's language: the
one the switcher chose (its cookie), else the browser's Accept-Language, else English; a
provider's words go in as they are."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.commands.oidc import CALLBACK_PATH
from service.sessions import SESSION_COOKIE
from service.web.languages import LANGUAGE_COOKIE, choose_language

REFUSED = f"{CALLBACK_PATH}?error=access_denied&state=whatever"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de", "de"),
        ("sw", "sw"),
        ("en", "en"),
        ("de-AT", "de"),
        ("SW-ke", "sw"),
        ("fr-FR, de;q=0.5", "de"),
        ("de;q=0.4, sw;q=0.9", "sw"),
        ("en;q=0.1, de;q=0.1", "en"),  # equal weights: the first named wins
        ("sw;q=0, de;q=0.2", "de"),  # q=0: not wanted at all
        ("sw;q=1.0, de", "sw"),
        ("*;q=1, de;q=0.5", "de"),
        ("fr, ja", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_the_most_wanted_language_aidmesh_speaks_is_chosen(
    header: str | None, expected: str
) -> None:
    assert choose_language(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        ";;;,,,",
        "de;q=",
        "de;q=abc, sw;q=0.3",
        "de;q=nan, sw;q=0.3",
        "de;q=1e3, sw;q=0.3",
        "de;q=2, sw;q=0.3",
        "de;q=-1, sw;q=0.3",
        "=,;q=0.5;;x=y",
        "\x00\xff🙂, sw",
        "sw" + ",x" * 5000,
    ],
)
def test_a_malformed_header_is_passed_over_never_an_error(header: str) -> None:
    # A weight out of form counts as not wanted; what is left of the header still counts.
    assert choose_language(header) in ("en", "sw")
    assert choose_language(header) == ("sw" if "sw" in header else "en")


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [("sw", "sw"), ("en", "en"), ("fr", "de"), ("", "de"), ("de;q=1", "de")],
)
def test_the_switchers_choice_comes_first_when_aidmesh_speaks_it(
    cookie: str, expected: str
) -> None:
    assert choose_language("de-DE,de;q=0.9", cookie) == expected


def test_a_refused_sign_in_answers_in_german(client: TestClient) -> None:
    r = client.get(REFUSED, headers={"Accept-Language": "de-AT,en;q=0.5"})
    assert r.status_code == 401
    assert '<html lang="de">' in r.text
    assert "<h1>Der Anmeldedienst hat Sie nicht angemeldet</h1>" in r.text
    assert "<p>Er antwortete mit access_denied.</p>" in r.text  # the provider's code as is
    assert ">Zurück zur Anmeldung</a>" in r.text
    assert SESSION_COOKIE not in client.cookies


def test_a_refused_sign_in_answers_in_swahili(client: TestClient) -> None:
    r = client.get(REFUSED, headers={"Accept-Language": "sw"})
    assert r.status_code == 401
    assert '<html lang="sw">' in r.text
    assert "<h1>Mtoa huduma hakukuingiza</h1>" in r.text
    assert "<p>Alijibu access_denied.</p>" in r.text
    assert ">Rudi kwenye kuingia</a>" in r.text


def test_a_refused_sign_in_answers_in_english_to_a_language_aidmesh_does_not_speak(
    client: TestClient,
) -> None:
    r = client.get(REFUSED, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert r.status_code == 401
    assert '<html lang="en">' in r.text
    assert "<h1>The provider did not sign you in</h1>" in r.text
    assert "<p>It answered access_denied.</p>" in r.text
    assert ">Back to sign-in</a>" in r.text


def test_the_switchers_cookie_outweighs_the_browsers_languages(client: TestClient) -> None:
    client.cookies.set(LANGUAGE_COOKIE, "sw")
    r = client.get(REFUSED, headers={"Accept-Language": "de"})
    assert '<html lang="sw">' in r.text
    assert "<h1>Mtoa huduma hakukuingiza</h1>" in r.text


def test_an_unnamed_provider_error_and_a_foreign_state_are_worded_too(
    client: TestClient,
) -> None:
    r = client.get(f"{CALLBACK_PATH}?error=Not+a+code!", headers={"Accept-Language": "de"})
    assert r.status_code == 401
    assert "<p>Er antwortete mit einem Fehler.</p>" in r.text
    assert "Not a code" not in r.text
    # No state cookie in this browser: the sign-in did not start here.
    r = client.get(f"{CALLBACK_PATH}?state={'A' * 43}&code=x", headers={"Accept-Language": "sw"})
    assert r.status_code == 400
    assert "<h1>Kuingia huku hakuwezi kukamilishwa</h1>" in r.text
    assert "<p>Hakukuanzia kwenye kivinjari hiki, au anwani yake ilibadilishwa." in r.text
