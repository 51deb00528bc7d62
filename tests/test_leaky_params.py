"""LeakyReLU parameters: validation (one-line errors naming the parameter) and the slope rules."""

import dataclasses
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hdl.layers.leaky import LeakyReLU, LeakyReLUStream
from qspec.fixed import FixedFormat, Overflow, Rounding
from qspec.leaky import LeakyReLUSpec, finest_slope_frac_width, nearest_shift
from tests.fraction_model import model_quantise, safe_id

S, M = LeakyReLUSpec.shift_variant, LeakyReLUSpec.mult_variant
F8 = FixedFormat(8, 4)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: S(1, 0, 0), r"width must be in \[2, 32\], got 1"),
        (lambda: S(33, 0, 0), r"width must be in \[2, 32\], got 33"),
        (lambda: S(8, 4, -1), r"shift must be in \[0, 8\], got -1"),
        (lambda: S(8, 4, 9), r"shift must be in \[0, 8\], got 9"),
        (lambda: S(8, 4, 1.5), r"shift must be an integer"),
        (lambda: S(8, 4, 1, rounding="even"), r"rounding must be one of floor\|nearest"),
        (lambda: S(8, 4, 1, overflow="clamp"), r"overflow must be one of saturate\|wrap"),
        (lambda: S(8, 4, 1, out_width=1), r"out_width must be in \[2, 32\]"),
        (lambda: M(8, 4, 8.0, slope_frac_width=4), r"slope must be in \[-8.0, 7.9375\] .*got 8.0"),
        (lambda: M(8, 4, -8.04, slope_frac_width=4), r"slope must be in \[-8.0, 7.9375\]"),
        (lambda: M(8, 4, 0.3, slope_width=1), r"slope_width must be in \[2, 32\]"),
        (lambda: M(8, 4, "0.3"), r"slope must be a real number"),
        (lambda: M(8, 4, float("nan")), r"slope must be a finite real number"),
        (lambda: M(8, 4, 1e300, slope_width=2), r"slope must fit a 2-bit code"),
        (lambda: LeakyReLUSpec.from_slope(8, 4, 0.3, "Shift"), r"impl must be one of shift\|mult"),
        (lambda: LeakyReLUSpec.from_slope(8, 4, 0.3, "shift", slope_width=4), r"only valid"),
        (lambda: LeakyReLUStream(S(8, 4, 1), lanes=0), r"lanes must be in \[1, 1024\], got 0"),
        (lambda: LeakyReLUStream(S(8, 4, 1), stages=-1), r"stages must be in \[0, 16\], got -1"),
        (lambda: LeakyReLU(S(8, 4, 1), runtime_slope=True), r"runtime_slope requires impl='mult'"),
        # the constructor (and so dataclasses.replace and from_dict) validates every field
        (lambda: LeakyReLUSpec("Shift", F8, F8), r"impl must be one of shift\|mult, got 'Shift'"),
        (lambda: LeakyReLUSpec("shift", F8, F8, shift=40), r"shift must be in \[0, 8\], got 40"),
        (lambda: LeakyReLUSpec("shift", F8, F8, shift=True), r"shift must be an integer"),
        (lambda: LeakyReLUSpec("shift", F8, F8, slope_fmt=F8), r"slope_fmt must be None"),
        (lambda: LeakyReLUSpec("shift", F8, F8, slope_code=3), r"slope_code must be 0"),
        (lambda: LeakyReLUSpec("mult", F8, F8), r"slope_fmt is required for impl='mult'"),
        (lambda: LeakyReLUSpec("mult", F8, F8, shift=1, slope_fmt=F8), r"shift must be 0"),
        (
            lambda: LeakyReLUSpec("mult", F8, F8, slope_fmt=F8, slope_code=1000),
            r"slope_code must be in \[-128, 127\] for slope format s8.4, got 1000",
        ),
        (lambda: LeakyReLUSpec("mult", F8, F8, slope_fmt=F8, slope_code=1.0), r"slope_code must"),
        (lambda: LeakyReLUSpec("shift", FixedFormat(8, 4, False), F8), r"in_fmt must be signed"),
        (lambda: LeakyReLUSpec("shift", F8, FixedFormat(40, 4)), r"out_fmt must be signed with"),
        (lambda: LeakyReLUSpec("shift", (8, 4), F8), r"in_fmt must be a FixedFormat"),
        (lambda: LeakyReLUSpec("shift", F8, F8, rounding="Nearest"), r"rounding must be one of"),
        (
            lambda: LeakyReLUSpec("mult", F8, F8, slope_fmt=FixedFormat(1, 0), slope_code=0),
            r"slope_fmt must be signed with width in \[2, 32\], got s1.0",
        ),
        (lambda: dataclasses.replace(S(8, 4, 1), shift=9), r"shift must be in \[0, 8\], got 9"),
        (lambda: dataclasses.replace(S(8, 4, 1), overflow="clip"), r"overflow must be one of"),
    ],
    ids=safe_id,
)
def test_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_modes_are_normalised_however_built():
    """Strings become enums, so `==`/`is` checks in the hardware generator see them."""
    spec = dataclasses.replace(S(8, 4, 1), rounding="nearest", overflow="wrap")
    assert spec.rounding is Rounding.NEAREST and spec.overflow is Overflow.WRAP
    direct = LeakyReLUSpec("shift", F8, F8, "nearest", "wrap", shift=1)
    assert direct == spec and direct.rounding is Rounding.NEAREST


def test_slope_rounds_to_nearest_code():
    spec = M(8, 4, 0.3, slope_frac_width=4)
    assert (spec.slope_code, float(spec.slope), spec.slope_requested) == (5, 0.3125, 0.3)
    assert M(8, 4, 7.96, slope_frac_width=4).slope_code == 127  # rounds to the top code
    # the default slope format is the finest one: 0.3 -> 77 / 2**8 (README worked example)
    spec = M(8, 4, 0.3)
    assert (spec.slope_code, spec.slope_fmt) == (77, FixedFormat(8, 8))
    assert spec.slope == Fraction(77, 256)


# --- rule (a): nearest_shift -------------------------------------------------------------


def _check_nearest_shift(slope: Fraction, max_shift: int) -> None:
    n = nearest_shift(slope, max_shift)
    assert 0 <= n <= max_shift
    d = abs(slope - Fraction(1, 2**n))
    for m in range(max_shift + 1):  # nothing is nearer, and no smaller n is as near
        dm = abs(slope - Fraction(1, 2**m))
        assert dm >= d and not (m < n and dm == d), (slope, n, m)


def test_nearest_shift_exhaustive_on_a_fine_grid():
    """Every slope k/2**10 in [-1/4, 2]: the definition, ties (e.g. 3/8) to the smaller n."""
    for k in range(-256, 2049):
        _check_nearest_shift(Fraction(k, 1024), 8)
    assert nearest_shift(0.36, 8) == 2  # log2 rounding gave 1
    assert nearest_shift(0.375, 8) == 1  # the tie between 1/2 and 1/4
    assert nearest_shift(Fraction(3, 8) - Fraction(1, 2**40), 8) == 2
    assert (nearest_shift(0.001, 4), nearest_shift(5.0, 4), nearest_shift(0, 3)) == (4, 0, 3)


@given(st.fractions(min_value=Fraction(-1), max_value=Fraction(3)), st.integers(0, 32))
def test_nearest_shift_property(slope, max_shift):
    _check_nearest_shift(slope, max_shift)


# --- rule (b): the finest slope format -----------------------------------------------------


def _code(slope, frac: int) -> int:
    return model_quantise(slope, 64, frac, True, "nearest", "saturate")


@given(
    st.fractions(min_value=Fraction(-1000), max_value=Fraction(1000)).filter(lambda s: s != 0),
    st.integers(2, 32),
)
def test_finest_slope_frac_width_is_the_finest_that_fits(slope, sw):
    f = finest_slope_frac_width(slope, sw)
    lo, hi = -(2 ** (sw - 1)), 2 ** (sw - 1) - 1
    assert lo <= _code(slope, f) <= hi
    assert not lo <= _code(slope, f + 1) <= hi
    spec = M(8, 4, slope, slope_width=sw)
    assert spec.slope_fmt == FixedFormat(sw, f) and spec.slope_code == _code(slope, f)


def test_finest_slope_frac_width_examples():
    assert finest_slope_frac_width(0.3, 8) == 8  # 76.8 -> 77; at 9 bits 154 > 127
    assert finest_slope_frac_width(0.998, 8) == 6  # 127.7 rounds up to 128: one bit less
    assert finest_slope_frac_width(-8, 8) == 4  # -128 fits exactly
    assert finest_slope_frac_width(0, 8) == 7  # any format holds 0


def test_from_slope_applies_both_rules():
    shift = LeakyReLUSpec.from_slope(8, 4, 0.36, "shift", rounding="nearest")
    assert shift == S(8, 4, 2, rounding="nearest") and shift.slope_requested == 0.36
    assert LeakyReLUSpec.from_slope(8, 4, 1e-9, "shift").shift == 8  # clipped to the width
    mult = LeakyReLUSpec.from_slope(8, 4, 0.3, "mult", slope_width=6, out_width=10)
    assert mult == M(8, 4, 0.3, slope_width=6, slope_frac_width=6, out_width=10)
    assert mult.slope_code == 19  # 0.3 * 64 = 19.2
    assert LeakyReLUSpec.from_slope(8, 4, 0.3) == M(8, 4, 0.3)
    kw = dict(rounding="nearest", overflow="wrap", out_width=6, out_frac_width=2)
    assert LeakyReLUSpec.from_slope(8, 4, 0.36, "shift", **kw) == S(8, 4, 2, **kw)
    assert LeakyReLUSpec.from_slope(8, 4, 0.3, "mult", **kw) == M(8, 4, 0.3, **kw)
    assert LeakyReLUSpec.from_slope(8, 4, 0.3, slope_frac_width=4).slope_code == 5
    with pytest.raises(ValueError, match=r"^width must be an integer in \[-inf, inf\], got '8'$"):
        LeakyReLUSpec.from_slope("8", 4, 0.3, "shift")
    with pytest.raises(ValueError, match=r"^width must be in \[2, 32\], got 40$"):
        LeakyReLUSpec.from_slope(40, 4, 0.3, "shift")
    with pytest.raises(ValueError, match=r"^slope must be a real number, got '0.3'$"):
        LeakyReLUSpec.from_slope(8, 4, "0.3", "shift")
    message = r"^slope_width/slope_frac_width are only valid with impl='mult'$"
    with pytest.raises(ValueError, match=message):
        LeakyReLUSpec.from_slope(8, 4, 0.3, "shift", slope_frac_width=4)


def test_slope_rule_edges_and_errors():
    assert finest_slope_frac_width(Fraction(255, 512), 8) == 7  # 127.5 rounds half up to 128
    assert finest_slope_frac_width(2**128, 2) == -128  # the coarsest allowed format
    assert finest_slope_frac_width(-(2**128), 2) == -127  # -2 fits a 2-bit code
    with pytest.raises(ValueError, match="slope must fit a 2-bit code with at least -128"):
        finest_slope_frac_width(2**129, 2)
    with pytest.raises(ValueError, match=r"^slope must be a real number, got '0.3'$"):
        finest_slope_frac_width("0.3", 8)
    with pytest.raises(ValueError, match=r"^slope_width must be in \[2, 32\], got 1$"):
        finest_slope_frac_width(0.3, 1)
    with pytest.raises(ValueError, match=r"^slope_width must be in \[2, 32\], got 33$"):
        finest_slope_frac_width(0.3, 33)
    with pytest.raises(ValueError, match=r"^slope must be a finite real number, got inf$"):
        nearest_shift(float("inf"), 8)
    with pytest.raises(ValueError, match=r"^max_shift must be in \[0, inf\], got -1$"):
        nearest_shift(0.5, -1)
