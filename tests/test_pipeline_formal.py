"""Yosys proves a clock-placed LinearLayer equal, cycle for cycle from its latency on, to the
``mul`` layer behind that many input registers (``hdl.formal.prove_pipelined_layer``), for
every input sequence (and, bounded, every stall pattern); and refutes broken pipelines with
a witness that the integer reference confirms."""

import re

import numpy as np
import pytest
from amaranth.hdl import Module, Signal

import hdl.arith.adder_graph
import hdl.hwmodel
from hdl.arith.adder_tree import Emitter
from hdl.export import to_verilog
from hdl.formal import Delayed, prove_pipelined_layer, prove_sequential_equivalent
from hdl.layers.linear import LinearLayer
from hdl.pipeline import place
from qspec.fixed import FixedFormat
from qspec.integer_forward import layer_forward
from qspec.leaky import LeakyReLUSpec
from tests.test_linear_formal import _decode, small_layer

IMPLS = ["adder_tree", "adder_tree_nosub"]


@pytest.fixture
def fresh_graphs():
    """Placement memoises each layer's graph: a test that breaks graph building must
    neither reuse a good one nor leave its broken one behind."""
    hdl.hwmodel.emitted_cached.cache_clear()
    yield
    hdl.hwmodel.emitted_cached.cache_clear()


def check_witness(result, layers):
    """The failing cycle's gold output is the reference of the input ``latency`` cycles
    earlier (the proof's gold is the integer function), and the gate's differs from it."""
    t = result.failing_cycle
    assert t is not None and t > result.latency, result.trace
    row, src = result.trace[t - 1], result.trace[t - 1 - result.latency]
    spec, out_fmt = layers[0], layers[-1].out_fmt
    x = _decode(src["x"], spec.in_fmt, spec.in_features)
    ref = np.array([x])
    for layer in layers:
        ref = layer_forward(layer, ref)
    assert _decode(row["gold_y"], out_fmt, spec.out_features) == ref[0].tolist()
    assert row["gate_y"] != row["gold_y"]


@pytest.mark.parametrize("mhz", [150, 200, 300])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("rounding", "overflow"), [("nearest", "saturate"), ("floor", "wrap")])
def test_clocked_layer_equals_mul_behind_registers(rounding, overflow, impl, mhz):
    spec = small_layer(rounding, overflow)
    result = prove_pipelined_layer([spec], impl=impl, clock_mhz=mhz, timeout=120)
    assert result.latency == place([spec], impl, mhz).latency
    assert result.latency >= 2  # a real pipeline: registers inside the adder tree
    assert result.equivalent, result.trace


def test_clocked_layer_with_leaky_tail():
    spec = small_layer("nearest", "saturate", out_fmt=FixedFormat(6, 2))
    layers = [spec, LeakyReLUSpec.mult_variant(6, 2, 0.3, rounding="nearest")]
    result = prove_pipelined_layer(layers, clock_mhz=200, timeout=120)
    assert result.latency >= 3 and result.equivalent, result.trace


@pytest.mark.parametrize("impl", IMPLS)
def test_stalls_hold_the_pipeline(impl):
    """``en`` free after the pipeline has filled: every stall pattern of 2 cycles.  The
    gold is the unpipelined adder tree (the arithmetic is proven above; this is about
    ``en``), which keeps the SAT problem small."""
    spec = small_layer("nearest", "saturate", seed=1)
    result = prove_pipelined_layer(
        [spec], impl=impl, clock_mhz=200, gold_impl=impl, stall_cycles=2, timeout=120
    )
    assert result.steps == result.latency + 2 and result.equivalent, result.trace


# --- the proofs can fail ------------------------------------------------------


def test_refutes_wrong_csd_digit(monkeypatch, fresh_graphs):
    """One CSD digit misplaced in the gate only (the ``mul`` gold has no digits)."""
    spec = small_layer("floor", "wrap", seed=2)
    real = hdl.arith.adder_graph.csd
    monkeypatch.setattr(
        hdl.arith.adder_graph, "csd", lambda c: [(s + 1, d) for s, d in real(c)[:1]] + real(c)[1:]
    )
    result = prove_pipelined_layer([spec], clock_mhz=200, timeout=120)
    assert not result.equivalent
    check_witness(result, [spec])


def test_refutes_a_dropped_pipeline_register(monkeypatch, fresh_graphs):
    """One operand register inside the tree left out: that operand arrives a cycle early
    while the latency stays as claimed (a wrong retiming, not a wrong function)."""
    spec = small_layer("nearest", "saturate", seed=3)
    real = Emitter.register
    dropped = []

    def register(self, v, name):
        if not dropped and re.search(r"_p2$", name):
            dropped.append(name)
            return v
        return real(self, v, name)

    monkeypatch.setattr(Emitter, "register", register)
    result = prove_pipelined_layer([spec], clock_mhz=200, timeout=120)
    assert dropped and not result.equivalent
    check_witness(result, [spec])


def test_refutes_a_wrong_latency(monkeypatch):
    """An extra output register: the layer still claims its placement's latency.  (Only
    where there are output registers: the gold's combinational layer keeps none.)"""
    spec = small_layer("nearest", "saturate", seed=4)
    real = Emitter.delay
    monkeypatch.setattr(Emitter, "delay", lambda self, v, n, name: real(self, v, n + (n > 0), name))
    result = prove_pipelined_layer([spec], clock_mhz=150, timeout=120)
    assert not result.equivalent
    assert result.failing_cycle == result.latency + 1  # the first cycle already shows it
    check_witness(result, [spec])


class IgnoresEnable(Delayed):
    """The gold pipeline with its registers loading every cycle, ``en`` or not."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.layer = self.layer
        x = self.x
        for s in range(self.latency):
            r = Signal.like(self.x, name=f"x_d{s + 1}")
            m.d.sync += r.eq(x)
            x = r
        m.d.comb += [self.layer.x.eq(x), self.y.eq(self.layer.y)]
        return m


def test_stall_check_refutes_registers_that_ignore_en():
    """Invisible with ``en`` tied high, caught once ``en`` is free."""
    spec = small_layer("nearest", "saturate", seed=1)
    gate = LinearLayer([spec], clock_mhz=200)
    bad = IgnoresEnable(LinearLayer([spec], impl="adder_tree"), gate.latency)
    gold_v, gate_v = to_verilog(bad, "gold"), to_verilog(gate, "gate")

    def prove(stalls):
        return prove_sequential_equivalent(
            gold_v, "gold", gate_v, "gate", latency=gate.latency, stall_cycles=stalls
        )

    assert prove(0).equivalent
    result = prove(2)
    assert not result.equivalent
    assert 0 in [row["en"] for row in result.trace[gate.latency :]]  # a stall shows it


def test_latency_below_one_is_refused():
    with pytest.raises(ValueError, match="latency must be >= 1"):
        prove_sequential_equivalent("", "a", "", "b", latency=0)
