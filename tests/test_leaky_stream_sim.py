"""The streamed LeakyReLU under random valid/ready stalls, in Amaranth's simulator."""

import random

import pytest
from amaranth.sim import Simulator

from hdl.layers.leaky import LeakyReLUStream
from qspec.leaky import LeakyReLUSpec
from tests.fraction_model import model_leaky

SPECS = {
    "shift": LeakyReLUSpec.shift_variant(8, 4, 2, rounding="nearest"),
    "mult": LeakyReLUSpec.mult_variant(8, 4, -1.3, overflow="wrap"),
}


def run_stream(dut, beats, rng, cycles_max=4000):
    """Drive ``beats`` with a rule-abiding random producer and consumer; return what came out."""
    received, violations = [], []

    async def testbench(ctx):
        sent, held = 0, None  # held: (valid, payload) of a stalled output beat
        for _ in range(cycles_max):
            if sent < len(beats) and (ctx.get(dut.i.valid) or rng.random() < 0.7):
                ctx.set(dut.i.valid, 1)  # once valid, a producer holds it until accepted
                ctx.set(dut.i.payload, beats[sent])
            else:
                ctx.set(dut.i.valid, 0)
            ctx.set(dut.o.ready, rng.random() < 0.6)
            o_valid, payload = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            payload = [payload[k] for k in range(dut.lanes)]
            if held is not None and (not o_valid or payload != held):
                violations.append(("output changed while stalled", held, payload))
            if ctx.get(dut.o.ready) == 0 and dut.stages:
                ctx.set(dut.o.ready, 1)  # valid must not depend on ready
                if ctx.get(dut.o.valid) != o_valid:
                    violations.append("o.valid depends on o.ready")
                ctx.set(dut.o.ready, 0)
            accepted = o_valid and ctx.get(dut.o.ready)
            if accepted:
                received.append(payload)
            held = payload if o_valid and not accepted else None
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                sent += 1
            await (ctx.tick() if dut.stages else ctx.delay(1e-6))
            if len(received) == len(beats):
                return

    sim = Simulator(dut)
    if dut.stages:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return received, violations


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
