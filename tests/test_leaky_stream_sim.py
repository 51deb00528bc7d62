"""The streamed LeakyReLU under random valid/ready stalls, in Amaranth's simulator."""

import random

import pytest
from amaranth.sim import Simulator

from hdl.layers.leaky import LeakyReLUStream
from qspec.leaky import LeakyReLUSpec
from tests import streamsim
from tests.fraction_model import model_leaky

SPECS = {
    "shift": LeakyReLUSpec.shift_variant(8, 4, 2, rounding="nearest"),
    "mult": LeakyReLUSpec.mult_variant(8, 4, -1.3, overflow="wrap"),
}


def run_stream(dut, beats, rng):
    """Drive ``beats`` with the shared rule-abiding random producer and consumer."""

    def read(ctx) -> list[int]:
        payload = ctx.get(dut.o.payload)
        return [payload[k] for k in range(dut.lanes)]

    run = streamsim.run_stream(
        dut, beats, rng, read=read, latency=dut.stages, clocked=bool(dut.stages)
    )
    return run.received, run.violations


@pytest.mark.parametrize("impl", sorted(SPECS))
@pytest.mark.parametrize("lanes, stages", [(1, 0), (1, 1), (3, 0), (4, 1), (2, 2), (2, 3)])
def test_stream_under_stalls(impl, lanes, stages):
    spec = SPECS[impl]
    rng = random.Random(f"{impl}{lanes}{stages}")
    fmt = spec.in_fmt
    beats = [[rng.randint(fmt.min_code, fmt.max_code) for _ in range(lanes)] for _ in range(300)]
    dut = LeakyReLUStream(spec, lanes=lanes, stages=stages)
    received, violations = run_stream(dut, beats, rng)
    assert violations == []
    assert received == [[model_leaky(spec, x) for x in beat] for beat in beats]


def test_full_throughput_without_stalls():
    """With ready always high the pipeline accepts a beat every cycle (II = 1)."""
    spec = SPECS["shift"]
    dut = LeakyReLUStream(spec, lanes=2, stages=2)
    accepted = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(20):
            ctx.set(dut.i.payload, [cycle, -cycle])
            accepted.append(ctx.get(dut.i.ready))
            if cycle >= 2:  # latency = stages
                assert ctx.get(dut.o.valid) == 1
                assert [ctx.get(dut.o.payload)[k] for k in range(2)] == [
                    spec.forward(cycle - 2),
                    spec.forward(2 - cycle),
                ]
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert all(accepted)
