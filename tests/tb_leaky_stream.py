"""cocotb testbench: the streamed LeakyReLU (``amaranth.lib.stream`` ports ``i``/``o``).

Vectors come from the pytest process in an ``.npz`` named by
``HWFIRST_TB_VECTORS``: ``x`` and ``y`` (beats x lanes), optionally ``slope``
(one runtime slope code per beat), and the shape parameters.  One coroutine
drives everything cycle by cycle (a clock edge is a manual ``clk`` toggle; the
0-stage form has no clock and a "cycle" is just a handshake slot), so the
checks see exactly what the rules talk about:

* every beat comes out, in order, none lost or duplicated, bit for bit;
* ``o.valid`` and ``o.payload`` do not change when ``o.ready`` flips within a
  cycle (valid never depends on ready);
* while ``o.valid and not o.ready`` the next cycle still has ``o.valid`` with
  the same payload;
* the testbench itself obeys the rules on ``i`` (holds valid and payload until
  accepted) and puts random junk on the payload while ``i.valid`` is low.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.triggers import Timer

from hdl.hdlsim.tb_common import MAX_REPORTED, Trace, pack, phase_prob, unpack

STUCK_CYCLES = 300  # no handshake on either side for this long: give up


@dataclass
class Vectors:
    x: list[list[int]]
    y: list[list[int]]
    slope: list[int] | None
    in_width: int
    out_width: int
    lanes: int
    stages: int


def load_vectors() -> Vectors:
    with np.load(os.environ["HWFIRST_TB_VECTORS"]) as f:
        return Vectors(
            f["x"].tolist(),
            f["y"].tolist(),
            f["slope"].tolist() if "slope" in f.files else None,
            int(f["in_width"]),
            int(f["out_width"]),
            int(f["lanes"]),
            int(f["stages"]),
        )


class Harness:
    def __init__(self, dut, vec: Vectors):
        self.dut, self.vec = dut, vec
        self.clocked = vec.stages > 0
        assert len(dut.i__payload) == vec.lanes * vec.in_width
        assert len(dut.o__payload) == vec.lanes * vec.out_width
        self.slope_port = dut.slope if vec.slope is not None else None
        self.slope_width = len(dut.slope) if vec.slope is not None else 0

    async def settle(self) -> None:
        await Timer(1, "ns")

    async def reset(self) -> None:
        dut = self.dut
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        if self.clocked:
            dut.rst.value = 1
            for _ in range(2):
                dut.clk.value = 0
                await self.settle()
                dut.clk.value = 1
                await self.settle()
            dut.clk.value = 0
            dut.rst.value = 0
        await self.settle()

    async def run(self, rng: random.Random, p_valid, p_ready, drain: int = 4) -> Trace:
        """Push every beat through; ``p_valid``/``p_ready``: cycle -> probability."""
        dut, vec, tr = self.dut, self.vec, Trace()
        n = len(vec.x)
        w_in, lanes = vec.in_width, vec.lanes
        k_in, presenting = 0, False
        prev_stall: tuple[int, int] | None = None  # o.payload held back last cycle
        limit = 200 + 50 * n
        cycle = idle_after = last_progress = 0
        while cycle < limit:
            if cycle - last_progress > STUCK_CYCLES:
                tr.error(
                    f"no transfer for {STUCK_CYCLES} cycles at cycle {cycle}: "
                    f"{k_in}/{n} beats in, {len(tr.outputs)} out"
                )
                break
            if not presenting and k_in < n and rng.random() < p_valid(cycle):
                presenting = True
            if presenting:
                dut.i__valid.value = 1
                dut.i__payload.value = pack(vec.x[k_in], w_in)
                if self.slope_port is not None:
                    self.slope_port.value = vec.slope[k_in]
            else:
                dut.i__valid.value = 0
                dut.i__payload.value = rng.getrandbits(lanes * w_in)
                if self.slope_port is not None:
                    self.slope_port.value = rng.getrandbits(self.slope_width)
            # valid (and the payload it qualifies) must not depend on ready
            dut.o__ready.value = 0
            await self.settle()
            v0, p0 = int(dut.o__valid.value), dut.o__payload.value.to_unsigned()
            dut.o__ready.value = 1
            await self.settle()
            v1, p1 = int(dut.o__valid.value), dut.o__payload.value.to_unsigned()
            if v0 != v1 or (v0 and p0 != p1):
                tr.error(
                    f"cycle {cycle}: o.valid/o.payload changed with o.ready "
                    f"({v0},{p0:#x}) -> ({v1},{p1:#x})"
                )
            ready = int(rng.random() < p_ready(cycle))
            dut.o__ready.value = ready
            await self.settle()
            o_valid = int(dut.o__valid.value)
            o_payload = dut.o__payload.value.to_unsigned()
            i_ready = int(dut.i__ready.value)
            if prev_stall is not None:
                if not o_valid:
                    tr.error(f"cycle {cycle}: o.valid dropped before the beat was accepted")
                elif o_payload != prev_stall[1]:
                    tr.error(
                        f"cycle {cycle}: o.payload changed while stalled "
                        f"({prev_stall[1]:#x} -> {o_payload:#x})"
                    )
            prev_stall = (o_valid, o_payload) if o_valid and not ready else None
            if o_valid and len(tr.outputs) >= n:
                tr.error(f"cycle {cycle}: o.valid with all {n} beats already delivered")
            if o_valid and ready:
                tr.outputs.append(unpack(o_payload, vec.out_width, lanes))
                tr.out_cycles.append(cycle)
                last_progress = cycle
            if presenting and i_ready:
                last_progress = cycle
                tr.in_cycles.append(cycle)
                presenting, k_in = False, k_in + 1
            if self.clocked:
                dut.clk.value = 1
                await self.settle()
                dut.clk.value = 0
            cycle += 1
            if k_in == n and len(tr.outputs) >= n:
                idle_after += 1  # keep going a little: nothing more may come out
                if idle_after > drain + vec.stages:
                    break
        if cycle >= limit:
            tr.error(f"gave up after {cycle} cycles: {k_in}/{n} beats in, {len(tr.outputs)} out")
        return tr


def check_outputs(tr: Trace, vec: Vectors) -> None:
    n = len(vec.y)
    if len(tr.outputs) != n:
        tr.error(f"{len(tr.outputs)} beats came out, {n} went in")
    bad = [k for k, (g, e) in enumerate(zip(tr.outputs, vec.y, strict=False)) if g != e]
    for k in bad[:MAX_REPORTED]:
        slope = f" slope={vec.slope[k]}" if vec.slope is not None else ""
        tr.error(f"beat {k}: x={vec.x[k]}{slope} -> {tr.outputs[k]}, want {vec.y[k]}")
    if bad:
        tr.error(f"{len(bad)} of {n} beats mismatch")


@cocotb.test()
async def stream_random_stalls(dut):
    """Random valid/ready stalls on both sides; every beat arrives, in order, intact."""
    vec = load_vectors()
    h = Harness(dut, vec)
    await h.reset()
    seed = int(os.environ.get("HWFIRST_TB_SEED", "1"))
    tr = await h.run(
        random.Random(seed),
        phase_prob(seed + 1, (0.2, 0.6, 0.9, 1.0), 64),
        phase_prob(seed + 2, (0.1, 0.5, 0.8, 1.0), 64),
    )
    check_outputs(tr, vec)
    assert not tr.errors, "\n".join(tr.errors)
    dut._log.info("%d beats of %d lanes through %d stages", len(vec.x), vec.lanes, vec.stages)


@cocotb.test()
async def stream_full_rate(dut):
    """No stalls: latency is ``stages`` cycles and one beat moves per cycle."""
    vec = load_vectors()
    h = Harness(dut, vec)
    await h.reset()
    tr = await h.run(random.Random(0), lambda c: 1.0, lambda c: 1.0)
    check_outputs(tr, vec)
    n = len(vec.x)
    if tr.in_cycles != list(range(n)):
        tr.error(f"inputs not accepted every cycle: {tr.in_cycles[:10]}...")
    lat = [o - i for i, o in zip(tr.in_cycles, tr.out_cycles, strict=False)]
    if set(lat) != {vec.stages}:
        tr.error(f"latencies {sorted(set(lat))}, want {vec.stages}")
    assert not tr.errors, "\n".join(tr.errors)
