"""LeakyReLU on fixed-point codes: the parameters and the integer semantics.

``y = x`` for ``x >= 0``; otherwise ``y = x * slope``, where the slope is
``2**-shift`` (``impl="shift"``) or a signed fixed-point constant
(``impl="mult"``).  Both branches are re-quantised into the output format
with the spec's rounding and overflow.

A real slope becomes hardware parameters by two rules, stated here once:

* shift: :func:`nearest_shift` -- the ``n`` minimising ``|slope - 2**-n|``;
* mult: the slope rounds to nearest (half up) into a signed ``slope_width``-bit
  code with :func:`finest_slope_frac_width` fraction bits unless given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, ClassVar

from .errors import ParamError
from .fixed import (
    MAX_FRAC,
    MIN_FRAC,
    FixedFormat,
    Overflow,
    Rounding,
    check_int,
    parse_enum,
    requantise,
)
from .schema import MISSING, Reader, at, check_fmt, check_kind, fmt_from_dict, fmt_to_dict, join

LEAKY_IMPLS = ("shift", "mult")
MIN_WIDTH, MAX_LEAKY_WIDTH = 2, 32


def _real(name: str, value: Any) -> Fraction:
    """A finite real number (int, float or Fraction) as an exact Fraction."""
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise ParamError(name, f"{name} must be a real number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(name, f"{name} must be a finite real number, got {value}")
    return Fraction(value)


def nearest_shift(slope: float | Fraction, max_shift: int) -> int:
    """The ``n`` in ``0..max_shift`` minimising ``|slope - 2**-n|``; ties go to the smaller n.

    Linear distance, exactly: 0.36 gives 2 (0.25 is 0.11 away, 0.5 is 0.14), and
    0.375, halfway between 2**-1 and 2**-2, gives 1.  Slopes >= 1 give 0; slopes
    <= 0 give ``max_shift``.
    """
    s = _real("slope", slope)
    max_shift = check_int("max_shift", max_shift, 0)
    best = 0
    for n in range(1, max_shift + 1):
        if abs(s - Fraction(1, 1 << n)) < abs(s - Fraction(1, 1 << best)):
            best = n
    return best


def finest_slope_frac_width(slope: float | Fraction, slope_width: int) -> int:
    """Most fraction bits ``f`` such that ``slope`` rounded to nearest at ``f`` bits fits
    a signed ``slope_width``-bit code (the default of ``slope_frac_width``).

    0.3 at 8 bits gives 8 (code 77); a zero slope fits any format and gives
    ``slope_width - 1``.  Too large for any allowed format: ``ValueError``.
    """
    s = _real("slope", slope)
    sw = check_int("slope_width", slope_width, MIN_WIDTH, MAX_LEAKY_WIDTH)
    if s == 0:
        return sw - 1
    # |s| < 2**(e+1) with e = n_bits - d_bits, so at f = sw - e + 1 the code |s|*2**f
    # would need more than sw bits; |code| only grows with f, so the first fit is the finest
    e = abs(s.numerator).bit_length() - s.denominator.bit_length()
    fmt = FixedFormat(sw, 0)
    for f in range(min(sw - e + 1, MAX_FRAC), MIN_FRAC - 1, -1):
        if fmt.contains(math.floor(s * Fraction(2) ** f + Fraction(1, 2))):
            return f
    why = f"slope must fit a {sw}-bit code with at least {MIN_FRAC} fraction bits"
    raise ParamError("slope", why)


def _check_leaky_fmt(name: str, fmt: Any) -> FixedFormat:
    check_fmt(name, fmt)
    if not fmt.signed or not MIN_WIDTH <= fmt.width <= MAX_LEAKY_WIDTH:
        raise ValueError(
            f"{name} must be signed with width in [{MIN_WIDTH}, {MAX_LEAKY_WIDTH}], got {fmt}"
        )
    return fmt


@dataclass(frozen=True)
class LeakyReLUSpec:
    """A quantised LeakyReLU; build it with :meth:`from_slope`, :meth:`shift_variant` or
    :meth:`mult_variant`.  Validated (and modes normalised) however it is built."""

    kind: ClassVar[str] = "leaky_relu"
    impl: str
    in_fmt: FixedFormat
    out_fmt: FixedFormat
    rounding: Rounding = Rounding.FLOOR
    overflow: Overflow = Overflow.SATURATE
    shift: int = 0  # impl == "shift": slope 2**-shift, 0 <= shift <= in_fmt.width
    slope_fmt: FixedFormat | None = None  # impl == "mult"
    slope_code: int = 0  # impl == "mult"
    slope_requested: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.impl not in LEAKY_IMPLS:
            raise ValueError(f"impl must be one of {'|'.join(LEAKY_IMPLS)}, got {self.impl!r}")
        _check_leaky_fmt("in_fmt", self.in_fmt)
        _check_leaky_fmt("out_fmt", self.out_fmt)
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen)
        set_("rounding", parse_enum(Rounding, self.rounding, "rounding"))
        set_("overflow", parse_enum(Overflow, self.overflow, "overflow"))
        if self.impl == "shift":
            set_("shift", check_int("shift", self.shift, 0, self.in_fmt.width))
            if self.slope_fmt is not None:
                raise ValueError(f"slope_fmt must be None for impl='shift', got {self.slope_fmt}")
            if self.slope_code != 0:
                raise ValueError(f"slope_code must be 0 for impl='shift', got {self.slope_code!r}")
        else:
            if self.shift != 0:
                raise ValueError(f"shift must be 0 for impl='mult', got {self.shift!r}")
            if self.slope_fmt is None:
                raise ValueError("slope_fmt is required for impl='mult'")
            sf = _check_leaky_fmt("slope_fmt", self.slope_fmt)
            code = self.slope_code
            if isinstance(code, bool) or not isinstance(code, int) or not sf.contains(code):
                raise ValueError(
                    f"slope_code must be in [{sf.min_code}, {sf.max_code}] for slope format "
                    f"{sf}, got {code!r}"
                )
        if self.slope_requested is not None:
            set_("slope_requested", float(_real("slope_requested", self.slope_requested)))

    @classmethod
    def from_slope(
        cls,
        width: int,
        frac_width: int,
        slope: float | Fraction,
        impl: str = "mult",
        *,
        slope_width: int | None = None,
        slope_frac_width: int | None = None,
        rounding: Rounding | str = Rounding.FLOOR,
        overflow: Overflow | str = Overflow.SATURATE,
        out_width: int | None = None,
        out_frac_width: int | None = None,
    ) -> LeakyReLUSpec:
        """A real slope by the module's rules: shift -> :func:`nearest_shift` (at most
        ``width``); mult -> :meth:`mult_variant` (finest slope format by default)."""
        common: dict[str, Any] = dict(
            rounding=rounding, overflow=overflow, out_width=out_width, out_frac_width=out_frac_width
        )
        if impl == "shift":
            if slope_width is not None or slope_frac_width is not None:
                raise ValueError("slope_width/slope_frac_width are only valid with impl='mult'")
            n = nearest_shift(slope, check_int("width", width))  # shift_variant checks the range
            spec = cls.shift_variant(width, frac_width, n, **common)
            return replace(spec, slope_requested=float(slope))
        if impl != "mult":
            raise ParamError("impl", f"impl must be one of {'|'.join(LEAKY_IMPLS)}, got {impl!r}")
        return cls.mult_variant(
            width,
            frac_width,
            slope,
            slope_width=slope_width,
            slope_frac_width=slope_frac_width,
            **common,
        )

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
        return cls("shift", in_fmt, out_fmt, rounding, overflow, shift=shift)

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
        """Slope rounded to nearest (half up) into a signed ``slope_width``-bit code
        (default: the input width) with ``slope_frac_width`` fraction bits (default:
        :func:`finest_slope_frac_width`).  A slope outside the slope format's range is an
        error, never silently saturated."""
        in_fmt, out_fmt = _formats(width, frac_width, out_width, out_frac_width)
        sw = width if slope_width is None else slope_width
        check_int("slope_width", sw, MIN_WIDTH, MAX_LEAKY_WIDTH)
        s = _real("slope", slope)
        if slope_frac_width is None:
            sf = finest_slope_frac_width(s, sw)
        else:
            sf = check_int("slope_frac_width", slope_frac_width, MIN_FRAC, MAX_FRAC)
        slope_fmt = FixedFormat(sw, sf, signed=True)
        exact = math.floor(s * Fraction(2) ** sf + Fraction(1, 2))
        if not slope_fmt.contains(exact):
            lo, hi = slope_fmt.real(slope_fmt.min_code), slope_fmt.real(slope_fmt.max_code)
            raise ParamError(
                "slope",
                f"slope must be in [{float(lo)}, {float(hi)}] for slope format "
                f"{slope_fmt} (slope_width={sw}, slope_frac_width={sf}), got {slope}",
            )
        return cls(
            "mult",
            in_fmt,
            out_fmt,
            rounding,
            overflow,
            slope_fmt=slope_fmt,
            slope_code=exact,
            slope_requested=float(s),
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

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "impl": self.impl,
            "in_fmt": fmt_to_dict(self.in_fmt),
            "out_fmt": fmt_to_dict(self.out_fmt),
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }
        if self.impl == "shift":
            d["shift"] = self.shift
        else:
            assert self.slope_fmt is not None
            d["slope_fmt"] = fmt_to_dict(self.slope_fmt)
            d["slope_code"] = self.slope_code
        d["slope_requested"] = self.slope_requested
        return d

    @classmethod
    def from_dict(cls, d: Any, path: str = "") -> LeakyReLUSpec:
        """The inverse of :meth:`to_dict`; errors name the key path under ``path``."""
        r = Reader(d, path)
        check_kind(r, cls.kind)
        impl = r.get("impl")
        if impl not in LEAKY_IMPLS:
            raise ValueError(
                f"{join(path, 'impl')} must be one of {'|'.join(LEAKY_IMPLS)}, got {impl!r}"
            )
        mult = impl == "mult"
        kw = dict(
            in_fmt=r.sub("in_fmt", fmt_from_dict),
            out_fmt=r.sub("out_fmt", fmt_from_dict),
            rounding=r.get("rounding"),
            overflow=r.get("overflow"),
            shift=r.get("shift", 0 if mult else MISSING),
            slope_fmt=r.sub("slope_fmt", fmt_from_dict, MISSING if mult else None),
            slope_code=r.get("slope_code", MISSING if mult else 0),
            slope_requested=r.get("slope_requested", None),
        )
        r.done()
        with at(path):
            return cls(impl, **kw)


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
    check_int("frac_width", frac_width, MIN_FRAC, MAX_FRAC)
    ow = width if out_width is None else out_width
    of = frac_width if out_frac_width is None else out_frac_width
    check_int("out_width", ow, MIN_WIDTH, MAX_LEAKY_WIDTH)
    check_int("out_frac_width", of, MIN_FRAC, MAX_FRAC)
    return FixedFormat(width, frac_width), FixedFormat(ow, of)
