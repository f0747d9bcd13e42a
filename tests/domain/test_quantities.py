"""Quantity arithmetic: what is left of a request, and whether a claim fits."""

from __future__ import annotations

import pytest

from service.domain.errors import Conflict, NotEnoughRemaining
from service.domain.quantities import check_claim_fits, remaining


@pytest.mark.parametrize(
    ("quantity", "claimed", "expected"),
    [(4, 0, 4), (4, 1, 3), (4, 4, 0), (1, 0, 1), (10_000, 9_999, 1)],
)
def test_remaining_is_what_is_not_yet_claimed(quantity: int, claimed: int, expected: int) -> None:
    assert remaining(quantity, claimed) == expected


def test_remaining_is_never_negative() -> None:
    assert remaining(4, 5) == 0


def test_a_claim_for_exactly_what_is_left_fits() -> None:
    check_claim_fits(4, 1, 3)
    check_claim_fits(1, 0, 1)


def test_second_claimer_is_refused_when_nothing_remains() -> None:
    with pytest.raises(NotEnoughRemaining) as caught:
        check_claim_fits(4, 4, 1)
    assert (caught.value.asked, caught.value.remaining) == (1, 0)
    assert isinstance(caught.value, Conflict)


def test_refusal_says_how_much_is_left() -> None:
    with pytest.raises(NotEnoughRemaining) as caught:
        check_claim_fits(4, 3, 2)
    assert caught.value.detail == "cannot claim 2: only 1 left unclaimed on this request"


def test_a_claim_fits_exactly_when_it_is_no_more_than_what_is_left() -> None:
    for quantity in range(1, 9):
        for claimed in range(quantity + 1):
            for asked in range(1, 12):
                left = quantity - claimed
                if asked <= left:
                    check_claim_fits(quantity, claimed, asked)
                else:
                    with pytest.raises(NotEnoughRemaining) as caught:
                        check_claim_fits(quantity, claimed, asked)
                    assert (caught.value.asked, caught.value.remaining) == (asked, left)


def test_an_over_claimed_request_fits_nothing_more() -> None:
    with pytest.raises(NotEnoughRemaining) as caught:
        check_claim_fits(4, 6, 1)
    assert caught.value.remaining == 0
