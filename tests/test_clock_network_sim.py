"""Clocked networks (``NetworkTop(..., clock_mhz=F)``) in Amaranth's simulator: every beat
bit-exact against ``qspec.integer_forward`` under random stalls on both streams, the
latency the sum of the layers' placements (measured at full rate), and shown to fail on a
wrong weight, a dropped register and a wrong latency claim."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from hdl.arith.adder_tree import Emitter
from hdl.layers.linear import LinearLayer
from hdl.network import NetworkTop
from hdl.rtlsim.verify import random_rows
from qspec.integer_forward import integer_forward
from tests.test_network_sim import (
    SPECS,
    check_full_rate,
    check_network,
    load_net,
    run_stream,
    wrong_weight_factory,
)
from tests.test_qspec_network import random_network

IMPLS = ["adder_tree", "adder_tree_nosub"]
MHZ = [100, 200]


def clocked(net, impl: str, mhz: float, **kwargs) -> NetworkTop:
    """The clocked top, with its latency checked against the placements it is made of."""
    dut = NetworkTop(net, impl=impl, clock_mhz=mhz, **kwargs)
    placed = [layer.placement for layer in dut.layers if hasattr(layer, "placement")]
    assert placed and all(p is not None and p.clock_mhz == mhz for p in placed)
    assert dut.stages == tuple(layer.latency for layer in dut.layers)
    assert dut.latency == sum(p.latency for p in placed)  # every group's output registered
    assert not dut.output_register
    return dut


def shipped_beats(name: str, n: int, seed: int) -> list[list[int]]:
    """The first ``n`` codes of the shipped test split, then edge-heavy random ones."""
    net = load_net(name)
    codes = json.loads((SPECS / f"{name}_relu_8b.inputs.json").read_text())["codes"]
    return codes[:n] + random_rows(net, n // 2, random.Random(seed))


@pytest.mark.parametrize("mhz", MHZ)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["jsc-tiny", "jsc-toy"])
def test_shipped_network_under_stalls(name: str, impl: str, mhz: int) -> None:
    net = load_net(name)
    dut = clocked(net, impl, mhz)
    assert dut.latency > len(dut.layers)  # the clock cut inside the adder trees
    check_network(dut, net, shipped_beats(name, 120, mhz), seed=mhz)


@pytest.mark.parametrize("mhz", MHZ)
@pytest.mark.parametrize("impl", IMPLS)
def test_full_rate_latency_is_the_placements(impl: str, mhz: int) -> None:
    """Ready always high: one beat per cycle, each out exactly ``latency`` cycles later, and
    it is that beat's output (not its neighbour's, as when valid and data part ways)."""
    net = load_net("jsc-toy")
    dut = clocked(net, impl, mhz)
    beats = random_rows(net, 40, random.Random(mhz))
    check_full_rate(dut, beats)
    run = run_stream(dut, beats, random.Random(0), p_valid=1.0, p_ready=1.0)
    assert run.received == np.asarray(integer_forward(net, beats)).tolist()


# seeds whose nets have several layers and compute something (a few of random_network's
# are constant functions of their input, which no data error changes)
SEEDS = [0, 7, 9, 11, 12, 13]


@pytest.mark.parametrize("k", range(len(SEEDS)))
def test_random_network_under_stalls(k: int) -> None:
    """Random small nets (several layers, odd formats, wrap and saturate)."""
    seed = SEEDS[k]
    net = random_network(seed)
    beats = random_rows(net, 100, random.Random(seed))
    assert len({tuple(r) for r in np.asarray(integer_forward(net, beats)).tolist()}) > 5
    impl, mhz = IMPLS[k % 2], (100, 200, 300)[k % 3]
    check_network(clocked(net, impl, mhz), net, beats, seed)


def test_argmax_top_under_stalls() -> None:
    net = load_net("jsc-tiny")
    dut = clocked(net, "adder_tree", 200, argmax=True)
    check_network(dut, net, shipped_beats("jsc-tiny", 80, 1), seed=1)


# --- the checks can fail ------------------------------------------------------


def test_wrong_weight_is_caught() -> None:
    net = load_net("jsc-toy")
    dut = NetworkTop(net, clock_mhz=200, layer_factory=wrong_weight_factory("fc2", 3, 5))
    with pytest.raises(AssertionError, match="beats mismatch"):
        check_network(dut, net, random_rows(net, 200, random.Random(3)), 3)


def test_dropped_register_is_caught(monkeypatch) -> None:
    """One operand register inside an adder tree left out (latency unchanged)."""
    real = Emitter.register
    dropped: list[str] = []

    def register(self, v, name):
        if not dropped and re.search(r"_p2$", name):
            dropped.append(name)
            return v
        return real(self, v, name)

    monkeypatch.setattr(Emitter, "register", register)
    net = load_net("jsc-tiny")
    dut = NetworkTop(net, clock_mhz=200)
    with pytest.raises(AssertionError, match="beats mismatch"):
        check_network(dut, net, shipped_beats("jsc-tiny", 120, 2), seed=2)
    assert dropped


class MisclaimedLayer(LinearLayer):
    """A LinearLayer whose ``latency`` is ``off`` cycles from its registers' (``stages``)."""

    off = 0

    @property
    def latency(self) -> int:
        return self.stages + self.off


@pytest.mark.parametrize("off", [-1, 1])
def test_wrong_latency_claim_is_caught(off: int) -> None:
    """A layer that claims one cycle more or less than its registers take: the valid bits
    no longer travel with the data."""
    claims = type("Claims", (MisclaimedLayer,), {"off": off})
    net = load_net("jsc-tiny")
    dut = NetworkTop(net, clock_mhz=200, layer_factory=claims)
    assert dut.latency == sum(layer.placement.latency for layer in dut.layers) + off
    with pytest.raises(AssertionError, match="beats mismatch"):
        check_network(dut, net, shipped_beats("jsc-tiny", 60, 4), seed=4)
