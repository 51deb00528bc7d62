"""Invalid LeakyReLU parameters raise ValueError naming the parameter and range."""

import pytest

from hdl.layers.leaky import LeakyReLU, LeakyReLUStream
from qspec.leaky import LeakyReLUSpec

S, M = LeakyReLUSpec.shift_variant, LeakyReLUSpec.mult_variant


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
        (lambda: M(8, 4, 8.0), r"slope must be in \[-8.0, 7.9375\] .*got 8.0"),
        (lambda: M(8, 4, -8.04), r"slope must be in \[-8.0, 7.9375\]"),
        (lambda: M(8, 4, 0.3, slope_width=1), r"slope_width must be in \[2, 32\]"),
        (lambda: M(8, 4, "0.3"), r"slope must be a real number"),
        (lambda: LeakyReLUStream(S(8, 4, 1), lanes=0), r"lanes must be in \[1, 1024\], got 0"),
        (lambda: LeakyReLUStream(S(8, 4, 1), stages=-1), r"stages must be in \[0, 16\], got -1"),
        (lambda: LeakyReLU(S(8, 4, 1), runtime_slope=True), r"runtime_slope requires impl='mult'"),
    ],
)
def test_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_slope_rounds_to_nearest_code():
    spec = M(8, 4, 0.3)
    assert (spec.slope_code, float(spec.slope), spec.slope_requested) == (5, 0.3125, 0.3)
    assert M(8, 4, 7.96).slope_code == 127  # rounds to the top code, still representable
