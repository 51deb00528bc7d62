"""Canonical signed digits: a constant as few signed powers of two as possible.

``csd(c)`` writes ``c = sum(sign * 2**shift)`` with no two adjacent non-zero
digits (the non-adjacent form), which minimises the number of non-zero digits,
so a constant multiplication costs ``len(csd(c)) - 1`` adders.
``fewest_negative(c)`` has as few non-zero digits but as few negative ones as
possible: a subtraction costs an iCE40 carry chain a LUT per bit.
"""

from __future__ import annotations

from functools import cache

Digit = tuple[int, int]  # (shift, sign) with sign in {+1, -1}


def _check(c: int) -> None:
    if isinstance(c, bool) or not isinstance(c, int):
        raise ValueError(f"c must be an int, got {c!r}")


def csd(c: int) -> list[Digit]:
    """The non-zero digits of ``c``'s non-adjacent form, lowest shift first."""
    _check(c)
    digits: list[Digit] = []
    shift = 0
    while c:
        if c & 1:
            d = 2 - (c & 3)  # +1 when c = 1 (mod 4), -1 when c = 3 (mod 4)
            digits.append((shift, d))
            c -= d
        c >>= 1
        shift += 1
    return digits


def csd_value(digits: list[Digit]) -> int:
    return sum(sign << shift for shift, sign in digits)


def fewest_negative(c: int) -> list[Digit]:
    """Digits of ``c`` as few as :func:`csd`'s, and of those the fewest negative.

    77 is ``64 + 16 - 4 + 1`` in CSD but ``64 + 8 + 4 + 1`` here: the same three
    adders, none subtracting.  Lowest shift first.
    """
    _check(c)
    best = _fewest(c, c.bit_length() + 1)
    assert best is not None
    return list(best[2])


@cache
def _fewest(n: int, left: int) -> tuple[int, int, tuple[Digit, ...]] | None:
    """(weight, negatives, digits) of the best form of ``n`` in ``left`` positions."""
    if n == 0:
        return 0, 0, ()
    if left == 0:
        return None
    options = []
    for d in (1, -1) if n & 1 else (0,):
        rest = _fewest((n - d) >> 1, left - 1)
        if rest is not None:
            w, neg, digits = rest
            shifted = tuple((s + 1, sign) for s, sign in digits)
            head = ((0, d),) if d else ()
            options.append((w + (d != 0), neg + (d < 0), head + shifted))
    return min(options, default=None)
