"""Input and output shapes of sign-in providers (OpenID Connect) and their mapping rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from service.models import Id, Input, Output, _Clean

ClaimName = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_:./-]+$"),
]
ClaimValue = Annotated[
    str, Field(strict=True), StringConstraints(min_length=1, max_length=300), _Clean
]
IssuerUrl = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=8, max_length=500, pattern=r"^https?://[^\s?#]+$"),
]
ClientId = Annotated[
    str, Field(strict=True), StringConstraints(min_length=1, max_length=300), _Clean
]
ClientSecret = Annotated[
    str, Field(strict=True), StringConstraints(min_length=1, max_length=500), _Clean
]
ProviderLabel = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True),
    _Clean,
]
GrantedRole = Literal["manager", "responder", "observer"]


class MappingRuleIn(Input):
    claim: ClaimName = Field(description="The claim to look at, e.g. `groups`, `roles`, `email`.")
    value: ClaimValue = Field(
        description="The value it must have (or, for a list claim, hold): a group's name or id."
    )
    city_id: Id | None = Field(
        default=None,
        description="The city it maps to: a city's provider maps to its own city (the default);"
        " a network's to one of its member cities (required).",
    )
    roles: list[GrantedRole] = Field(min_length=1, max_length=3)


class SignInProviderPut(Input):
    label: ProviderLabel = Field(description="The button's words: 'Sign in with <label>'.")
    issuer: IssuerUrl = Field(
        description="The provider's issuer; its discovery document is at"
        " <issuer>/.well-known/openid-configuration. https, except on a loopback host."
    )
    client_id: ClientId
    client_secret: ClientSecret | None = Field(
        default=None,
        description="Needed when the provider is first set; left out later, the stored one is"
        " kept. Never answered.",
    )
    rules: list[MappingRuleIn] = Field(default_factory=list, max_length=50)


class MappingRulePublic(Output):
    claim: str
    value: str
    city_id: int
    roles: list[str]


class SignInProviderPublic(Output):
    id: int
    city_id: int | None
    network_id: int | None
    label: str
    issuer: str
    client_id: str
    client_secret_set: bool = Field(description="A secret is stored (it is never answered).")
    rules: list[MappingRulePublic]
    redirect_uri: str = Field(description="Register this as the client's redirect URI.")
    created_at: datetime
    updated_at: datetime


class SignInProviderButton(Output):
    id: int
    label: str
    start_url: str
