"""An independent, exact model of the fixed-point semantics using Fractions.

Written from the spec text in ARCHITECTURE.md, not from qspec's code: real
values are exact rationals, rounding is math.floor on them, overflow is
clipping or arithmetic modulo 2**width.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction


def fmt_range(width: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2**width - 1)


def model_quantise(value, width: int, frac: int, signed: bool, rounding: str, overflow: str) -> int:
    scaled = Fraction(value) * Fraction(2) ** frac
    code = math.floor(scaled) if rounding == "floor" else math.floor(scaled + Fraction(1, 2))
    lo, hi = fmt_range(width, signed)
    if overflow == "saturate":
        return min(max(code, lo), hi)
    return (code - lo) % 2**width + lo


def model_leaky(spec, x: int) -> int:
    """LeakyReLU of input code ``x`` for a ``qspec.leaky.LeakyReLUSpec``, exactly."""
    real = Fraction(x) / Fraction(2) ** spec.in_fmt.frac_width
    if real < 0:
        real *= spec.slope
    o = spec.out_fmt
    return model_quantise(
        real, o.width, o.frac_width, o.signed, spec.rounding.value, spec.overflow.value
    )


def model_requantise(code: int, src_frac: int, width: int, frac: int, signed: bool, rounding: str,
                     overflow: str) -> int:  # fmt: skip
    """Re-express integer ``code`` (``src_frac`` fraction bits) in a format, exactly."""
    return model_quantise(
        Fraction(code) / Fraction(2) ** src_frac, width, frac, signed, rounding, overflow
    )


def model_sum_range(in_rng, w_rng, b_rng, shift: int, terms: int) -> tuple[int, int]:
    """[min, max] of ``terms`` products x*w plus b * 2**shift, by brute force over every code
    pair when the ranges are small (else over the corners: x*w is bilinear)."""

    def values(rng):
        lo, hi = rng
        return range(lo, hi + 1) if hi - lo <= 64 else (lo, hi)

    prods = [x * w for x in values(in_rng) for w in values(w_rng)]
    return (terms * min(prods) + b_rng[0] * 2**shift, terms * max(prods) + b_rng[1] * 2**shift)


def fits(lo: int, hi: int, width: int, signed: bool) -> bool:
    rlo, rhi = fmt_range(width, signed)
    return rlo <= lo and hi <= rhi


def safe_id(value) -> str | None:
    """A pytest id without backslashes or brackets (mutmut selects tests by node id)."""
    if isinstance(value, str | bytes):
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        return re.sub(r"[^A-Za-z0-9_.,=<>' -]+", "_", text)[:60]
    return None
