"""Path delay of an adder graph, per target: what the clock-driven pipeliner cuts on.

Pure Python (no Amaranth, no tools). A :class:`DelayModel` gives the delay each graph
node adds on top of its latest operand (an adder: its carry chain; inputs, constants and
inversions: nothing worth a register), and the fixed cost of a register-to-register path
(clock-to-out, setup, clock skew). Coefficients live in the target record
(:attr:`hdl.targets.Target.delay`); ``bench/fit_hwmodel.py`` fits them to nextpnr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from .arith.adder_graph import Node, width_for


@dataclass(frozen=True)
class DelayModel:
    """Register-to-register delay in ns: ``reg + sum over the path of each node's own delay``.

    An adder of ``w`` carry bits costs ``adder + bit * w``; a constant multiplier (``mul``,
    the baseline impl) ``mul``; the layer tail (shift, saturation, activations) ``tail``.
    """

    reg: float  # clock-to-out + setup + skew of one register-to-register path
    adder: float  # LUT into the carry chain plus the route to the next adder
    bit: float  # one carry bit
    mul: float  # a constant multiplier (impl="mul"), as one block
    tail: float  # requantise, saturate and the element-wise layers of a Linear group
    # more for a tail that saturates: its comparison waits for the sum's top carry, then a
    # mux; the last carry cell to the LUT is a long route (nextpnr's critical paths)
    sat: float = 0.0
    # times sqrt(thousands of the design's carry bits): a larger design spreads over more
    # of the device, and its register-to-register routes grow with its side (sqrt of its
    # area); log2 under-predicted jsc-s layers by up to 27 % (bench/results/hwmodel.json)
    size: float = 0.0
    # fraction of the period the pipeliner keeps free (HLS tools' "clock uncertainty"):
    # what placement adds to the model's error
    uncertainty: float = 0.0
    # how ``size`` scales (recorded beside the coefficients by bench/bench_clock.py)
    SIZE_FORM: ClassVar[str] = "sqrt"

    def node(self, node: Node) -> float:
        """The delay ``node`` adds after its latest operand is ready."""
        if node.op == "add":
            a, b, d, _ = node.args
            w = width_for(node.lo, node.hi)[0] - d  # the chain starts at bit d
            return self.adder + self.bit * max(w, 1)
        if node.op == "neg":
            return self.adder + self.bit * width_for(node.lo, node.hi)[0]
        if node.op == "mul":
            return self.mul
        return 0.0  # in, const, inv (an inversion folds into the next adder's LUT)

    def tail_of(self, saturates: bool) -> float:
        """The delay of one neuron's tail."""
        return self.tail + (self.sat if saturates else 0.0)

    def period_ns(self, mhz: float) -> float:
        return 1000.0 / mhz

    def reg_for(self, carry_bits: int) -> float:
        """The register-to-register overhead in a design of ``carry_bits`` carry-chain bits."""
        return self.reg + self.size * math.sqrt(max(carry_bits, 0) / 1000.0)

    def budget_ns(self, mhz: float, carry_bits: int = 1) -> float:
        """Logic delay one stage may hold at ``mhz`` (in a design of ``carry_bits``), less
        the ``uncertainty`` share of the period."""
        return self.period_ns(mhz) * (1.0 - self.uncertainty) - self.reg_for(carry_bits)
