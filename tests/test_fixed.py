"""qspec.fixed against the exact Fraction model, for ints, numpy arrays and torch tensors."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qspec.fixed import (
    FixedFormat,
    Overflow,
    Rounding,
    accumulator_format,
    dequantise,
    handle_overflow,
    quantise,
    requantise,
)
from tests.fraction_model import model_quantise

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
    assert accumulator_format(FixedFormat(16, 8), 16) == FixedFormat(20, 8)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0, "frac_width": 0}, "width must be in [1, 128], got 0"),
        ({"width": 8, "frac_width": 1.5}, "frac_width must be an integer"),
        ({"width": True, "frac_width": 0}, "width must be an integer"),
    ],
)
def test_bad_formats(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FixedFormat(**kwargs)


def test_bad_modes():
    with pytest.raises(ValueError, match="rounding must be one of floor|nearest, got 'half'"):
        quantise(1.0, FixedFormat(8, 0), "half")
    with pytest.raises(ValueError, match="overflow must be one of saturate|wrap"):
        requantise(1, FixedFormat(8, 0), FixedFormat(8, 0), "floor", "clamp")
