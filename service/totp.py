"""TOTP codes (RFC 6238, with pyotp): a new secret, its otpauth:// URI for an
authenticator app, and which time step a code belongs to. The clock is the caller's."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

ISSUER = "aidmesh"
# How a secret is stored: with a prefix the log scrubber knows (`service.logs`), so that
# it is redacted wherever a statement or a row is logged.
STORED_PREFIX = "ats_"
# A code of the step before or after the current one is accepted too (clocks drift).
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def stored(secret: str) -> str:
    return STORED_PREFIX + secret


def unstored(value: str) -> str:
    return value.removeprefix(STORED_PREFIX)


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def code_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, within the drift allowed around `now`; None
    when it is none of them. Every candidate is compared in constant time."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found: int | None = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            found = step
    return found
