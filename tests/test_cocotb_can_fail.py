"""The cocotb checks can fail: deliberately broken hardware must be reported.

Each test builds a wrong design, runs the normal testbench against the normal
PyTorch reference and asserts that cocotb reports the failure (through the
results XML, like every other run) with the message of the check that should
catch it.  A testbench that passes these designs would be worthless.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Module, Mux, Signal
from amaranth.hdl import signed as hsigned

import hdl.arith.fixed
from hdl.export import export_leaky, to_verilog
from hdl.layers.leaky import LeakyReLUStream, leaky_relu
from qspec.fixed import Rounding
from qspec.leaky import LeakyReLUSpec
from tests import sim as simlib
from tests.test_cocotb_leaky import Case, StreamCase, run_core, run_stream

pytestmark = [pytest.mark.cocotb, pytest.mark.parametrize("sim", simlib.sim_params())]

SPEC = LeakyReLUSpec.shift_variant(8, 4, 2)


def assert_caught(result: simlib.Result, message: str, num_tests: int = 1) -> None:
    """cocotb ran the test(s) and reported a failure mentioning ``message``."""
    log = result.log.read_text(errors="replace")
    assert result.num_tests == num_tests, result.log_tail()
    assert result.num_failed >= 1, f"broken design passed:\n{result.log_tail()}"
    assert message in log, f"failure without {message!r}:\n{result.log_tail()}"


def test_shift_off_by_one_is_caught(sim: str, tmp_path: Path) -> None:
    wrong = export_leaky(LeakyReLUSpec.shift_variant(8, 4, 3))  # hardware shifts one too far
    result = run_core(sim, Case("off_by_one", SPEC), tmp_path, module=(wrong.name, wrong.verilog))
    assert_caught(result, "vectors mismatch")


def test_hardware_rounding_floor_instead_of_nearest_is_caught(
    sim: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = LeakyReLUSpec.mult_variant(8, 4, 0.3, rounding="nearest")
    real_shift_right = hdl.arith.fixed.shift_right
    monkeypatch.setattr(
        hdl.arith.fixed,
        "shift_right",
        lambda v, n, rounding: real_shift_right(v, n, Rounding.FLOOR),
    )
    wrong = export_leaky(spec)
    monkeypatch.undo()
    assert wrong.verilog != export_leaky(spec).verilog, "the monkeypatch changed nothing"
    name = wrong.name + "_floored"
    verilog = wrong.verilog.replace(f"module {wrong.name}(", f"module {name}(")
    result = run_core(sim, Case("floored", spec), tmp_path, module=(name, verilog))
    assert_caught(result, "vectors mismatch")


class BrokenStream(LeakyReLUStream):
    """One-lane streamed LeakyReLU with a protocol bug."""

    @classmethod
    def check(cls, spec: LeakyReLUSpec, bug: str) -> None:  # the constructor's own signature
        super().check(spec, lanes=1, stages=cls._stages(bug))

    @staticmethod
    def _stages(bug: str) -> int:
        return 0 if bug == "valid_needs_ready" else 1

    def __init__(self, spec: LeakyReLUSpec, bug: str):
        self.bug = bug
        super().__init__(spec, lanes=1, stages=self._stages(bug))

    def elaborate(self, platform):
        m = Module()
        y = leaky_relu(m, self.spec, self.i.payload[0])
        i, o = self.i, self.o
        if self.bug == "valid_needs_ready":  # valid waits for ready: a combinational loop risk
            m.d.comb += [o.valid.eq(i.valid & o.ready), i.ready.eq(o.ready), o.payload[0].eq(y)]
            return m
        v, p = Signal(), Signal(hsigned(self.spec.out_fmt.width))
        m.d.comb += [o.valid.eq(v), o.payload[0].eq(p)]
        if self.bug == "ignores_ready":  # loads every cycle: overwrites a stalled beat
            m.d.comb += i.ready.eq(1)
            m.d.sync += [v.eq(i.valid), p.eq(y)]
        elif self.bug == "never_empties":  # forgets to clear valid: repeats beats
            ready = ~v | o.ready
            m.d.comb += i.ready.eq(ready)
            with m.If(ready):
                m.d.sync += [v.eq(v | i.valid), p.eq(Mux(i.valid, y, p))]
        else:
            raise ValueError(self.bug)
        return m


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        ("valid_needs_ready", "changed with o.ready"),
        ("ignores_ready", "o.payload changed while stalled"),
        ("never_empties", "already delivered"),
    ],
)
def test_stream_protocol_bugs_are_caught(sim: str, bug: str, message: str, tmp_path: Path) -> None:
    comp = BrokenStream(SPEC, bug)
    name = f"lrelu_broken_{bug}"
    case = StreamCase(bug, SPEC, lanes=1, stages=comp.stages)
    result = run_stream(sim, case, tmp_path, module=(name, to_verilog(comp, name)))
    assert_caught(result, message, num_tests=2)
