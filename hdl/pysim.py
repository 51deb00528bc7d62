"""Run generated components in Amaranth's own simulator (fast, no Verilog needed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from amaranth.sim import Simulator

from qspec.leaky import LeakyReLUSpec

from .layers.leaky import LeakyReLU


def simulate_leaky(
    spec: LeakyReLUSpec, xs: Iterable[int], slopes: Sequence[int] | None = None
) -> list[int]:
    """Output codes of the combinational core for input codes ``xs``.

    With ``slopes`` (one code per input) the core is built with a runtime slope port.
    """
    xs = list(xs)
    dut = LeakyReLU(spec, runtime_slope=slopes is not None)
    out: list[int] = []

    async def testbench(ctx):
        for k, x in enumerate(xs):
            ctx.set(dut.x, x)
            if slopes is not None:
                ctx.set(dut.slope, slopes[k])
            out.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return out
