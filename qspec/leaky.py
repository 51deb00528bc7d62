"""LeakyReLU on fixed-point codes: the parameters and the integer semantics.

``y = x`` for ``x >= 0``; otherwise ``y = x * slope``, where the slope is
``2**-shift`` (``impl="shift"``) or a signed fixed-point constant
(``impl="mult"``).  Both branches are re-quantised into the output format
with the spec's rounding and overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .fixed import (
    MAX_WIDTH,
    FixedFormat,
    Overflow,
    Rounding,
    check_int,
    parse_enum,
    quantise,
    requantise,
)

IMPLS = ("shift", "mult")
MIN_WIDTH, MAX_LEAKY_WIDTH = 2, 32


@dataclass(frozen=True)
class LeakyReLUSpec:
    """A quantised LeakyReLU. Build it with :meth:`shift` or :meth:`mult`."""

    impl: str
    in_fmt: FixedFormat
    out_fmt: FixedFormat
    rounding: Rounding = Rounding.FLOOR
    overflow: Overflow = Overflow.SATURATE
    shift: int = 0  # impl == "shift"
    slope_fmt: FixedFormat | None = None  # impl == "mult"
    slope_code: int = 0  # impl == "mult"
    slope_requested: float | None = field(default=None, compare=False)

    @classmethod
    def shift_variant(
        cls,
        width: int,
        frac_width: int,
        shift: int,
        *,
        rounding: Rounding | str = Rounding.FLOOR,
        overflow: Overflow | str = Overflow.SATURATE,
        out_width: int | None = None,
        out_frac_width: int | None = None,
    ) -> LeakyReLUSpec:
        """Slope ``2**-shift``: an arithmetic shift, no multiplier."""
        in_fmt, out_fmt = _formats(width, frac_width, out_width, out_frac_width)
        check_int("shift", shift, 0, width)
        return cls(
            "shift",
            in_fmt,
            out_fmt,
            parse_enum(Rounding, rounding, "rounding"),
            parse_enum(Overflow, overflow, "overflow"),
            shift=shift,
        )

    @classmethod
    def mult_variant(
        cls,
        width: int,
        frac_width: int,
        slope: float | Fraction,
        *,
        slope_width: int | None = None,
        slope_frac_width: int | None = None,
        rounding: Rounding | str = Rounding.FLOOR,
        overflow: Overflow | str = Overflow.SATURATE,
        out_width: int | None = None,
        out_frac_width: int | None = None,
    ) -> LeakyReLUSpec:
        """Slope quantised (round to nearest) to ``slope_width``/``slope_frac_width``.

        Both default to the input's width and fractional width.  A slope outside
        the slope format's range is an error, never silently saturated.
        """
        in_fmt, out_fmt = _formats(width, frac_width, out_width, out_frac_width)
        sw = width if slope_width is None else slope_width
        sf = frac_width if slope_frac_width is None else slope_frac_width
        check_int("slope_width", sw, MIN_WIDTH, MAX_LEAKY_WIDTH)
        check_int("slope_frac_width", sf, -MAX_WIDTH, 2 * MAX_WIDTH)
        slope_fmt = FixedFormat(sw, sf, signed=True)
        if isinstance(slope, bool) or not isinstance(slope, int | float | Fraction):
            raise ValueError(f"slope must be a real number, got {slope!r}")
        code = quantise(Fraction(slope), slope_fmt, Rounding.NEAREST, Overflow.WRAP)
        exact = quantise(Fraction(slope), FixedFormat(MAX_WIDTH, sf), Rounding.NEAREST)
        if code != exact:
            lo, hi = slope_fmt.real(slope_fmt.min_code), slope_fmt.real(slope_fmt.max_code)
            raise ValueError(
                f"slope must be in [{float(lo)}, {float(hi)}] for slope format "
                f"{slope_fmt} (slope_width={sw}, slope_frac_width={sf}), got {slope}"
            )
        return cls(
            "mult",
            in_fmt,
            out_fmt,
            parse_enum(Rounding, rounding, "rounding"),
            parse_enum(Overflow, overflow, "overflow"),
            slope_fmt=slope_fmt,
            slope_code=code,
            slope_requested=float(slope),
        )

    @property
    def slope(self) -> Fraction:
        """The slope actually implemented (after quantisation)."""
        if self.impl == "shift":
            return Fraction(1, 1 << self.shift)
        assert self.slope_fmt is not None
        return self.slope_fmt.real(self.slope_code)

    @property
    def neg_format(self) -> FixedFormat:
        """Format of ``x * slope`` before re-quantisation (the negative branch)."""
        if self.impl == "shift":  # x >> n is the same code read with n more fraction bits
            return FixedFormat(self.in_fmt.width, self.in_fmt.frac_width + self.shift)
        assert self.slope_fmt is not None
        return FixedFormat(
            self.in_fmt.width + self.slope_fmt.width,
            self.in_fmt.frac_width + self.slope_fmt.frac_width,
        )

    def neg_product(self, x: Any, slope_code: Any = None) -> Any:
        """The exact integer product ``x * slope`` in :attr:`neg_format`."""
        if self.impl == "shift":
            return x
        return x * (self.slope_code if slope_code is None else slope_code)

    def forward(self, x: Any, slope_code: Any = None) -> Any:
        """Output code(s) for input code(s) ``x`` (int, numpy array or torch tensor)."""
        pos = requantise(x, self.in_fmt, self.out_fmt, self.rounding, self.overflow)
        neg = requantise(
            self.neg_product(x, slope_code),
            self.neg_format,
            self.out_fmt,
            self.rounding,
            self.overflow,
        )
        if isinstance(x, int):
            return pos if x >= 0 else neg
        return _where(x >= 0, pos, neg)


def _where(cond: Any, a: Any, b: Any) -> Any:
    if hasattr(cond, "numpy"):  # torch
        import torch

        return torch.where(cond, a, b)
    import numpy as np

    return np.where(cond, a, b)


def _formats(
    width: int, frac_width: int, out_width: int | None, out_frac_width: int | None
) -> tuple[FixedFormat, FixedFormat]:
    check_int("width", width, MIN_WIDTH, MAX_LEAKY_WIDTH)
    check_int("frac_width", frac_width, -MAX_WIDTH, 2 * MAX_WIDTH)
    ow = width if out_width is None else out_width
    of = frac_width if out_frac_width is None else out_frac_width
    check_int("out_width", ow, MIN_WIDTH, MAX_LEAKY_WIDTH)
    check_int("out_frac_width", of, -MAX_WIDTH, 2 * MAX_WIDTH)
    return FixedFormat(width, frac_width), FixedFormat(ow, of)
