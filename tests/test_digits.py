"""qspec.digits: the digit-budget rounding, exhaustively against an independent reference.

The reference counts digits differently (the fewest signed powers of two summing to a value,
by breadth-first search -- the CSD weight is that minimum) and rounds differently (search
outward from each code, the side nearer zero first), over every code of every width <= 16 and
every budget 1..16.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl.arith.csd import csd
from qspec.digits import csd_weight, digit_table, round_codes, round_to_digits


def min_signed_digits(bits: int) -> np.ndarray:
    """``dist[v + off]``: the fewest terms +-2^i summing to v, for |v| < 2^(bits+1)."""
    off = 1 << (bits + 1)
    dist = np.full(2 * off + 1, 99, dtype=np.int64)
    dist[off] = 0
    frontier = np.array([0])
    step = 0
    while frontier.size:
        step += 1
        nxt = []
        for i in range(bits + 2):
            for s in (1 << i, -(1 << i)):
                v = frontier + s
                v = v[(v >= -off) & (v <= off)]
                nxt.append(v[dist[v + off] > step])
        frontier = np.unique(np.concatenate(nxt))
        dist[frontier + off] = step
    return dist


DIST = min_signed_digits(16)
OFF = 1 << 17


def reference_round(width: int, k: int) -> np.ndarray:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    codes = np.arange(lo, hi + 1)
    out = np.empty_like(codes)
    todo = np.ones(codes.size, dtype=bool)
    d = 0
    while todo.any():
        idx = np.flatnonzero(todo)
        c = codes[idx]
        sign = np.where(c > 0, 1, -1)
        for cand in (c - sign * d, c + sign * d):  # nearer zero first: the tie rule
            ok = (cand >= lo) & (cand <= hi) & (DIST[np.clip(cand, -OFF, OFF) + OFF] <= k)
            ok &= todo[idx]
            out[idx[ok]] = cand[ok]
            todo[idx[ok]] = False
        d += 1
    return out


def test_csd_weight_is_the_fewest_signed_digits_and_hdl_csd():
    v = np.arange(-(1 << 16), 1 << 16)
    assert np.array_equal(csd_weight(v), DIST[v + OFF])
    for c in range(-(1 << 15), 1 << 15, 7):
        assert csd_weight(c) == len(csd(c))


@pytest.mark.parametrize("width", range(1, 17))
def test_round_to_digits_exhaustive(width):
    lo = -(1 << (width - 1))
    codes = np.arange(lo, -lo)
    assert np.array_equal(digit_table(width, 0), codes)  # 0: unlimited
    for k in range(1, 17):
        want = reference_round(width, k)
        got = digit_table(width, k)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (
            f"w={width} k={k}: code {codes[bad[0]]} -> {got[bad[0]]}, want {want[bad[0]]}"
        )
        assert np.all(csd_weight(got) <= k)
        assert np.array_equal(round_codes(codes, k, width), want)


def test_examples_and_errors():
    assert round_to_digits(7, 1, 4) == 4  # 8 is out of the 4-bit range
    assert round_to_digits(7, 1, 5) == 8
    assert round_to_digits(6, 1, 5) == 4  # tie 4 | 8: nearer zero
    assert round_to_digits(-6, 1, 5) == -4
    assert round_to_digits(11, 2, 6) == 10  # tie 10 | 12: nearer zero
    assert round_to_digits(-8, 1, 4) == -8
    with pytest.raises(ValueError, match="max_digits"):
        digit_table(8, 17)
    with pytest.raises(ValueError, match="signed 4-bit code"):
        round_to_digits(8, 1, 4)
