"""The pages' message catalogues (service/web/static/i18n-*.json), without a browser.

German and Swahili have every English key, with the same placeholders, and no other; every
key a script asks for with t("…") is in the English catalogue, and every English key is
asked for (by name, or under a prefix a script builds keys from) or named by the pages the
server words itself (routes_oidc_flow.py); the labels keyed by a domain value cover exactly
the domain's values.
"""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path
from typing import Any

import pytest

from playbooks.loader import load_catalogue, load_stock_playbooks
from service import edge
from service.api import routes_oidc_flow
from service.api.errors import ERROR_RESPONSES
from service.domain import errors as de
from service.domain.actors import Role
from service.web.pages import PAGES
from service.web.routes import STATIC_DIR
from service.web.vocabulary import vocabulary

LANGUAGES = ("de", "sw")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Plural forms a catalogue may give (Intl.PluralRules' categories); "other" is required.
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}
SCRIPTS = sorted(STATIC_DIR.glob("*.js"))
# t("key"), tOr("key", …), has("key"): a key asked for by name.
NAMED = re.compile(r"""(?<![\w.])(?:t|tOr|has)\(\s*"([^"]+)\"""")
# t(`prefix.${…}`): keys built from a value; the prefix names them.
BUILT = re.compile(r"""(?<![\w.])(?:t|tOr|has)\(\s*`([^`$]*)\$\{""")
# A key written as a plain string elsewhere (a table of keys, a ternary inside t()).
LITERAL = re.compile(r""""([a-z][a-z0-9_]*(?:\.[a-z0-9_-]+)+)\"""")
# The shell's static strings: data-i18n="key" in shell.html, and the navigation's keys.
SHELL_KEY = re.compile(r"""data-i18n(?:-label)?="([^"$]+)\"""")
# Python modules that word pages on the server, naming their keys as literals (LITERAL).
SERVER_WORDED = [Path(routes_oidc_flow.__file__)]


def catalogue(code: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((STATIC_DIR / f"i18n-{code}.json").read_text("utf-8"))
    return loaded


def placeholders(value: Any) -> set[str]:
    """A message's placeholders; of a plural message, every form's."""
    texts = value.values() if isinstance(value, dict) else [value]
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


def source() -> str:
    return "\n".join(path.read_text("utf-8") for path in SCRIPTS)


ENGLISH = catalogue("en")


@pytest.mark.parametrize("code", LANGUAGES)
def test_a_catalogue_has_every_english_key_and_no_other(code: str) -> None:
    other = catalogue(code)
    assert sorted(set(ENGLISH) - set(other)) == [], f"{code} lacks these"
    assert sorted(set(other) - set(ENGLISH)) == [], f"{code} has these English does not"


@pytest.mark.parametrize("code", ("en", *LANGUAGES))
def test_every_message_is_text_or_plural_forms_with_the_english_placeholders(code: str) -> None:
    for key, value in catalogue(code).items():
        if isinstance(value, dict):
            assert "other" in value and set(value) <= PLURAL_FORMS, (code, key, value)
            assert isinstance(ENGLISH[key], dict), f"{code} {key}: plural forms, English has none"
            texts = list(value.values())
        else:
            assert not isinstance(ENGLISH[key], dict), f"{code} {key}: English has plural forms"
            texts = [value]
        assert all(isinstance(text, str) for text in texts), (code, key)
        assert placeholders(value) == placeholders(ENGLISH[key]), (code, key, value)


def test_every_message_but_a_deliberate_blank_says_something() -> None:
    blanks = {
        code: sorted(k for k, v in catalogue(code).items() if isinstance(v, str) and not v.strip())
        for code in ("en", *LANGUAGES)
    }
    # German says "gestellt vor 4:05": nothing comes after the running clock.
    assert blanks == {"en": [], "de": ["views.raised_after"], "sw": []}


def test_every_key_a_script_names_is_in_the_english_catalogue() -> None:
    named = set(NAMED.findall(source()))
    assert len(named) > 300
    assert sorted(named - set(ENGLISH)) == []


def server_keys() -> set[str]:
    """The keys the server-worded pages name: their literals that look like a key."""
    text = "\n".join(path.read_text("utf-8") for path in SERVER_WORDED)
    return set(LITERAL.findall(text))


def test_every_key_the_server_names_is_in_the_english_catalogue() -> None:
    named = {key for key in server_keys() if key.startswith("signin_result.")}
    assert len(named) > 10
    assert sorted(named - set(ENGLISH)) == []


def test_every_english_key_is_used_by_a_script_the_shell_or_the_server() -> None:
    text = source()
    used = set(NAMED.findall(text)) | set(LITERAL.findall(text)) | server_keys()
    prefixes = set(BUILT.findall(text))
    shell = (STATIC_DIR / "shell.html").read_text("utf-8")
    used |= set(SHELL_KEY.findall(shell))
    used |= {f"page.{page.page_id}.nav" for page in PAGES if page.nav_label}  # routes._nav
    assert "page." in prefixes and "status." in prefixes and "resource." in prefixes
    unused = sorted(
        key for key in ENGLISH if key not in used and not any(key.startswith(p) for p in prefixes)
    )
    assert unused == []


def _keys(prefix: str) -> set[str]:
    return {key.removeprefix(prefix) for key in ENGLISH if key.startswith(prefix)}


def test_the_domain_vocabulary_has_a_label_for_every_value_and_no_other() -> None:
    words = vocabulary()
    statuses = {*words["incident_statuses"], *words["request_statuses"], *words["claim_statuses"]}
    # "answered": how the pages word a released information claim and its request.
    assert _keys("status.") == statuses | {"answered"}
    assert _keys("priority.") == set(words["priorities"])
    assert _keys("severity.") == set(words["severities"])
    assert _keys("request_kind.") == set(words["request_kinds"])
    assert _keys("event_type.") == set(words["event_types"])
    assert _keys("role.") == {role.value for role in Role}


def test_the_resource_catalogue_and_stock_playbooks_have_a_label_each() -> None:
    resources = load_catalogue()
    ids = set(resources.ids())
    units = {resource.unit for resource in map(resources.get, ids) if resource is not None}
    assert _keys("resource.") == ids
    assert _keys("unit.") == units
    assert _keys("unit_name.") == units
    assert _keys("incident_type.") == set(load_stock_playbooks(resources))
    for unit in units:
        assert set(ENGLISH[f"unit.{unit}"]) == {"one", "other"}


def test_every_page_has_its_title_navigation_and_summary_as_the_table_of_pages_says() -> None:
    for page in PAGES:
        assert ENGLISH[f"page.{page.page_id}.title"] == page.title
        assert ENGLISH.get(f"page.{page.page_id}.nav") == page.nav_label
        assert ENGLISH.get(f"page.{page.page_id}.summary") == (page.summary or None)
    assert {key.split(".")[1] for key in ENGLISH if key.startswith("page.")} == {
        page.page_id for page in PAGES
    }


def test_every_error_status_the_api_documents_has_a_message() -> None:
    documented = {str(status) for status in ERROR_RESPONSES} | {"422"}
    # 0: the service could not be reached; other: a status no message names. (The
    # refusals worded by their code, "error.code.*", are checked below.)
    by_status = {key for key in _keys("error.") if not key.startswith("code.")}
    assert by_status == documented | {"0", "other"}


def test_the_catalogues_are_package_data_and_every_one_is_fetched_by_its_address() -> None:
    script = (STATIC_DIR / "i18n.js").read_text("utf-8")
    on_disk = sorted(path.name for path in STATIC_DIR.glob("i18n-*.json"))
    assert on_disk == ["i18n-de.json", "i18n-en.json", "i18n-sw.json"]
    for name in on_disk:
        assert f'fetch("/static/{name}")' in script
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8")
    assert '"service.web" = ["static/*"' in pyproject


@pytest.mark.parametrize("code", ["en", *LANGUAGES])
def test_every_error_code_the_server_answers_is_worded_in_each_catalogue(code: str) -> None:
    """The codes are collected from the domain error tree and the edge contract, so a new
    error class with a code of its own fails here until each language words it."""
    messages = catalogue(code)
    missing = [c for c in edge.error_codes() if f"error.code.{c}" not in messages]
    assert missing == [], f"i18n-{code}.json lacks error.code.* for {missing}"
    # And no message for a code the server no longer answers.
    assert _keys("error.code.") == set(edge.error_codes())


def test_the_error_codes_are_collected_from_the_domain_error_classes() -> None:
    class Novel(de.Conflict):  # a class defined now is found by the walk
        code = "novel_for_this_check"

    assert "novel_for_this_check" in edge.error_codes()
    assert "error.code.novel_for_this_check" not in ENGLISH
    del Novel
    # A class lives in a reference cycle: gone from the walk only once collected. It is
    # young, so collecting the young generations finds it without walking the whole heap
    # (a full collection late in a long test run took 25 s); the full one is the fallback.
    gc.collect(1)
    if "novel_for_this_check" in edge.error_codes():
        gc.collect()
    assert "novel_for_this_check" not in edge.error_codes()
