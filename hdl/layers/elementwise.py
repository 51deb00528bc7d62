"""Element-wise layers (ReLU, LeakyReLU, requantise) on one value with a known range.

Each function returns the output value and its exact range, so the next layer
only builds saturation logic where the value can actually leave its format.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed

from qspec import fixed as sw
from qspec.fixed import FixedFormat, Overflow
from qspec.leaky import LeakyReLUSpec
from qspec.network import ReLUSpec, RequantiseSpec

from ..arith import fixed as hwfixed
from .leaky import leaky_relu

ElementwiseSpec = ReLUSpec | LeakyReLUSpec | RequantiseSpec
ELEMENTWISE = (ReLUSpec, LeakyReLUSpec, RequantiseSpec)
Bounds = tuple[int, int]


def fmt_bounds(fmt: FixedFormat) -> Bounds:
    return fmt.min_code, fmt.max_code


def overflow_bounds(b: Bounds, fmt: FixedFormat, overflow: Overflow) -> Bounds:
    """Range after overflow handling of values in ``b`` (wrap scrambles an out-of-range one)."""
    if fmt.contains(b[0]) and fmt.contains(b[1]):
        return b
    if overflow == Overflow.SATURATE:  # clipping is monotonic
        return sw.handle_overflow(b[0], fmt, overflow), sw.handle_overflow(b[1], fmt, overflow)
    return fmt_bounds(fmt)


def requantise_bounds(b: Bounds, src: FixedFormat, dst: FixedFormat, rounding, overflow) -> Bounds:
    shift = src.frac_width - dst.frac_width
    shifted = sw.shift_right(b[0], shift, rounding), sw.shift_right(b[1], shift, rounding)
    return overflow_bounds(shifted, dst, overflow)


def leaky_bounds(spec: LeakyReLUSpec, b: Bounds) -> Bounds:
    """Each branch is monotonic, so the extremes lie at the ends or around zero."""
    points = [b[0], b[1]] + [p for p in (-1, 0) if b[0] <= p <= b[1]]
    ys = [spec.forward(p) for p in points]
    return min(ys), max(ys)


def elementwise(
    m: Module, spec: ElementwiseSpec, v: Value, bounds: Bounds, name: str
) -> tuple[Value, Bounds]:
    """Apply one element-wise layer to ``v`` (codes of ``spec.in_fmt`` within ``bounds``)."""
    lo, hi = bounds
    if isinstance(spec, ReLUSpec):
        if lo >= 0:
            return v, bounds
        if hi <= 0:
            return Const(0, 1), (0, 0)
        return Mux(v < 0, 0, v), (0, hi)
    if isinstance(spec, RequantiseSpec):
        y = hwfixed.requantise(v, spec.in_fmt, spec.out_fmt, spec.rounding, spec.overflow, bounds)
        return y, requantise_bounds(bounds, spec.in_fmt, spec.out_fmt, spec.rounding, spec.overflow)
    if isinstance(spec, LeakyReLUSpec):
        x = Signal(signed(spec.in_fmt.width), name=f"{name}_x")  # leaky_relu reads x[-1]
        m.d.comb += x.eq(v)
        return leaky_relu(m, spec, x, name=name), leaky_bounds(spec, bounds)
    raise ValueError(
        f"element-wise layer must be one of ReLUSpec|LeakyReLUSpec|RequantiseSpec, "
        f"got {type(spec).__name__}"
    )
