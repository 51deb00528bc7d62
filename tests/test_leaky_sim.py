"""LeakyReLU generators in Amaranth's simulator vs the exact Fraction model.

Exhaustive over every input code for widths <= 12; hypothesis over random
parameter sets beyond that. The streamed form is checked under random stalls.
"""

import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hdl.arith.fixed
from hdl.pysim import simulate_leaky
from qspec.fixed import FixedFormat, Rounding
from qspec.leaky import LeakyReLUSpec
from tests.fraction_model import model_leaky

S, M = LeakyReLUSpec.shift_variant, LeakyReLUSpec.mult_variant
ROUND_OVF = [("floor", "saturate"), ("nearest", "saturate"), ("floor", "wrap"), ("nearest", "wrap")]

EXHAUSTIVE = [
    *(
        S(w, f, n, rounding=r, overflow=o)
        for (w, f, n) in [
            (2, 0, 1),
            (3, 1, 0),
            (5, -2, 2),
            (8, 4, 2),
            (8, 4, 7),
            (12, 6, 3),
            (12, 0, 12),
        ]
        for (r, o) in ROUND_OVF[:2]
    ),
    S(8, 4, 3, out_width=5, out_frac_width=2, rounding="nearest"),
    S(8, 4, 1, out_width=6, out_frac_width=5, overflow="wrap"),
    S(10, 3, 4, out_width=12, out_frac_width=6),
    *(
        M(8, 4, slope, rounding=r, overflow=o)
        for slope in (0.3, Fraction(5, 16), -0.75, 1.5, 0.0, -1.0, 7.9375)
        for (r, o) in ROUND_OVF
    ),
    M(12, 8, 77 / 256, slope_width=9, slope_frac_width=8, rounding="nearest"),
    M(12, 3, 0.1, slope_width=16, slope_frac_width=15),
    M(12, 0, -3.0, slope_width=4, slope_frac_width=0, overflow="wrap"),
    M(6, 2, 0.6, slope_width=3, slope_frac_width=2),
    M(9, 4, 0.3, out_width=6, out_frac_width=1, rounding="nearest", overflow="wrap"),
    M(9, -1, 2.5, slope_width=5, slope_frac_width=1, out_width=12, out_frac_width=2),
]


def _all_codes(spec):
    fmt = spec.in_fmt
    return range(fmt.min_code, fmt.max_code + 1)


def mismatches(spec, xs, slopes=None):
    """(x, hardware, expected) for every input where the simulated core is wrong."""
    got = simulate_leaky(spec, xs, slopes)
    bad = []
    for k, (x, y) in enumerate(zip(xs, got, strict=True)):
        ref = spec if slopes is None else _with_slope(spec, slopes[k])
        want = model_leaky(ref, x)
        if y != want:
            bad.append((x, y, want))
    return bad


def _with_slope(spec, code):
    return M(
        spec.in_fmt.width,
        spec.in_fmt.frac_width,
        spec.slope_fmt.real(code),
        slope_width=spec.slope_fmt.width,
        slope_frac_width=spec.slope_fmt.frac_width,
        rounding=spec.rounding,
        overflow=spec.overflow,
        out_width=spec.out_fmt.width,
        out_frac_width=spec.out_fmt.frac_width,
    )


@pytest.mark.parametrize(
    "spec",
    EXHAUSTIVE,
    ids=lambda s: (
        f"{s.impl}-{s.in_fmt}-{s.out_fmt}-"
        f"{s.shift if s.impl == 'shift' else s.slope}-{s.rounding}-{s.overflow}"
    ),
)
def test_exhaustive(spec):
    xs = list(_all_codes(spec))
    assert mismatches(spec, xs) == []
    # the integer semantics used by the software references agree too
    assert [spec.forward(x) for x in xs] == [model_leaky(spec, x) for x in xs]


@pytest.mark.parametrize("rounding, overflow", ROUND_OVF)
def test_runtime_slope_exhaustive_inputs(rounding, overflow):
    spec = M(8, 4, 0.25, slope_width=6, slope_frac_width=3, rounding=rounding, overflow=overflow)
    rng = random.Random(1)
    xs = [x for x in _all_codes(spec) for _ in range(2)]
    slopes = [rng.randrange(-32, 32) for _ in xs]
    assert mismatches(spec, xs, slopes) == []


@st.composite
def specs(draw):
    w = draw(st.integers(2, 20))
    f = draw(st.integers(-4, w + 4))
    common = dict(
        rounding=draw(st.sampled_from(["floor", "nearest"])),
        overflow=draw(st.sampled_from(["saturate", "wrap"])),
        out_width=draw(st.one_of(st.none(), st.integers(2, 24))),
        out_frac_width=draw(st.one_of(st.none(), st.integers(-4, 24))),
    )
    if draw(st.booleans()):
        return S(w, f, draw(st.integers(0, w)), **common)
    sw = draw(st.integers(2, 16))
    sf = draw(st.integers(-2, 18))
    code = draw(st.integers(-(2 ** (sw - 1)), 2 ** (sw - 1) - 1))
    return M(w, f, Fraction(code) / 2**sf, slope_width=sw, slope_frac_width=sf, **common)


@given(specs(), st.randoms(use_true_random=False))
def test_random_parameters(spec, rng):
    fmt = spec.in_fmt
    xs = [fmt.min_code, fmt.min_code + 1, -1, 0, 1, fmt.max_code]
    xs += [rng.randint(fmt.min_code, fmt.max_code) for _ in range(60)]
    assert mismatches(spec, xs) == []


def test_check_detects_wrong_rounding(monkeypatch):
    """A hardware rounding bug (always floor) must be reported by the same check."""
    spec = M(8, 4, 0.3, rounding="nearest")
    real_shift = hdl.arith.fixed.shift_right
    monkeypatch.setattr(
        hdl.arith.fixed, "shift_right", lambda v, s, r: real_shift(v, s, Rounding.FLOOR)
    )
    assert len(mismatches(spec, list(_all_codes(spec)))) > 0


def test_check_detects_wrong_shift(monkeypatch):
    """Hardware whose negative branch shifts by n + 1 must be reported by the same check."""
    spec = S(8, 4, 2)
    real = hdl.arith.fixed.requantise

    def off_by_one(v, src, dst, *args, **kwargs):
        if src.frac_width > dst.frac_width:  # only the x >> n branch drops fraction bits here
            src = FixedFormat(src.width, src.frac_width + 1)
        return real(v, src, dst, *args, **kwargs)

    monkeypatch.setattr(hdl.arith.fixed, "requantise", off_by_one)
    bad = mismatches(spec, list(_all_codes(spec)))
    assert bad and all(x < 0 for x, _, _ in bad)
    assert len(bad) >= 64  # most negative inputs differ


def test_shift_equals_mult_with_power_of_two_slope():
    for n in range(0, 5):
        a = S(8, 4, n, rounding="nearest")
        b = M(8, 4, 2.0**-n, rounding="nearest")
        xs = list(_all_codes(a))
        assert simulate_leaky(a, xs) == simulate_leaky(b, xs)


def test_out_format_defaults_to_input():
    assert S(8, 4, 1).out_fmt == FixedFormat(8, 4)
