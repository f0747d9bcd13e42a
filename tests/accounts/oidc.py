"""The test OpenID Connect provider's people and client, the mapping rules aidmesh is
given for them, and a walk through the provider's own login form (as a browser would,
without one) that ends at aidmesh's callback address."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from tests.procs import OidcProvider

CLIENT_ID = "aidmesh"
# Any password works on the provider's development login form; this one is looked for
# in aidmesh's log all the same.
PROVIDER_PASSWORD = "provider-side-orchid-58-quarry"

PEOPLE: dict[str, dict[str, Any]] = {
    # A dispatcher and a coordinator of Nairobi's emergency service, by their groups.
    "amina": {
        "email": "amina@nairobi-ems.example",
        "email_verified": True,
        "name": "Amina Otieno",
        "groups": ["nairobi-dispatch"],
    },
    "bruno": {
        "email": "bruno@nairobi-ems.example",
        "email_verified": True,
        "name": "Bruno Kamau",
        "groups": ["nairobi-dispatch", "nairobi-coordinators"],
    },
    # Known to the provider, in no group aidmesh maps.
    "zawadi": {
        "email": "zawadi@nairobi-ems.example",
        "email_verified": True,
        "name": "Zawadi Njeri",
        "groups": ["canteen"],
    },
}

RULES = [
    {"claim": "groups", "value": "nairobi-dispatch", "roles": ["responder"]},
    {"claim": "groups", "value": "nairobi-coordinators", "roles": ["manager"]},
]


def start_provider(data_dir: Path, redirect_uris: list[str]) -> tuple[OidcProvider, str]:
    """A running provider with one client for aidmesh, and that client's secret."""
    secret = secrets.token_urlsafe(24)
    provider = OidcProvider(
        data_dir,
        [{"client_id": CLIENT_ID, "client_secret": secret, "redirect_uris": redirect_uris}],
        PEOPLE,
    )
    provider.start()
    return provider, secret


def provider_body(provider: OidcProvider, secret: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "label": "Nairobi EMS",
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        **({"client_secret": secret} if secret is not None else {}),
        "rules": RULES,
        **extra,
    }


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"')


def sign_in_at_provider(authorization_url: str, login: str, callback_prefix: str) -> str:
    """Follow the provider's redirects, fill its login form, and return the address it
    sends the browser back to (aidmesh's callback, with code and state)."""
    with httpx.Client(timeout=10.0, follow_redirects=False, trust_env=False) as http:
        url = authorization_url
        for _ in range(10):
            if url.startswith(callback_prefix):
                return url
            r = http.get(url)
            if r.status_code in (302, 303):
                url = urljoin(url, r.headers["location"])
                continue
            assert r.status_code == 200, r.text[:500]
            match = _FORM_ACTION.search(r.text)
            assert match, r.text[:500]
            r = http.post(
                urljoin(url, match.group(1)),
                data={"prompt": "login", "login": login, "password": PROVIDER_PASSWORD},
            )
            assert r.status_code in (302, 303), r.text[:500]
            url = urljoin(url, r.headers["location"])
    raise AssertionError("the provider never sent the browser back")
