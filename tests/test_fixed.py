"""qspec.fixed against the exact Fraction model, for ints, numpy arrays and torch tensors."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qspec.fixed import (
    FixedFormat,
    Overflow,
    Rounding,
    dequantise,
    handle_overflow,
    quantise,
    range_format,
    requantise,
    shift_right,
)
from tests.fraction_model import fits, model_quantise, model_requantise, safe_id

formats = st.builds(
    FixedFormat,
    width=st.integers(1, 40),
    frac_width=st.integers(-8, 48),
    signed=st.booleans(),
)
roundings = st.sampled_from(list(Rounding))
overflows = st.sampled_from(list(Overflow))


def _model(value, fmt, rounding, overflow):
    return model_quantise(
        value, fmt.width, fmt.frac_width, fmt.signed, rounding.value, overflow.value
    )


@given(st.fractions(), formats, roundings, overflows)
def test_quantise_fraction_matches_model(value, fmt, rounding, overflow):
    assert quantise(value, fmt, rounding, overflow) == _model(value, fmt, rounding, overflow)


@given(st.floats(-1e6, 1e6, allow_nan=False), formats, roundings, overflows)
def test_quantise_float_is_exact(value, fmt, rounding, overflow):
    assert quantise(value, fmt, rounding, overflow) == _model(
        Fraction(value), fmt, rounding, overflow
    )


@given(st.integers(-(2**60), 2**60), st.integers(-8, 40), formats, roundings, overflows)
def test_requantise_matches_model(code, src_frac, dst, rounding, overflow):
    src = FixedFormat(64, src_frac)
    real = Fraction(code) * Fraction(2) ** -src_frac
    assert requantise(code, src, dst, rounding, overflow) == _model(real, dst, rounding, overflow)


@given(
    st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=50),
    st.integers(-4, 30),
    st.builds(
        FixedFormat, width=st.integers(1, 30), frac_width=st.integers(-4, 30), signed=st.booleans()
    ),
    roundings,
    overflows,
)
def test_arrays_and_tensors_match_scalars(codes, src_frac, dst, rounding, overflow):
    import torch

    src = FixedFormat(48, src_frac)
    expect = [requantise(c, src, dst, rounding, overflow) for c in codes]
    assert (
        requantise(np.array(codes, dtype=np.int64), src, dst, rounding, overflow).tolist() == expect
    )
    assert (
        requantise(torch.tensor(codes, dtype=torch.int64), src, dst, rounding, overflow).tolist()
        == expect
    )
    reals = np.array(codes, dtype=np.float64) * 2.0**-src_frac
    exact = [_model(Fraction(float(r)), dst, rounding, overflow) for r in reals]
    assert quantise(reals, dst, rounding, overflow).tolist() == exact
    assert quantise(torch.from_numpy(reals), dst, rounding, overflow).tolist() == exact


def test_nearest_rounds_half_up_not_to_even():
    fmt = FixedFormat(8, 0)
    got = [quantise(v, fmt, "nearest") for v in (-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)]
    assert got == [-2, -1, 0, 1, 2, 3]
    # just below one half must not be pulled up by a float addition
    assert quantise(0.49999999999999994, fmt, "nearest") == 0


def test_overflow_modes():
    fmt = FixedFormat(4, 0)
    assert [handle_overflow(v, fmt, "saturate") for v in (-9, -8, 7, 8)] == [-8, -8, 7, 7]
    assert [handle_overflow(v, fmt, "wrap") for v in (-9, -8, 7, 8, 16)] == [7, -8, 7, -8, 0]
    u = FixedFormat(4, 0, signed=False)
    assert [handle_overflow(v, u, "wrap") for v in (-1, 16, 17)] == [15, 0, 1]


def test_format_properties_and_dequantise():
    fmt = FixedFormat(8, 4)
    assert (fmt.min_code, fmt.max_code, str(fmt)) == (-128, 127, "s8.4")
    assert dequantise(-128, fmt) == Fraction(-8)
    assert FixedFormat(8, -2).real(3) == 12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0, "frac_width": 0}, "width must be in [1, 128], got 0"),
        ({"width": 8, "frac_width": 1.5}, "frac_width must be an integer"),
        ({"width": True, "frac_width": 0}, "width must be an integer"),
    ],
    ids=safe_id,
)
def test_bad_formats(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FixedFormat(**kwargs)


def test_bad_modes():
    with pytest.raises(ValueError, match=r"^rounding must be one of floor\|nearest, got 'half'$"):
        quantise(1.0, FixedFormat(8, 0), "half")
    with pytest.raises(ValueError, match=r"^overflow must be one of saturate\|wrap, got 'clamp'$"):
        requantise(1, FixedFormat(8, 0), FixedFormat(8, 0), "floor", "clamp")


# --- arrays and scalars agree, at any magnitude (issue #7, defect 5) ---------------------

int64_formats = st.builds(
    FixedFormat, width=st.integers(1, 64), frac_width=st.integers(-40, 80), signed=st.booleans()
).filter(lambda f: f.max_code < 2**63)
any_floats = st.floats(allow_nan=False, allow_infinity=True)


def _scalar_or_error(value, fmt, rounding, overflow):
    try:
        return quantise(value, fmt, rounding, overflow)
    except ValueError:
        return "error"


def _arrays_or_error(values, fmt, rounding, overflow):
    import torch

    out = []
    for arr in (np.array(values, dtype=np.float64), torch.tensor(values, dtype=torch.float64)):
        try:
            out.append(quantise(arr, fmt, rounding, overflow).tolist())
        except ValueError:
            out.append("error")
    return out


@given(st.lists(any_floats, min_size=1, max_size=8), int64_formats, roundings, overflows)
def test_quantise_arrays_agree_with_scalars_at_any_magnitude(values, fmt, rounding, overflow):
    scalars = [_scalar_or_error(v, fmt, rounding, overflow) for v in values]
    want = "error" if "error" in scalars else scalars
    assert _arrays_or_error(values, fmt, rounding, overflow) == [want, want]
    for v, got in zip(values, scalars, strict=True):
        if np.isfinite(v):
            assert got == _model(Fraction(v), fmt, rounding, overflow)
        elif overflow == Overflow.SATURATE:
            assert got == (fmt.max_code if v > 0 else fmt.min_code)
        else:
            assert got == "error"  # inf has no residue modulo 2**width


def test_quantise_huge_and_infinite_arrays_saturate_to_the_right_end():
    fmt = FixedFormat(8, 0)
    values = [1e20, -1e20, float("inf"), float("-inf"), 2.0**63, -(2.0**63), 1e308]
    want = [127, -128, 127, -128, 127, -128, 127]
    assert [quantise(v, fmt) for v in values] == want
    assert _arrays_or_error(values, fmt, "floor", "saturate") == [want, want]
    s64 = FixedFormat(64, 0)
    assert quantise(np.array([1e30, -1e30]), s64).tolist() == [2**63 - 1, -(2**63)]
    # a finite value whose scaled form overflows float64 is a multiple of 2**width
    assert quantise(np.array([1e300]), FixedFormat(16, 200), "floor", "wrap").tolist() == [0]
    assert quantise(1e300, FixedFormat(16, 200), "floor", "wrap") == 0


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_quantise_nan_raises_for_scalars_and_arrays(overflow):
    import torch

    fmt = FixedFormat(8, 0)
    for value in (float("nan"), np.array([1.0, np.nan]), torch.tensor([np.nan])):
        with pytest.raises(ValueError, match="cannot quantise"):
            quantise(value, fmt, "nearest", overflow)
    with pytest.raises(ValueError, match="with overflow=wrap"):
        quantise(float("inf"), fmt, "floor", "wrap")


def test_quantise_array_needs_an_int64_format():
    with pytest.raises(ValueError, match="too wide for int64 arrays"):
        quantise(np.array([1.0]), FixedFormat(64, 0, signed=False))


# --- int64 arrays: right shifts of any size, left shifts without overflow ------------------

int64s = st.integers(-(2**63), 2**63 - 1)


@given(st.lists(int64s, min_size=1, max_size=8), st.integers(-60, 140), roundings)
def test_shift_right_on_int64_is_exact_for_any_shift(codes, shift, rounding):
    import torch

    if shift < 0:  # left shifts of int64 are the caller's to size: keep |result| < 2**62
        codes = [c >> (1 - shift) for c in codes]
    want = [shift_right(c, shift, rounding) for c in codes]
    for arr in (np.array(codes, dtype=np.int64), torch.tensor(codes, dtype=torch.int64)):
        assert shift_right(arr, shift, rounding).tolist() == want
    # Python ints against the model
    for c, w in zip(codes, want, strict=True):
        real = Fraction(c) / Fraction(2) ** shift
        assert w == (math.floor(real) if rounding == "floor" else math.floor(real + Fraction(1, 2)))


@given(st.lists(int64s, min_size=1, max_size=8), st.integers(-80, 140), int64_formats, roundings,
       overflows)  # fmt: skip
def test_requantise_int64_arrays_match_the_model(codes, src_frac, dst, rounding, overflow):
    """Left shifts that leave int64 before saturating/wrapping stay exact."""
    import torch

    want = [
        model_requantise(c, src_frac, dst.width, dst.frac_width, dst.signed, rounding, overflow)
        for c in codes
    ]
    src = FixedFormat(64, src_frac)
    for arr in (np.array(codes, dtype=np.int64), torch.tensor(codes, dtype=torch.int64)):
        assert requantise(arr, src, dst, rounding, overflow).tolist() == want
    assert [requantise(c, src, dst, rounding, overflow) for c in codes] == want


def test_requantise_int64_regressions():
    # s8.-16 x s8.-16 accumulates at frac -32; into s8.32 that is a left shift of 64
    acc = np.array([1, -1, 0, 2**40], dtype=np.int64)
    got = requantise(acc, FixedFormat(20, -32), FixedFormat(8, 32))
    assert got.tolist() == [127, -128, 0, 127]
    near = requantise(
        np.array([2**62, -(2**63)]), FixedFormat(64, 70), FixedFormat(8, 0), "nearest"
    )
    assert near.tolist() == [0, 0]
    with pytest.raises(ValueError, match="beyond int64"):
        requantise(np.array([1]), FixedFormat(8, 0), FixedFormat(100, 70))
    with pytest.raises(ValueError, match="wider than int64"):
        handle_overflow(np.array([-1]), FixedFormat(64, 0, signed=False), "wrap")


# --- formats ------------------------------------------------------------------------------


def test_formats_are_normalised_however_built():
    import dataclasses

    f = FixedFormat(np.int64(8), np.int32(4))
    assert f == FixedFormat(8, 4) and type(f.width) is int and hash(f) == hash(FixedFormat(8, 4))
    with pytest.raises(ValueError, match=r"width must be in \[1, 128\], got 0"):
        dataclasses.replace(f, width=0)
    with pytest.raises(ValueError, match="signed must be true or false"):
        FixedFormat(8, 4, signed=1)


def test_range_format_is_the_narrowest_exhaustive():
    for lo in range(-70, 71):
        for hi in range(lo, 71):
            f = range_format(lo, hi, 3)
            assert f.frac_width == 3 and fits(lo, hi, f.width, f.signed), (lo, hi)
            narrower = [fits(lo, hi, f.width - 1, s) for s in (True, False) if f.width > 1]
            assert not any(narrower), (lo, hi, f)
            if f.signed:  # unsigned is one bit narrower, so only used when lo >= 0
                assert lo < 0
    with pytest.raises(ValueError, match="lo must be <= hi"):
        range_format(1, 0, 0)


# --- edges found by mutation testing (docs/mutants.md) ------------------------------------


def _both(values, dtype="float64"):
    import torch

    return np.array(values, dtype=dtype), torch.tensor(values, dtype=getattr(torch, dtype))


def test_array_edges_of_int64_saturation_and_wrap():
    s64 = FixedFormat(64, 0)
    values = [2.0**63, 2.0**63 - 1024, -(2.0**63), -(2.0**63) - 2048, 1e19, -1e19, 2.0**64]
    for wrap in (False, True):
        overflow = "wrap" if wrap else "saturate"
        want = [quantise(v, s64, "floor", overflow) for v in values]
        for arr in _both(values):
            assert quantise(arr, s64, "floor", overflow).tolist() == want, overflow
    assert quantise(2.0**63, s64) == 2**63 - 1 and quantise(2.0**63, s64, "floor", "wrap") == -(
        2**63
    )
    with pytest.raises(ValueError, match=r"^fmt s65.0 is too wide for int64 arrays"):
        quantise(np.array([1.0]), FixedFormat(65, 0))


def test_array_nearest_rounds_half_up_and_narrow_floats_are_widened():
    halves = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
    for arr in _both(halves):
        assert quantise(arr, FixedFormat(8, 0), "nearest").tolist() == [-2, -1, 0, 1, 2, 3]
    # float16 * 2**8 would overflow float16: the scaling must happen in float64
    for arr in _both([1000.0, -1000.0], "float16"):
        assert quantise(arr, FixedFormat(32, 8)).tolist() == [256000, -256000]


def test_array_quantise_is_quiet_and_errors_are_exact():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf and float overflow are expected, not noisy
        got = quantise(np.array([np.inf, -np.inf, 1e308]), FixedFormat(8, 100), "nearest")
    assert got.tolist() == [127, -128, 127]
    for arr in _both([1.0, np.inf]):
        with pytest.raises(ValueError, match=r"^cannot quantise inf with overflow=wrap$"):
            quantise(arr, FixedFormat(8, 0), "floor", "wrap")
    for arr in _both([np.nan]):
        with pytest.raises(ValueError, match=r"^cannot quantise NaN$"):
            quantise(arr, FixedFormat(8, 0))
    with pytest.raises(ValueError, match=r"^rounding must be one of floor\|nearest, got 'half'$"):
        quantise(np.array([1.0]), FixedFormat(8, 0), "half")
    with pytest.raises(ValueError, match=r"^overflow must be one of saturate\|wrap, got 'clip'$"):
        quantise(1.0, FixedFormat(8, 0), "floor", "clip")


def test_dequantise_arrays_and_str():
    for arr in _both([3, -4], "int64"):
        assert dequantise(arr, FixedFormat(8, 2)).tolist() == [0.75, -1.0]
    assert dequantise(np.array([3]), FixedFormat(8, -2)).tolist() == [12.0]
    assert (str(FixedFormat(8, 4, False)), str(FixedFormat(3, -2))) == ("u8.4", "s3.-2")


def test_left_shift_on_int64_wraps_saturates_and_keeps_the_array_type():
    import torch

    s64 = FixedFormat(64, 0)
    cases = [  # (codes, dst, overflow, want)
        ([1, -1, 3], FixedFormat(8, 64), "wrap", [0, 0, 0]),  # a shift by the dtype width
        ([1, -1, 3], FixedFormat(64, 64), "wrap", [0, 0, 0]),
        ([3], FixedFormat(64, 62), "wrap", [-(2**62)]),  # 3 * 2**62 wraps in 64 bits
        ([3], FixedFormat(64, 62), "saturate", [2**63 - 1]),
        ([-(2**61) - 1], FixedFormat(64, 1), "saturate", [-(2**62) - 2]),
        ([-(2**61) - 1], FixedFormat(64, 2), "saturate", [-(2**63)]),
        ([-1, 1, 0], FixedFormat(64, 63), "saturate", [-(2**63), 2**63 - 1, 0]),  # shift 63
        ([-1, 1, 0], FixedFormat(64, 64), "saturate", [-(2**63), 2**63 - 1, 0]),
    ]
    for codes, dst, overflow, want in cases:
        for arr in (np.array(codes, dtype=np.int64), torch.tensor(codes, dtype=torch.int64)):
            got = requantise(arr, s64, dst, "floor", overflow)
            assert type(got) is type(arr) and got.tolist() == want, (codes, dst, overflow)
    with pytest.raises(ValueError, match=r"^requantise into s70.2 gives codes beyond int64"):
        requantise(np.array([-(2**62)]), s64, FixedFormat(70, 2))
    with pytest.raises(ValueError, match=r"^requantise into s70.2 gives codes beyond int64"):
        requantise(np.array([2**62]), s64, FixedFormat(70, 2), "floor", "wrap")
    for fmt in (FixedFormat(70, 1), FixedFormat(64, 1, signed=False)):  # 2**63: not an int64
        with pytest.raises(ValueError, match=r"gives codes beyond int64"):
            requantise(np.array([2**62]), s64, fmt)
    assert requantise(np.array([-(2**60)]), s64, FixedFormat(70, 2)).tolist() == [-(2**62)]


def test_shift_right_int64_boundaries():
    """Right shifts around the dtype width, where the int64 formulas change."""
    import torch

    codes = [2**63 - 1, 2**62, 2**62 - 1, 2**61, -(2**61), -(2**62), -(2**62) - 1, -(2**63), 5, -5]
    for shift in range(58, 68):
        for rounding in ("floor", "nearest"):
            want = [shift_right(c, shift, rounding) for c in codes]
            for arr in (np.array(codes, dtype=np.int64), torch.tensor(codes, dtype=torch.int64)):
                assert shift_right(arr, shift, rounding).tolist() == want, (shift, rounding)


def test_handle_overflow_int64_with_formats_wider_than_the_dtype():
    import torch

    for arr in (np.array([5, -(2**63), 2**63 - 1]), torch.tensor([5, -(2**63), 2**63 - 1])):
        for fmt in (FixedFormat(70, 0), FixedFormat(64, 0)):
            assert handle_overflow(arr, fmt, "saturate").tolist() == [5, -(2**63), 2**63 - 1]
            assert handle_overflow(arr, fmt, "wrap").tolist() == [5, -(2**63), 2**63 - 1]


def test_mode_and_parameter_errors_name_the_parameter():
    f = FixedFormat(8, 0)
    with pytest.raises(ValueError, match=r"^overflow must be one of saturate\|wrap, got 'clip'$"):
        handle_overflow(1, f, "clip")
    with pytest.raises(ValueError, match=r"^overflow must be one of saturate\|wrap, got 'clip'$"):
        requantise(np.array([1]), f, FixedFormat(8, 2), "floor", "clip")
    with pytest.raises(ValueError, match=r"^rounding must be one of floor\|nearest, got 'up'$"):
        shift_right(1, 2, "up")
    with pytest.raises(ValueError, match=r"^shift must be an integer in \[-inf, inf\], got 1.5$"):
        shift_right(1, 1.5, "floor")
    with pytest.raises(ValueError, match=r"^frac_width must be in \[-128, 256\], got 257$"):
        FixedFormat(8, 257)
    f = FixedFormat(np.int64(8), np.int32(-3))
    assert type(f.width) is int and type(f.frac_width) is int
