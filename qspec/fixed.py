"""Fixed-point semantics: the single definition shared by hardware and software.

A format is ``(width, frac_width, signed)``; a value is an integer *code* ``q``
whose real value is ``q * 2**-frac_width``.  Every operation here works on
Python ints and, unchanged, on integer numpy arrays (int64 or object) and torch
int64 tensors, so the PyTorch reference and the integer reference cannot drift
apart.  On int64 arrays, right shifts and wrapping are exact for any shift and
width; left shifts and products must stay below 2**63 (callers size them, see
:mod:`qspec.integer_forward`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from numbers import Rational
from typing import Any

from .errors import ParamError

MAX_WIDTH = 128
MIN_FRAC, MAX_FRAC = -MAX_WIDTH, 2 * MAX_WIDTH


class Rounding(StrEnum):
    """How bits below the new LSB are dropped."""

    FLOOR = "floor"  # arithmetic right shift: free in hardware
    NEAREST = "nearest"  # round half up: add half an LSB, then floor


class Overflow(StrEnum):
    """What happens to a value outside the destination range."""

    SATURATE = "saturate"
    WRAP = "wrap"


ROUNDINGS = tuple(r.value for r in Rounding)  # the values configs and CLIs accept
OVERFLOWS = tuple(o.value for o in Overflow)


def parse_enum(enum: type[StrEnum], value: Any, name: str) -> Any:
    """``enum(value)`` with a one-line error naming ``name`` and the allowed values."""
    try:
        return enum(value)
    except ValueError:
        allowed = "|".join(m.value for m in enum)
        raise ParamError(name, f"{name} must be one of {allowed}, got {value!r}") from None


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """Validate an integer parameter (numpy integers welcome), return it as an ``int``."""
    rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParamError(name, f"{name} must be an integer in {rng}, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParamError(name, f"{name} must be in {rng}, got {value}")
    return value


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format. ``frac_width`` may be negative or exceed ``width``."""

    width: int
    frac_width: int
    signed: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", check_int("width", self.width, 1, MAX_WIDTH))
        frac = check_int("frac_width", self.frac_width, MIN_FRAC, MAX_FRAC)
        object.__setattr__(self, "frac_width", frac)
        if not isinstance(self.signed, bool):
            raise ValueError(f"signed must be true or false, got {self.signed!r}")

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> Fraction:
        return Fraction(2) ** -self.frac_width

    def contains(self, code: int) -> bool:
        return self.min_code <= code <= self.max_code

    def real(self, code: int) -> Fraction:
        """The exact real value of ``code``."""
        return code * self.lsb

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.width}.{self.frac_width}"


def range_format(lo: int, hi: int, frac_width: int) -> FixedFormat:
    """The narrowest format with ``frac_width`` fraction bits whose codes include [lo, hi].

    Unsigned when ``lo >= 0`` (one bit narrower than signed), else signed.
    """
    lo, hi = check_int("lo", lo), check_int("hi", hi)
    if lo > hi:
        raise ValueError(f"lo must be <= hi, got lo={lo}, hi={hi}")
    if lo >= 0:
        return FixedFormat(max(hi.bit_length(), 1), frac_width, signed=False)
    # a signed w-bit code holds [-2**(w-1), 2**(w-1) - 1]
    bits = max((-lo - 1).bit_length(), max(hi, 0).bit_length())
    return FixedFormat(bits + 1, frac_width)


def _is_fixed_int_array(x: Any) -> bool:
    """A numpy/torch integer array of a fixed width (not Python ints, not object arrays)."""
    dtype = getattr(x, "dtype", None)
    return dtype is not None and str(dtype) != "object"


def _bits(x: Any) -> int:
    """Bit width of a fixed-width integer array's dtype (numpy or torch)."""
    dtype = x.dtype
    return dtype.itemsize * 8


def handle_overflow(code: Any, fmt: FixedFormat, overflow: Overflow | str) -> Any:
    """Bring ``code`` into ``fmt``'s range by saturating or wrapping (two's complement)."""
    overflow = parse_enum(Overflow, overflow, "overflow")
    lo, hi = fmt.min_code, fmt.max_code
    if _is_fixed_int_array(code):
        bits = _bits(code)
        if overflow == Overflow.SATURATE:  # bounds beyond the dtype cannot be reached
            lo, hi = max(lo, -(1 << (bits - 1))), min(hi, (1 << (bits - 1)) - 1)
        elif fmt.width >= bits:
            if not fmt.signed:
                raise ValueError(f"wrap into {fmt} needs codes wider than int{bits}")
            return code  # every value of the dtype is already a code of fmt
        # else: the formula below is exact although ``code - lo`` may wrap around the
        # dtype: arithmetic modulo 2**bits keeps the low ``fmt.width`` bits right
    if overflow == Overflow.SATURATE:
        if isinstance(code, int):
            return min(max(code, lo), hi)
        return code.clip(lo, hi)  # numpy arrays and torch tensors
    mask = (1 << fmt.width) - 1
    return ((code - lo) & mask) + lo


def shift_right(code: Any, shift: int, rounding: Rounding | str) -> Any:
    """``code * 2**-shift`` rounded to an integer; a negative ``shift`` is an exact left shift.

    ``nearest`` is ``floor(code * 2**-shift + 1/2)``.  On fixed-width arrays it is
    computed without the ``code + 2**(shift-1)`` intermediate, which could overflow.
    """
    rounding = parse_enum(Rounding, rounding, "rounding")
    shift = check_int("shift", shift)
    if shift <= 0:
        return code << -shift
    if not _is_fixed_int_array(code):  # Python ints, object arrays: unbounded
        if rounding == Rounding.NEAREST:
            code = code + (1 << (shift - 1))
        return code >> shift
    bits = _bits(code)
    if rounding == Rounding.FLOOR:
        return code >> min(shift, bits - 1)  # beyond bits - 1 the result is 0 or -1
    if shift <= bits - 2:
        # floor((q*2**s + r + 2**(s-1)) / 2**s) = q + floor((r + 2**(s-1)) / 2**s), 0 <= r < 2**s
        return (code >> shift) + (((code & ((1 << shift) - 1)) + (1 << (shift - 1))) >> shift)
    if shift == bits - 1:
        # floor(floor(code / 2**(s-1)) + 1) / 2): nested floors of integer divisions compose
        return ((code >> (bits - 2)) + 1) >> 1
    return code * 0  # |code| < 2**(bits-1) <= 2**(shift-1): |code * 2**-shift| < 1/2


def requantise(
    code: Any,
    src: FixedFormat,
    dst: FixedFormat,
    rounding: Rounding | str = Rounding.FLOOR,
    overflow: Overflow | str = Overflow.SATURATE,
) -> Any:
    """Re-express ``code`` (in ``src``) in ``dst``: round away extra fraction bits, then overflow.

    ``src`` only contributes its ``frac_width``: the input code may be any integer
    (e.g. a product or an accumulator wider than ``src.width``).
    """
    shift = src.frac_width - dst.frac_width
    if shift < 0 and _is_fixed_int_array(code):
        return _left_shift_fixed(code, -shift, dst, parse_enum(Overflow, overflow, "overflow"))
    return handle_overflow(shift_right(code, shift, rounding), dst, overflow)


def _left_shift_fixed(code: Any, shift: int, fmt: FixedFormat, overflow: Overflow) -> Any:
    """``handle_overflow(code << shift)`` on a fixed-width array without overflowing it."""
    bits = _bits(code)
    if overflow == Overflow.WRAP and fmt.width <= bits:
        # the dtype's arithmetic is modulo 2**bits, which keeps the low fmt.width bits
        shifted = code * 0 if shift >= bits else code << shift
        return handle_overflow(shifted, fmt, overflow)
    # saturate, or wrap into a format wider than the dtype (then only codes that fit)
    lo = max(fmt.min_code, -(1 << (bits - 1)))
    hi = min(fmt.max_code, (1 << (bits - 1)) - 1)
    top, bottom = hi >> shift, -((-lo) >> shift)  # the codes whose shift lands in [lo, hi]
    above, below = code > top, code < bottom
    if (hi < fmt.max_code and bool(above.any())) or (lo > fmt.min_code and bool(below.any())):
        raise ValueError(f"requantise into {fmt} gives codes beyond int{bits}; use object arrays")
    inside = code.clip(bottom, top) << min(shift, bits - 1)  # 0 when shift >= bits - 1
    return _where(above, hi, _where(below, lo, inside))


def _where(cond: Any, a: Any, b: Any) -> Any:
    if hasattr(cond, "numpy"):  # torch
        import torch

        return torch.where(cond, a, b)
    import numpy as np

    return np.where(cond, a, b)


def quantise(
    value: Any,
    fmt: FixedFormat,
    rounding: Rounding | str = Rounding.FLOOR,
    overflow: Overflow | str = Overflow.SATURATE,
) -> Any:
    """Real value(s) -> integer code(s) of ``fmt``.

    Exact for ints, Fractions and binary floats: scaling by a power of two is
    exact, and ``y - floor(y)`` is exact in floating point, so ``nearest`` never
    suffers a double rounding.  ``±inf`` saturates (and cannot wrap); NaN is an
    error.  Float arrays (numpy or torch; integer arrays are read as float64)
    come back as int64 and need ``fmt``'s codes to fit in int64.
    """
    rounding = parse_enum(Rounding, rounding, "rounding")
    overflow = parse_enum(Overflow, overflow, "overflow")
    if isinstance(value, Rational | float):
        return _quantise_scalar(value, fmt, rounding, overflow)
    return _quantise_array(value, fmt, rounding, overflow)


def _quantise_scalar(value: Any, fmt: FixedFormat, rounding: Rounding, overflow: Overflow) -> int:
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value) or overflow == Overflow.WRAP:
            raise ValueError(f"cannot quantise {value} with overflow={overflow.value}")
        return fmt.max_code if value == math.inf else fmt.min_code
    scaled = Fraction(value) * Fraction(2) ** fmt.frac_width
    code = math.floor(scaled)
    if rounding == Rounding.NEAREST:
        code += scaled - code >= Fraction(1, 2)
    return handle_overflow(code, fmt, overflow)


def _quantise_array(value: Any, fmt: FixedFormat, rounding: Rounding, overflow: Overflow) -> Any:
    if fmt.width > (64 if fmt.signed else 63):
        raise ValueError(f"fmt {fmt} is too wide for int64 arrays (at most s64 or u63)")
    if hasattr(value, "astype"):  # numpy
        import numpy as np

        with np.errstate(all="ignore"):  # inf - inf and float overflow are handled below
            x = np.asarray(value, dtype=np.float64)
            r, over = _int64_range_floats(np, x, fmt, rounding, overflow)
            code = np.where(over, fmt.max_code, r.astype(np.int64))
    else:
        import torch  # only reached with a tensor, so torch is already loaded

        x = value.to(torch.float64)
        r, over = _int64_range_floats(torch, x, fmt, rounding, overflow)
        code = torch.where(over, fmt.max_code, r.to(torch.int64))
    return handle_overflow(code, fmt, overflow)


def _int64_range_floats(xp: Any, x: Any, fmt: FixedFormat, rounding: Rounding, overflow: Overflow):
    """Integer-valued float64s in int64 range whose saturation/wrap into ``fmt`` is the code,
    and where the code is ``fmt.max_code`` instead (saturation above 2**63 - 1024)."""
    if bool(xp.isnan(x).any()):
        raise ValueError("cannot quantise NaN")
    if overflow == Overflow.WRAP and not bool(xp.isfinite(x).all()):
        raise ValueError("cannot quantise inf with overflow=wrap")
    scaled = x * 2.0**fmt.frac_width  # exact unless it leaves the float range (see below)
    fl = xp.floor(scaled)
    if rounding == Rounding.NEAREST:
        fl = fl + (scaled - fl >= 0.5)  # adds 1 only below 2**52, where it is exact
    if overflow == Overflow.SATURATE:
        # decide in float before the cast (out-of-range casts are undefined): min_code is
        # a power of two or 0, so exact; max_code may round up (to 2**63, not an int64),
        # and no float lies in (hi, max_code] when hi is the largest float below it
        lo, hi = float(fmt.min_code), float(fmt.max_code)
        if hi > fmt.max_code:
            hi = math.nextafter(hi, 0.0)
        over = fl > hi
        return xp.where(over, hi, xp.where(fl < lo, lo, fl)), over
    # wrap: fmod is exact and keeps the residue mod 2**width.  An infinite ``scaled``
    # came from a finite value times 2**frac beyond 2**1024, a multiple of 2**width.
    modulus = 2.0**fmt.width
    r = xp.fmod(fl, modulus)
    r = xp.where(xp.isfinite(r), r, 0.0)
    # into int64 (only s64 reaches beyond it); exact, as the operands are within 2x
    r = xp.where(r >= 2.0**63, r - modulus, xp.where(r < -(2.0**63), r + modulus, r))
    return r, r != r  # all False


def dequantise(code: Any, fmt: FixedFormat) -> Any:
    """Integer code(s) -> real value(s): a Fraction for an int, floats for arrays."""
    if isinstance(code, int):
        return fmt.real(code)
    return code * (2.0**-fmt.frac_width)


def product_format(a: FixedFormat, b: FixedFormat) -> FixedFormat:
    """The exact format of ``a * b``: ``(w_a + w_b, f_a + f_b)``, signed if either is."""
    signed = a.signed or b.signed
    return FixedFormat(a.width + b.width, a.frac_width + b.frac_width, signed)
