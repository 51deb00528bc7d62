"""Canonical signed digits: a constant as few signed powers of two as possible.

``csd(c)`` writes ``c = sum(sign * 2**shift)`` with no two adjacent non-zero
digits (the non-adjacent form), which minimises the number of non-zero digits,
so a constant multiplication costs ``len(csd(c)) - 1`` adders.
"""

from __future__ import annotations

Digit = tuple[int, int]  # (shift, sign) with sign in {+1, -1}


def csd(c: int) -> list[Digit]:
    """The non-zero digits of ``c``'s non-adjacent form, lowest shift first."""
    if isinstance(c, bool) or not isinstance(c, int):
        raise ValueError(f"c must be an int, got {c!r}")
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
