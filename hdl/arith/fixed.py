"""Amaranth implementations of the :mod:`qspec.fixed` operations on signals.

These mirror ``qspec.fixed`` operator for operator (shift, add half an LSB,
clip or truncate), so the hardware follows the single software definition;
the tests check them against it exhaustively.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value, signed

from qspec import fixed as sw
from qspec.fixed import FixedFormat, Overflow, Rounding

Bounds = tuple[int, int]


def shift_right(v: Value, shift: int, rounding: Rounding) -> Value:
    """``v * 2**-shift`` rounded to an integer; a negative ``shift`` is a left shift."""
    if shift <= 0:
        return v.shift_left(-shift)
    if rounding == Rounding.NEAREST:
        v = v + (1 << (shift - 1))
    return v.shift_right(shift)


def _out_of_range(v: Value, fmt: FixedFormat) -> tuple[Value, Value]:
    """``(v > fmt.max_code, v < fmt.min_code)`` from the high bits alone: LUTs, no comparator.

    The format's ends are powers of two, so ``v`` fits iff its bits from the
    format's top bit up to its own sign bit are all copies of the sign.
    """
    shape = v.shape()
    top = fmt.width - 1 if fmt.signed else fmt.width  # lowest bit that must copy the sign
    stop = shape.width - 1 if shape.signed else shape.width  # the sign bit is not among them
    neg = v[-1] if shape.signed else Const(0, 1)
    if top >= stop:  # no bits between: v cannot exceed the format on the positive side
        return Const(0, 1), (Const(0, 1) if fmt.signed else neg)
    mag = v[top:stop]
    above = ~neg & mag.any()
    return above, (neg & ~mag.all() if fmt.signed else neg)


def handle_overflow(
    v: Value, fmt: FixedFormat, overflow: Overflow, bounds: Bounds | None = None
) -> Value:
    """Fit ``v`` into ``fmt``: saturate (clip) or wrap (keep the low bits).

    ``bounds`` is a known range of ``v``: when it lies inside ``fmt`` no
    saturation logic is built (e.g. a negative input times a slope below one).
    """
    if bounds is None:
        shape = v.shape()
        bounds = (
            (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1)
            if shape.signed
            else (0, (1 << shape.width) - 1)
        )
    if overflow == Overflow.SATURATE and not (fmt.contains(bounds[0]) and fmt.contains(bounds[1])):
        lo, hi = fmt.min_code, fmt.max_code
        above, below = _out_of_range(v, fmt)
        v = Mux(above, Const(hi, fmt.width + 1), Mux(below, Const(lo, signed(fmt.width + 1)), v))
    if v.shape().width < fmt.width:
        return v  # assignment sign- or zero-extends it, which is exact (or the right wrap)
    low = v[: fmt.width]
    return low.as_signed() if fmt.signed else low


def requantise(
    v: Value,
    src: FixedFormat,
    dst: FixedFormat,
    rounding: Rounding,
    overflow: Overflow,
    bounds: Bounds | None = None,
) -> Value:
    """Re-express ``v`` (fraction bits of ``src``) in ``dst``; ``bounds``: known range of ``v``."""
    shift = src.frac_width - dst.frac_width
    if bounds is not None:  # shifting is monotonic, so the ends map to the ends
        bounds = (
            sw.shift_right(bounds[0], shift, rounding),
            sw.shift_right(bounds[1], shift, rounding),
        )
    return handle_overflow(shift_right(v, shift, rounding), dst, overflow, bounds)
