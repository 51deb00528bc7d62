"""One accumulator rule, exact for every signedness mix (issue #7, defect 3).

The old rule assumed every term fits a signed width: u8 x u8 over 3 terms gave s18,
but the sum reaches 3 * 255 * 255 (+ bias) = 195330 > 2**17 - 1.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import qspec.fixed
from qspec.fixed import FixedFormat, product_format, range_format
from qspec.network import accumulator_range, min_accumulator_format
from tests.fraction_model import fits, fmt_range, model_sum_range

small_formats = st.builds(
    FixedFormat, width=st.integers(1, 12), frac_width=st.integers(-6, 10), signed=st.booleans()
)


def _extreme_sums(in_fmt, w_fmt, b_fmt, terms):
    """The attained extremes: x and w at the corner maximising (minimising) each term."""
    corners = [(x, w) for x in (in_fmt.min_code, in_fmt.max_code)
               for w in (w_fmt.min_code, w_fmt.max_code)]  # fmt: skip
    hi_x, hi_w = max(corners, key=lambda c: c[0] * c[1])
    lo_x, lo_w = min(corners, key=lambda c: c[0] * c[1])
    shift = in_fmt.frac_width + w_fmt.frac_width - b_fmt.frac_width
    hi = sum(x * w for x, w in zip([hi_x] * terms, [hi_w] * terms, strict=True))
    lo = sum(x * w for x, w in zip([lo_x] * terms, [lo_w] * terms, strict=True))
    return lo + (b_fmt.min_code << shift), hi + (b_fmt.max_code << shift)


@given(small_formats, small_formats, small_formats, st.integers(1, 300), st.integers(0, 8))
def test_accumulator_holds_the_exact_extremes_and_is_the_narrowest(fi, fw, bw, terms, slack):
    fb = FixedFormat(bw.width, fi.frac_width + fw.frac_width - slack, bw.signed)
    acc = min_accumulator_format(fi, fw, fb, terms)
    assert acc.frac_width == fi.frac_width + fw.frac_width
    lo, hi = model_sum_range(
        fmt_range(fi.width, fi.signed), fmt_range(fw.width, fw.signed),
        fmt_range(fb.width, fb.signed), slack, terms,
    )  # fmt: skip
    assert (lo, hi) == _extreme_sums(fi, fw, fb, terms)  # both ends are attained
    assert acc.contains(lo) and acc.contains(hi)
    for signed in (True, False):  # one bit less, of either signedness, cannot hold them
        assert acc.width == 1 or not fits(lo, hi, acc.width - 1, signed)
    assert acc.signed == (lo < 0)


def test_unsigned_regression_and_mixed_signedness():
    u8, s8 = FixedFormat(8, 0, False), FixedFormat(8, 0)
    acc = min_accumulator_format(u8, u8, u8, 3)
    assert acc == FixedFormat(18, 0, False) and acc.max_code >= 3 * 255 * 255 + 255
    # u8 x s8: products in [-32640, 32385]; 3 of them + an s8 bias
    assert min_accumulator_format(u8, s8, s8, 3) == FixedFormat(18, 0)
    assert min_accumulator_format(s8, s8, s8, 1) == FixedFormat(16, 0)  # (-128)**2 + 127
    assert min_accumulator_format(s8, s8, FixedFormat(1, 0), 1) == FixedFormat(16, 0)
    assert min_accumulator_format(s8, s8, FixedFormat(8, -8), 1) == FixedFormat(17, 0)  # b << 8


def test_there_is_one_rule():
    assert not hasattr(qspec.fixed, "accumulator_format")


def test_accumulator_range_and_errors():
    s8 = FixedFormat(8, 0)
    assert accumulator_range(s8, s8, FixedFormat(8, -8), 2) == (
        2 * -16256 + -128 * 256,
        2 * 16384 + 127 * 256,
    )
    assert product_format(FixedFormat(8, 1, False), s8) == FixedFormat(16, 1)
    assert product_format(FixedFormat(8, 1, False), FixedFormat(3, -2, False)) == FixedFormat(
        11, -1, False
    )
    with pytest.raises(ValueError, match=r"^terms must be in \[1, inf\], got 0$"):
        min_accumulator_format(s8, s8, s8, 0)
    with pytest.raises(ValueError, match=r"^terms must be an integer in \[1, inf\], got 2.0$"):
        min_accumulator_format(s8, s8, s8, 2.0)
    message = r"^bias_fmt.frac_width must be <= input\+weight frac width 6, got 7$"
    with pytest.raises(ValueError, match=message):
        min_accumulator_format(FixedFormat(8, 4), FixedFormat(8, 2), FixedFormat(8, 7), 1)
    with pytest.raises(ValueError, match=r"^lo must be an integer in \[-inf, inf\], got 0.5$"):
        range_format(0.5, 1, 0)
    with pytest.raises(ValueError, match=r"^hi must be an integer in \[-inf, inf\], got '1'$"):
        range_format(0, "1", 0)
