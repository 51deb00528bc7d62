"""Fixed-point semantics: the single definition shared by hardware and software.

A format is ``(width, frac_width, signed)``; a value is an integer *code* ``q``
whose real value is ``q * 2**-frac_width``.  Every operation here works on
Python ints and, unchanged, on integer numpy arrays and torch tensors (it only
uses ``+ - << >> &`` and ``.clip``), so the PyTorch reference and the integer
reference cannot drift apart.  Array callers must keep intermediates within
their dtype (int64: 63 bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from numbers import Rational
from typing import Any

MAX_WIDTH = 128


class Rounding(StrEnum):
    """How bits below the new LSB are dropped."""

    FLOOR = "floor"  # arithmetic right shift: free in hardware
    NEAREST = "nearest"  # round half up: add half an LSB, then floor


class Overflow(StrEnum):
    """What happens to a value outside the destination range."""

    SATURATE = "saturate"
    WRAP = "wrap"


def parse_enum(enum: type[StrEnum], value: Any, name: str) -> Any:
    """``enum(value)`` with a one-line error naming ``name`` and the allowed values."""
    try:
        return enum(value)
    except ValueError:
        allowed = "|".join(m.value for m in enum)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """Validate an integer parameter, raising ``ValueError`` naming it and its range."""
    rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in {rng}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be in {rng}, got {value}")
    return value


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format. ``frac_width`` may be negative or exceed ``width``."""

    width: int
    frac_width: int
    signed: bool = True

    def __post_init__(self) -> None:
        check_int("width", self.width, 1, MAX_WIDTH)
        check_int("frac_width", self.frac_width, -MAX_WIDTH, 2 * MAX_WIDTH)
        if not isinstance(self.signed, bool):
            raise ValueError(f"signed must be a bool, got {self.signed!r}")

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


def _clip(x: Any, lo: int, hi: int) -> Any:
    if isinstance(x, int):
        return min(max(x, lo), hi)
    return x.clip(lo, hi)  # numpy arrays and torch tensors


def handle_overflow(code: Any, fmt: FixedFormat, overflow: Overflow | str) -> Any:
    """Bring ``code`` into ``fmt``'s range by saturating or wrapping (two's complement)."""
    overflow = parse_enum(Overflow, overflow, "overflow")
    if overflow is Overflow.SATURATE:
        return _clip(code, fmt.min_code, fmt.max_code)
    mask = (1 << fmt.width) - 1
    return ((code - fmt.min_code) & mask) + fmt.min_code


def shift_right(code: Any, shift: int, rounding: Rounding | str) -> Any:
    """``code * 2**-shift`` rounded to an integer; a negative ``shift`` is an exact left shift."""
    rounding = parse_enum(Rounding, rounding, "rounding")
    if shift <= 0:
        return code << -shift
    if rounding is Rounding.NEAREST:
        code = code + (1 << (shift - 1))
    return code >> shift


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
    return handle_overflow(
        shift_right(code, src.frac_width - dst.frac_width, rounding), dst, overflow
    )


def _floor_exact(value: Any) -> Any:
    """Floor of a real scalar or array; exact for Fraction/int, and for binary floats."""
    if isinstance(value, Rational):
        return math.floor(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot quantise non-finite value {value}")
        return math.floor(value)
    return value // 1  # numpy / torch floats, stays an array


def quantise(
    value: Any,
    fmt: FixedFormat,
    rounding: Rounding | str = Rounding.FLOOR,
    overflow: Overflow | str = Overflow.SATURATE,
) -> Any:
    """Real value(s) -> integer code(s) of ``fmt``.

    Exact for ints, Fractions and binary floats (scaling by a power of two is
    exact, and ``y - floor(y)`` is exact in floating point, so ``nearest`` never
    suffers a double rounding).  Arrays come back as int64.
    """
    rounding = parse_enum(Rounding, rounding, "rounding")
    if isinstance(value, Rational | float):
        scaled: Any = Fraction(value) * Fraction(2) ** fmt.frac_width
    else:
        scaled = value * (2.0**fmt.frac_width)
    fl = _floor_exact(scaled)
    if rounding is Rounding.NEAREST:
        fl = fl + ((scaled - fl) >= 0.5)
    if not isinstance(fl, int):
        fl = _to_int64(fl)
    return handle_overflow(fl, fmt, overflow)


def _to_int64(array: Any) -> Any:
    if hasattr(array, "astype"):  # numpy
        import numpy as np

        return array.astype(np.int64)
    import torch  # only reached with a tensor, so torch is already loaded

    return array.to(torch.int64)


def dequantise(code: Any, fmt: FixedFormat) -> Any:
    """Integer code(s) -> real value(s): a Fraction for an int, floats for arrays."""
    if isinstance(code, int):
        return fmt.real(code)
    return code * (2.0**-fmt.frac_width)


def product_format(a: FixedFormat, b: FixedFormat) -> FixedFormat:
    """The exact format of ``a * b``."""
    signed = a.signed or b.signed
    return FixedFormat(a.width + b.width, a.frac_width + b.frac_width, signed)


def accumulator_format(product: FixedFormat, terms: int) -> FixedFormat:
    """A format that holds the sum of ``terms`` products without overflow."""
    check_int("terms", terms, 1)
    return FixedFormat(
        product.width + math.ceil(math.log2(terms)), product.frac_width, product.signed
    )
