"""cocotb testbench: the plain (combinational) LeakyReLU core, vector by vector.

Inputs and expected outputs come from the caller (the PyTorch reference,
``models.leaky_reference``) in an ``.npz`` file named by ``HWFIRST_TB_VECTORS``: arrays ``x``,
``y`` and, for a runtime-slope core, ``slope``.  No torch in here.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import Timer

MAX_REPORTED = 10


def load_vectors() -> dict[str, np.ndarray]:
    with np.load(os.environ["HWFIRST_TB_VECTORS"]) as f:
        return {k: f[k] for k in f.files}


@cocotb.test()
async def leaky_vectors(dut):
    """Drive every vector, wait 1 ns, compare ``y`` with the reference bit for bit."""
    vec = load_vectors()
    xs, expected = vec["x"].tolist(), vec["y"].tolist()
    slopes = vec["slope"].tolist() if "slope" in vec else None
    assert len(xs) == len(expected) > 0
    assert len(dut.x) == int(vec["in_width"]) and len(dut.y) == int(vec["out_width"])
    x_port, y_port = dut.x, dut.y
    slope_port = dut.slope if slopes is not None else None
    got: list[int] = []
    for k, x in enumerate(xs):
        x_port.value = x
        if slope_port is not None:
            slope_port.value = slopes[k]
        await Timer(1, "ns")
        got.append(y_port.value.to_signed())
    bad = [k for k, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
    report = [
        f"x={xs[k]}"
        + (f" slope={slopes[k]}" if slopes else "")
        + f": y={got[k]} want {expected[k]}"
        for k in bad[:MAX_REPORTED]
    ]
    assert not bad, f"{len(bad)} of {len(xs)} vectors mismatch, first: " + "; ".join(report)
    dut._log.info("%d vectors match", len(xs))
