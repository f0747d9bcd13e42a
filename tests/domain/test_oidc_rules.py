"""The pure rules of signing in with a provider: claims to a city and roles, the rules a
provider may hold, and where a sign-in may send the browser back to."""

from __future__ import annotations

import pytest

from service.domain.actors import Role
from service.domain.errors import Invalid
from service.domain.oidc import Mapped, MappingRule, check_rules, map_claims, safe_next_path

DISPATCH = MappingRule("groups", "dispatch", 1, (Role.RESPONDER,))
COORDINATORS = MappingRule("groups", "coordinators", 1, (Role.MANAGER,))
THIKA_VOLUNTEERS = MappingRule("groups", "volunteers", 2, (Role.OBSERVER,))
BY_DEPARTMENT = MappingRule("department", "EMS", 1, (Role.OBSERVER,))


def test_a_group_held_maps_to_its_rules_city_and_roles() -> None:
    assert map_claims([DISPATCH], {"groups": ["canteen", "dispatch"]}) == Mapped(
        1, (Role.RESPONDER,)
    )


def test_every_matching_rule_of_the_first_matching_city_adds_its_roles_in_role_order() -> None:
    claims = {"groups": ["dispatch", "coordinators", "volunteers"]}
    assert map_claims([DISPATCH, THIKA_VOLUNTEERS, COORDINATORS], claims) == Mapped(
        1, (Role.MANAGER, Role.RESPONDER)
    )
    assert map_claims([THIKA_VOLUNTEERS, DISPATCH], claims) == Mapped(2, (Role.OBSERVER,))


def test_a_plain_claim_must_equal_the_value() -> None:
    assert map_claims([BY_DEPARTMENT], {"department": "EMS"}) == Mapped(1, (Role.OBSERVER,))
    assert map_claims([BY_DEPARTMENT], {"department": "EMS-2"}) is None
    assert map_claims([BY_DEPARTMENT], {"department": ["EMS"]}) is not None


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"groups": []},
        {"groups": ["Dispatch"]},  # values are compared exactly
        {"groups": "dispatcher"},
        {"groups": [{"name": "dispatch"}]},
        {"groups": None},
    ],
)
def test_a_person_no_rule_matches_is_not_mapped(claims: dict[str, object]) -> None:
    assert map_claims([DISPATCH, COORDINATORS], claims) is None


def test_a_boolean_claim_matches_true_or_false_only() -> None:
    rule = MappingRule("staff", "true", 1, (Role.OBSERVER,))
    assert map_claims([rule], {"staff": True}) is not None
    assert map_claims([rule], {"staff": False}) is None
    assert map_claims([rule], {"staff": 1}) is None


def test_rules_name_only_the_providers_cities_and_grant_no_admin() -> None:
    check_rules([DISPATCH, COORDINATORS], {1})
    with pytest.raises(Invalid, match="not the provider's city"):
        check_rules([DISPATCH, THIKA_VOLUNTEERS], {1})
    with pytest.raises(Invalid, match="manager, responder or observer only"):
        check_rules([MappingRule("groups", "root", 1, (Role.ADMIN,))], {1})
    with pytest.raises(Invalid, match="at least one role"):
        check_rules([MappingRule("groups", "none", 1, ())], {1})


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/manage", "/manage"),
        ("/incidents/4/report", "/incidents/4/report"),
        (None, "/board"),
        ("", "/board"),
        ("https://evil.example/", "/board"),
        ("//evil.example/path", "/board"),
        ("/\\evil.example", "/board"),
        ("manage", "/board"),
        ("/manage\r\nSet-Cookie: x=y", "/board"),
        ("/" + "a" * 200, "/board"),
        ("/ünïcode", "/board"),
    ],
)
def test_a_sign_in_returns_only_to_a_path_of_this_site(asked: str | None, goes_to: str) -> None:
    assert safe_next_path(asked) == goes_to
