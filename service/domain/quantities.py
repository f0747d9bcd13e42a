"""Quantity arithmetic of a request: what is left, and whether a claim fits."""

from __future__ import annotations

from service.domain.errors import NotEnoughRemaining


def remaining(quantity: int, claimed_quantity: int) -> int:
    return max(0, quantity - claimed_quantity)


def check_claim_fits(quantity: int, claimed_quantity: int, asked: int) -> None:
    """Raise `NotEnoughRemaining` unless `asked` more units fit in the request."""
    left = remaining(quantity, claimed_quantity)
    if asked > left:
        raise NotEnoughRemaining(asked, left)
