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

from hdl.rtlsim.streams import run_stream, settle
from hdl.rtlsim.tb_common import MAX_REPORTED, Trace, pack, phase_prob, unpack


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

    async def reset(self) -> None:
        dut = self.dut
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        if self.clocked:
            dut.rst.value = 1
            for _ in range(2):
                dut.clk.value = 0
                await settle()
                dut.clk.value = 1
                await settle()
            dut.clk.value = 0
            dut.rst.value = 0
        await settle()

    async def tick(self) -> None:
        self.dut.clk.value = 1
        await settle()
        self.dut.clk.value = 0

    def present(self, k: int | None, rng: random.Random) -> None:
        """The runtime slope of beat ``k`` (random junk between beats)."""
        if self.slope_port is not None:
            slope = self.vec.slope
            assert slope is not None
            self.slope_port.value = rng.getrandbits(self.slope_width) if k is None else slope[k]

    def read_output(self) -> tuple[int, int]:
        return int(self.dut.o__valid.value), self.dut.o__payload.value.to_unsigned()

    async def run(self, rng: random.Random, p_valid, p_ready, drain: int = 4) -> Trace:
        """Push every beat through; ``p_valid``/``p_ready``: cycle -> probability."""
        vec = self.vec

        def accept(tr: Trace, word: int) -> None:
            tr.outputs.append(unpack(word, vec.out_width, vec.lanes))

        return await run_stream(
            self.dut,
            [pack(x, vec.in_width) for x in vec.x],
            rng,
            p_valid,
            p_ready,
            read_output=self.read_output,
            accept=accept,
            tick=self.tick if self.clocked else None,
            drain=drain + vec.stages,
            present=self.present,
            what="beats",
        )


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
