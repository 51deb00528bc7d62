"""Yosys proves: shift variant with n == mult variant with slope 2^-n (miter + SAT)."""

import pytest

from hdl.export import export_leaky
from hdl.formal import prove_equivalent
from qspec.leaky import LeakyReLUSpec

S, M = LeakyReLUSpec.shift_variant, LeakyReLUSpec.mult_variant

CASES = [
    (w, f, n, sf, r)
    for (w, f, ns) in [(8, 4, (0, 1, 2, 4)), (16, 8, (0, 1, 3, 8))]
    for n in ns
    for sf in (f, w - 1)
    for r in ("floor", "nearest")
    if not (n == 0 and sf == w - 1)  # slope 1.0 is outside s<w>.<w-1>
] + [(8, 4, 7, 7, "floor"), (16, 8, 15, 15, "nearest")]


def _pair(w, f, n, sf, rounding, slope_n=None):
    shift = export_leaky(S(w, f, n, rounding=rounding))
    mult = export_leaky(
        M(w, f, 2.0 ** -(n if slope_n is None else slope_n), slope_frac_width=sf, rounding=rounding)
    )
    return shift, mult


@pytest.mark.parametrize("w, f, n, sf, rounding", CASES)
def test_shift_equals_mult_power_of_two(w, f, n, sf, rounding):
    shift, mult = _pair(w, f, n, sf, rounding)
    result = prove_equivalent(shift.verilog, shift.name, mult.verilog, mult.name)
    assert result.equivalent, result.counterexample


@pytest.mark.parametrize("w, f, n", [(8, 4, 2), (16, 8, 3)])
def test_proof_finds_counterexample(w, f, n):
    """The same proof must fail for a slope of 2^-(n+1), and name an input that shows it."""
    shift, mult = _pair(w, f, n, w - 1, "floor", slope_n=n + 1)
    result = prove_equivalent(shift.verilog, shift.name, mult.verilog, mult.name)
    assert not result.equivalent
    x = int(result.counterexample.split()[1])  # "\in_x  <decimal>  <hex>  <binary>"
    x = x - (1 << w) if x >= 1 << (w - 1) else x
    spec_a, spec_b = S(w, f, n), M(w, f, 2.0 ** -(n + 1), slope_frac_width=w - 1)
    assert spec_a.forward(x) != spec_b.forward(x)
