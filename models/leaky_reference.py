"""The PyTorch reference for LeakyReLU: float64 ``leaky_relu``, re-quantised.

``torch.nn.functional.leaky_relu`` runs on the dequantised inputs with the
*quantised* slope (``float(spec.slope)``, or a runtime slope code's value) in
float64, and the result goes back to integer codes through
``qspec.fixed.quantise`` with the spec's rounding and overflow.  That is exact
only while every product fits float64's 53-bit significand, so the reference
refuses (raises :class:`InexactReference`) instead of returning a rounded
answer.  Used by the tests and ``bench/bench_leaky.py``; testbenches get the numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from qspec.fixed import quantise
from qspec.leaky import LeakyReLUSpec

EXACT_BITS = 53  # float64 significand
INT64_SAFE = 2**62


class InexactReference(ValueError):
    """float64 cannot represent an intermediate exactly: the reference would be wrong."""


def slope_codes(spec: LeakyReLUSpec, slope_code: Any = None) -> tuple[np.ndarray, int]:
    """The slope(s) as integer code(s) and their fractional width."""
    if spec.impl == "shift":
        if slope_code is not None:
            raise ValueError("the shift variant has no runtime slope")
        return np.asarray(1, dtype=np.int64), spec.shift
    assert spec.slope_fmt is not None
    code = spec.slope_code if slope_code is None else slope_code
    return np.asarray(code, dtype=np.int64), spec.slope_fmt.frac_width


def leaky_relu_reference(spec: LeakyReLUSpec, x: Any, slope_code: Any = None) -> np.ndarray:
    """Output codes (int64 array) for input codes ``x``; ``slope_code``: runtime slope(s).

    Raises :class:`InexactReference` when some ``|x_code * slope_code| >= 2**53``.
    """
    x = np.asarray(x, dtype=np.int64)
    codes, slope_frac = slope_codes(spec, slope_code)
    codes = np.broadcast_to(codes, x.shape)
    for name, arr in (("input", x), ("slope", codes)):
        if arr.size and int(np.abs(arr).max()) >= 2**32:
            raise InexactReference(f"{name} codes wider than 32 bits are not supported")
    if x.size == 0:
        return np.zeros(x.shape, np.int64)
    worst = int(np.abs(x * codes).max())  # |x|, |s| < 2**32: no int64 overflow
    if worst >= 2**EXACT_BITS:
        raise InexactReference(
            f"|x_code * slope_code| reaches {worst} >= 2**{EXACT_BITS}: float64 is not exact"
        )
    xt = torch.from_numpy(x.ravel()).to(torch.float64) * 2.0**-spec.in_fmt.frac_width
    # leaky_relu takes one scalar slope: run it once per distinct slope, on the
    # inputs sorted by slope so each call gets a contiguous slice.
    flat = codes.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.flatnonzero(np.diff(flat[order], prepend=flat[order[:1]] - 1))
    ends = np.append(starts[1:], flat.size)
    xs = xt[torch.from_numpy(order)]
    ys = torch.empty_like(xs)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        slope = float(flat[order[a]]) * 2.0**-slope_frac  # exact: |code| < 2**32
        ys[a:b] = F.leaky_relu(xs[a:b], negative_slope=slope)
    out = torch.empty_like(xt)
    out[torch.from_numpy(order)] = ys
    out = out.reshape(x.shape)
    scaled_max = float(out.abs().max()) * 2.0**spec.out_fmt.frac_width
    if scaled_max >= INT64_SAFE:
        raise InexactReference(f"scaled output {scaled_max} does not fit int64")
    return quantise(out, spec.out_fmt, spec.rounding, spec.overflow).numpy()
