"""Passwords: Argon2id hashes (argon2-cffi) and the strength rule (zxcvbn, which ships
its own dictionaries), in one place for sign-up, sign-in and the bootstrap."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from service.domain.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 256  # beyond this, hashing is work an attacker chooses for us
# zxcvbn's score: 3 is "safely unguessable: moderate protection from offline attacks".
MIN_SCORE = 3


@cache
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults are RFC 9106's second recommended profile, Argon2id.
    return PasswordHasher()


def check_strength(password: str, context: Sequence[str] = ()) -> None:
    """`Invalid` for a password that is too short, too long or guessable; `context`
    (the person's email and name) counts as guessable too."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"a password has at most {MAX_LENGTH} characters")
    verdict = zxcvbn(password, user_inputs=[c for c in context if c])
    if verdict["score"] < MIN_SCORE:
        hint = verdict["feedback"].get("warning") or "it is too easy to guess"
        raise Invalid(f"choose a less guessable password: {hint}".rstrip(": "))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


@cache
def _decoy_hash() -> str:
    """A hash to verify against when the account does not exist, so that an unknown
    account costs the same work as a known one."""
    return _hasher().hash("decoy password, never anyone's")


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: no such account or no password yet;
    the same work is done either way)."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    try:
        return _hasher().verify(stored or _decoy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher().check_needs_rehash(stored)
