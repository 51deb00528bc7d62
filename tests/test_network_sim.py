"""The streaming network top (``hdl.network``) in Amaranth's simulator.

Every check compares exactly against ``qspec.integer_forward`` and is shown to
fail on a broken design (a wrong weight code, a stream protocol bug).
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Mux, Signal

import hdl.network
from hdl.network import ElementwiseLayer, NetworkLayer, NetworkTop, group_layers
from hdl.rtlsim.verify import random_rows
from qspec.fixed import FixedFormat
from qspec.integer_forward import integer_forward
from qspec.network import LinearSpec, QuantisedNetwork, ReLUSpec, RequantiseSpec
from tests import streamsim
from tests.streamsim import StreamRun
from tests.test_qspec_network import random_network

SPECS = Path(__file__).resolve().parent.parent / "verilog_out" / "specs"


def load_net(name: str) -> QuantisedNetwork:
    return QuantisedNetwork.from_json((SPECS / f"{name}_relu_8b.json").read_text())


def run_stream(dut: NetworkTop, beats, rng: random.Random, **kwargs) -> StreamRun:
    """Drive ``beats`` with the shared rule-abiding random producer and consumer."""

    def read(ctx) -> list[int]:
        """The logits, and with ``argmax`` the class index after them."""
        p = ctx.get(dut.o.payload)
        if dut.argmax:
            return [int(v) for v in p.logits] + [int(p.cls)]
        return [int(v) for v in p]

    def junk() -> list[int]:
        return random_rows(dut.net, 1, rng)[0]

    return streamsim.run_stream(
        dut, beats, rng, read=read, latency=dut.latency, junk=junk, **kwargs
    )


def check_network(dut: NetworkTop, net: QuantisedNetwork, beats, seed: int) -> None:
    """Random stalls: every beat out once, in order, bit-exact; the stream rules hold."""
    logits = np.asarray(integer_forward(net, beats))
    expected = logits.tolist()
    if dut.argmax:  # the first maximum, as np.argmax
        expected = [
            row + [int(c)] for row, c in zip(expected, np.argmax(logits, axis=1), strict=True)
        ]
    run = run_stream(dut, beats, random.Random(seed))
    assert run.violations == []
    received = run.received
    assert len(received) == len(expected)
    bad = [k for k, (g, e) in enumerate(zip(received, expected, strict=True)) if g != e]
    assert not bad, f"{len(bad)} beats mismatch, first {bad[0]}: {received[bad[0]]}"


def check_full_rate(dut: NetworkTop, beats) -> None:
    """Ready always high: a beat in every cycle (II = 1), each out ``latency`` cycles later."""
    run = run_stream(dut, beats, random.Random(0), p_valid=1.0, p_ready=1.0)
    assert run.violations == []
    assert run.in_cycles == list(range(len(beats)))
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles, strict=True)] == [
        dut.latency
    ] * len(beats)
    assert dut.initiation_interval == 1


# --- random networks ---------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_network_under_stalls(seed: int) -> None:
    net = random_network(seed)
    groups = len(group_layers(net))
    stages = [random.Random(seed).randint(0, 2) for _ in range(groups)]
    rng = random.Random(seed)
    beats = random_rows(net, 120, rng)
    # a constant output would let a design stuck at it pass
    assert len({tuple(r) for r in integer_forward(net, beats).tolist()}) > 1
    check_network(
        NetworkTop(net, impl=("adder_tree", "mul")[seed % 2], stages=stages), net, beats, seed
    )


@pytest.mark.parametrize("stages", [0, 1, [2, 0, 1]])
def test_full_rate_latency_and_ii(stages) -> None:
    net = load_net("jsc-toy")
    dut = NetworkTop(net, stages=stages)
    expect = sum(dut.stages) or 1  # stages 0: the output register
    assert dut.latency == expect
    check_full_rate(dut, random_rows(net, 40, random.Random(1)))


def test_leading_elementwise_group() -> None:
    """Element-wise layers before the first Linear form their own (combinational) group."""
    base = random_network(3)
    fmt = base.input_fmt
    narrow = FixedFormat(max(2, fmt.width - 2), fmt.frac_width - 1)
    lin = base.layers[0]
    assert isinstance(lin, LinearSpec)
    pre = (ReLUSpec(fmt), RequantiseSpec(fmt, narrow, "nearest"), RequantiseSpec(narrow, fmt))
    net = dataclasses.replace(base, layers=pre + base.layers)
    dut = NetworkTop(net, stages=[0, 1] + [0] * (len(group_layers(base)) - 1))
    assert isinstance(dut.layers[0], ElementwiseLayer)
    assert all(isinstance(layer, NetworkLayer) for layer in dut.layers)  # Linear ones too
    assert not isinstance(object(), NetworkLayer)  # the protocol does check something
    check_network(dut, net, random_rows(net, 100, random.Random(2)), 2)


@pytest.mark.parametrize("seed", range(4))
def test_argmax_class_index_first_maximum(seed: int) -> None:
    """Outputs squeezed into 2 bits tie often: the class index must be the first maximum."""
    base = random_network(seed)
    fmt = base.output_fmt
    squeeze = RequantiseSpec(fmt, FixedFormat(2, fmt.frac_width - 2))
    net = dataclasses.replace(base, layers=(*base.layers, squeeze))
    beats = random_rows(net, 150, random.Random(seed))
    logits = np.asarray(integer_forward(net, beats))
    ties = sum(int((row == row.max()).sum() > 1) for row in logits)
    assert ties > 10 or net.num_classes == 1  # the test exercises ties
    check_network(NetworkTop(net, stages=seed % 2, argmax=True), net, beats, seed)


def test_argmax_last_maximum_is_caught(monkeypatch) -> None:
    """A class index that prefers the *last* maximum on ties must fail the check."""

    def last_argmax(values):
        best, idx = values[0], Const(0, max(1, (len(values) - 1).bit_length()))
        for k, v in enumerate(values[1:], 1):
            best, idx = Mux(v >= best, v, best), Mux(v >= best, k, idx)
        return idx

    monkeypatch.setattr(hdl.network, "first_argmax", last_argmax)
    with pytest.raises(AssertionError, match="beats mismatch"):
        test_argmax_class_index_first_maximum(0)


def test_repeated_layer_names() -> None:
    """Spec names need not be unique: the instances get distinct names, both builds work."""
    from hdl.export import export_network

    base = random_network(2)
    layers = tuple(
        dataclasses.replace(ly, name="fc") if isinstance(ly, LinearSpec) else ly
        for ly in base.layers
    )
    net = dataclasses.replace(base, layers=layers)
    assert export_network(net, stages=1).latency == len(group_layers(net))
    check_network(NetworkTop(net, stages=1), net, random_rows(net, 50, random.Random(1)), 1)


# --- the shipped networks -----------------------------------------------------


@pytest.mark.parametrize(("name", "impl", "stages"), [("jsc-tiny", "adder_tree", 1),
                                                    ("jsc-toy", "mul", 0)])  # fmt: skip
def test_shipped_network_test_split(name: str, impl: str, stages: int) -> None:
    net = load_net(name)
    inputs = json.loads((SPECS / f"{name}_relu_8b.inputs.json").read_text())
    beats = inputs["codes"][:200] + random_rows(net, 40, random.Random(5))
    check_network(NetworkTop(net, impl=impl, stages=stages), net, beats, 7)


# --- the checks can fail ------------------------------------------------------


def wrong_weight_factory(layer_name: str, k: int = 0, j: int = 0):
    """A ``LinearLayer`` builder that builds ``layer_name`` with weight[k][j] off by one."""
    real = hdl.network.default_layer_factory()

    def build(group, **kwargs):
        lin = group[0]
        if lin.name == layer_name:
            w = [list(row) for row in lin.weight]
            w[k][j] += 1 if w[k][j] < lin.weight_fmt.max_code else -1
            group = (dataclasses.replace(lin, weight=w), *group[1:])
        return real(group, **kwargs)

    return build


def test_wrong_weight_is_caught() -> None:
    net = load_net("jsc-toy")
    dut = NetworkTop(net, stages=1, layer_factory=wrong_weight_factory("fc2", 3, 5))
    with pytest.raises(AssertionError, match="beats mismatch"):
        check_network(dut, net, random_rows(net, 200, random.Random(3)), 3)


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        ("valid_needs_ready", "o.valid depends on o.ready"),
        ("ignores_ready", "output changed while stalled"),
        ("repeats", "after all beats were delivered"),
    ],
)
def test_stream_bugs_are_caught(bug: str, message: str) -> None:
    net = load_net("jsc-tiny")
    dut = ProtocolBug(net, bug=bug, stages=1)
    run = run_stream(dut, random_rows(net, 60, random.Random(4)), random.Random(4))
    assert any(message in v for v in run.violations), run.violations


class ProtocolBug(NetworkTop):
    """A one-layer network whose handshake logic is wrong in one way (see ``bug``)."""

    def __init__(self, net: QuantisedNetwork, *, bug: str, stages: int):
        self.bug = bug
        super().__init__(net, stages=stages)

    @classmethod
    def check(cls, net, *, bug, stages):
        super().check(net, stages=stages)

    def elaborate(self, platform):
        m = Module()
        (layer,) = self.layers
        m.submodules.layer = layer
        m.d.comb += layer.x.eq(self.i.payload)
        valid = Signal()
        en = Signal()
        if self.bug == "ignores_ready":  # the pipeline moves even while o is stalled
            m.d.comb += en.eq(1)
        elif self.bug == "valid_needs_ready":
            m.d.comb += en.eq(~valid | self.o.ready)
        else:  # "repeats": the valid bit never clears once set
            m.d.comb += en.eq(~valid | self.o.ready)
        m.d.comb += [layer.en.eq(en), self.i.ready.eq(en)]
        with m.If(en):
            nxt = valid | self.i.valid if self.bug == "repeats" else self.i.valid
            m.d.sync += valid.eq(nxt)
        out_valid = valid & self.o.ready if self.bug == "valid_needs_ready" else valid
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(layer.y)]
        return m
