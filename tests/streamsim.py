"""One stream source, sink and monitor for ``amaranth.lib.stream`` ports ``i``/``o`` in
Amaranth's simulator (the cocotb one is :mod:`hdl.rtlsim.streams`).

:func:`run_stream` drives ``i`` like a rule-abiding producer (random stalls; valid and
payload held until accepted; optional junk while invalid), accepts on ``o`` with a random
ready, and records every broken stream rule on ``o`` as a violation:

* ``o.valid`` (and, while valid, ``o.payload``) must not depend on ``o.ready``;
* while ``o.valid and not o.ready`` the next cycle has ``o.valid`` with the same payload;
* nothing comes out after every beat has.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from amaranth.sim import Simulator


@dataclass
class StreamRun:
    """What came out, the handshake cycles and the broken rules (the first stops the run)."""

    received: list[Any] = field(default_factory=list)
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def run_stream(
    dut,
    beats: Sequence[Any],
    rng: random.Random,
    *,
    read: Callable[[Any], Any],
    latency: int,
    p_valid: float = 0.7,
    p_ready: float = 0.6,
    drain: int = 8,
    junk: Callable[[], Any] | None = None,
    clocked: bool = True,
) -> StreamRun:
    """Push ``beats`` (``i.payload`` values) through ``dut``.  ``read(ctx)``: the output
    beat from ``o.payload``; ``latency``: cycles a beat takes (the run drains ``drain`` past
    it); ``junk()``: a payload to present while ``i.valid`` is low; ``clocked=False``: no
    ``sync`` domain, a "cycle" is a simulator delay."""
    run = StreamRun()

    async def testbench(ctx):
        sent, held, cycle, idle = 0, None, 0, 0
        while cycle < 60 * len(beats) + 200:
            if sent < len(beats) and (ctx.get(dut.i.valid) or rng.random() < p_valid):
                ctx.set(dut.i.valid, 1)  # once valid, a producer holds it until accepted
                ctx.set(dut.i.payload, beats[sent])
            else:
                ctx.set(dut.i.valid, 0)
                if junk is not None:
                    ctx.set(dut.i.payload, junk())
            ctx.set(dut.o.ready, 0)
            v0, p0 = ctx.get(dut.o.valid), read(ctx)
            ctx.set(dut.o.ready, 1)
            if (ctx.get(dut.o.valid), read(ctx)) != (v0, p0) and v0:
                run.violations.append(f"cycle {cycle}: o.valid/o.payload depend on o.ready")
            elif ctx.get(dut.o.valid) != v0:
                run.violations.append(f"cycle {cycle}: o.valid depends on o.ready")
            ready = rng.random() < p_ready
            ctx.set(dut.o.ready, ready)
            o_valid, payload = ctx.get(dut.o.valid), read(ctx)
            if held is not None and (not o_valid or payload != held):
                run.violations.append(f"cycle {cycle}: output changed while stalled")
            if o_valid and len(run.received) >= len(beats):
                run.violations.append(f"cycle {cycle}: o.valid after all beats were delivered")
            if o_valid and ready:
                run.received.append(payload)
                run.out_cycles.append(cycle)
            held = payload if o_valid and not ready else None
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                sent += 1
                run.in_cycles.append(cycle)
            await (ctx.tick() if clocked else ctx.delay(1e-6))
            cycle += 1
            if run.violations:  # one is enough to fail; a broken design may never finish
                return
            if len(run.received) >= len(beats):
                idle += 1
                if idle > drain + latency:
                    return
        run.violations.append(f"gave up after {cycle} cycles: {sent} in, {len(run.received)} out")

    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return run
