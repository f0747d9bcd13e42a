"""Input and output shapes of accounts: people, invitations, sign-in and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from service.models import Email, Id, Input, Name, Output, RoleName, StrictBool

# Long enough for any passphrase; the strength rule says what is too short.
Password = Annotated[str, Field(strict=True), StringConstraints(min_length=1, max_length=256)]
InviteCode = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$"),
]
Roles = Annotated[list[RoleName], Field(min_length=1, max_length=4)]


class PersonInvite(Input):
    email: Email
    display_name: Name
    roles: Roles
    city_id: Id | None = None


class PersonUpdate(Input):
    display_name: Name | None = None
    roles: Roles | None = None
    disabled: StrictBool | None = None


class PersonPublic(Output):
    id: int
    email: str
    display_name: str
    city_id: int | None
    roles: list[str]
    disabled: bool
    # False until the person has used their invitation and chosen a password.
    signed_up: bool
    # The TOTP second factor is on (its secret is never answered after enrolment).
    totp_enabled: bool = False
    created_at: datetime
    updated_at: datetime


class PersonInvited(PersonPublic):
    invite_code: str = Field(description="The one-time sign-up code. Shown once.")
    invite_url: str = Field(description="The sign-up page with the code, to send the person.")
    invite_expires_at: datetime


class SignUp(Input):
    code: InviteCode
    password: Password


TotpCode = Annotated[
    str, Field(strict=True), StringConstraints(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")
]


class SignIn(Input):
    email: Email
    password: Password
    code: TotpCode | None = Field(
        default=None,
        description="The current code of your authenticator app, if your second factor is on.",
    )


class TotpCodeBody(Input):
    code: TotpCode


class TotpEnrolment(Output):
    secret: str = Field(description="The base32 secret. Shown this once.")
    otpauth_uri: str = Field(description="The same secret as an otpauth:// URI for an app.")


class ManagersNeedTotp(Input):
    required: StrictBool


class SessionStarted(Output):
    user_id: int
    display_name: str
    role: str
    roles: list[str]
    city_id: int | None
    csrf_token: str = Field(description="Send it back as X-CSRF-Token on every write.")
    enrol_only: bool = Field(
        default=False,
        description="The city requires a second factor and this person has none yet: "
        "the session may only enrol one (POST /auth/totp/enrol, then /auth/totp/confirm).",
    )


class SignedOut(Output):
    sessions_ended: int


class PasswordChange(Input):
    current_password: Password
    new_password: Password = Field(
        description="At least 12 characters and hard to guess, as at sign-up."
    )


class PasswordChanged(Output):
    other_sessions_ended: int = Field(description="Your other sessions, now signed out.")
