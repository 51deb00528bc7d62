"""Digit budgets: a weight code rounded to at most ``k`` nonzero canonical signed digits.

A constant multiplication costs one adder per nonzero digit of its canonical signed-digit
(CSD, non-adjacent) form beyond the first, and a zero costs none, so limiting the digits of
every weight trades accuracy for adders directly.  The rule is defined here once, torch-free:

``round_to_digits(c, k, width)`` is the code ``r`` in the signed ``width``-bit range with
``csd_weight(r) <= k`` nearest to ``c``; of two equally near, the one nearer zero (a tie
always has one candidate on each side of ``c``, and they differ in magnitude unless ``c =
0``, which needs no digit).  ``k = 0`` means unlimited: ``c`` itself.

:func:`digit_table` is the same rule as a lookup table over every code of a width, so the
spec builder and the fake-quantised forward of QAT (which indexes it with torch) compute the
very same integers.
"""

from __future__ import annotations

from functools import cache

import numpy as np

MAX_DIGIT_WIDTH = 16  # weight codes are at most 16 bits (models.qconfig.MAX_WIDTH)


def csd_weight(c: int | np.ndarray) -> int | np.ndarray:
    """The number of nonzero digits of ``c``'s non-adjacent form (any sign; arrays too).

    NAF(c) = (c + (c >> 1)) - (c >> 1) digit-wise: its nonzero digits are the set bits
    of ``(c >> 1) ^ (c + (c >> 1))`` (arithmetic shifts, so negatives work too).
    """
    if isinstance(c, np.ndarray):
        c = c.astype(np.int64)
        return np.bitwise_count((c >> 1) ^ (c + (c >> 1))).astype(np.int64)
    return ((c >> 1) ^ (c + (c >> 1))).bit_count()


def _check(width: int, max_digits: int) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_DIGIT_WIDTH:
        raise ValueError(f"width must be an integer in [1, {MAX_DIGIT_WIDTH}], got {width!r}")
    if (
        isinstance(max_digits, bool)
        or not isinstance(max_digits, int)
        or not 0 <= max_digits <= MAX_DIGIT_WIDTH
    ):
        raise ValueError(
            f"max_digits must be an integer in [0, {MAX_DIGIT_WIDTH}], got {max_digits!r}"
        )


@cache
def digit_table(width: int, max_digits: int) -> np.ndarray:
    """``table[c - min_code]`` = :func:`round_to_digits` of every signed ``width``-bit code
    ``c`` (read-only int64, ``2**width`` entries)."""
    _check(width, max_digits)
    lo = -(1 << (width - 1))
    codes = np.arange(lo, -lo, dtype=np.int64)
    if max_digits == 0:
        table = codes
    else:
        ok = codes[csd_weight(codes) <= max_digits]  # ascending; holds 0 (no digit)
        hi_i = np.searchsorted(ok, codes, side="left")  # first allowed >= c
        above = ok[np.minimum(hi_i, len(ok) - 1)]
        below = ok[np.maximum(hi_i - 1, 0)]
        below = np.where(above == codes, above, below)  # c allowed: both sides are c
        above = np.where(above < codes, below, above)  # nothing allowed above c
        below = np.where(below > codes, above, below)  # nothing allowed below c
        d_lo, d_hi = codes - below, above - codes
        # nearer wins; a tie goes to the smaller magnitude
        take_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (np.abs(above) < np.abs(below)))
        table = np.where(take_hi, above, below)
    table.setflags(write=False)
    return table


def round_to_digits(c: int, max_digits: int, width: int) -> int:
    """The signed ``width``-bit code nearest ``c`` with at most ``max_digits`` nonzero CSD
    digits (ties: nearer zero; 0: unlimited).  ``c`` must be a ``width``-bit code."""
    lo = -(1 << (width - 1))
    if not lo <= c < -lo:
        raise ValueError(f"c must be a signed {width}-bit code, got {c!r}")
    return int(digit_table(width, max_digits)[c - lo])


def round_codes(codes: np.ndarray, max_digits: int, width: int) -> np.ndarray:
    """:func:`round_to_digits` of an integer array of signed ``width``-bit codes."""
    codes = np.asarray(codes, dtype=np.int64)
    if max_digits == 0:
        return codes
    return digit_table(width, max_digits)[codes + (1 << (width - 1))]
