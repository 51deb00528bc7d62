"""Yosys proves adder_tree == mul for small Linear layers (miter + SAT), and refutes a wrong one."""

import random

import numpy as np
import pytest

import hdl.arith.adder_graph
from hdl.formal import counterexample_inputs, prove_components_equivalent
from hdl.layers.linear import LinearLayer
from qspec.fixed import FixedFormat
from qspec.integer_forward import layer_forward
from qspec.leaky import LeakyReLUSpec
from qspec.network import LinearSpec, min_accumulator_format

ROUND_OVF = [("floor", "saturate"), ("nearest", "saturate"), ("floor", "wrap"), ("nearest", "wrap")]
F4, F5 = FixedFormat(4, 2), FixedFormat(5, 2)


def small_layer(rounding, overflow, *, seed=0, in_fmt=F4, out_fmt=F5):
    """4 inputs x 3 outputs at 4 bits, with a zero weight, a -8 and a 7 in every row."""
    rng = random.Random(seed)
    wf, bf = FixedFormat(4, 3), FixedFormat(4, 1)
    weight = [[-8, 7, 0, rng.randint(-8, 7)] for _ in range(3)]
    for row in weight:
        rng.shuffle(row)
    bias = [rng.randint(bf.min_code, bf.max_code) for _ in range(3)]
    acc = min_accumulator_format(in_fmt, wf, bf, 4)
    return LinearSpec("fc", weight, bias, in_fmt, wf, bf, acc, out_fmt, rounding, overflow)


def prove(layers_gold, layers_gate, impl_gold="mul", impl_gate="adder_tree"):
    gold = LinearLayer(layers_gold, impl=impl_gold)
    gate = LinearLayer(layers_gate, impl=impl_gate)
    return prove_components_equivalent(gold, "gold", gate, "gate", timeout=300)


@pytest.mark.parametrize(
    "rounding, overflow, signed_in",
    [(r, o, True) for r, o in ROUND_OVF]
    + [("nearest", "saturate", False), ("floor", "wrap", False)],
)
@pytest.mark.parametrize("gate", ["adder_tree", "adder_tree_nosub"])
def test_adder_tree_equals_mul(rounding, overflow, signed_in, gate):
    spec = small_layer(rounding, overflow, in_fmt=FixedFormat(4, 2, signed_in))
    result = prove([spec], [spec], impl_gate=gate)
    assert result.equivalent, result.counterexample


def test_adder_tree_equals_mul_with_leaky_tail():
    spec = small_layer("nearest", "saturate", out_fmt=FixedFormat(6, 2))
    layers = [spec, LeakyReLUSpec.mult_variant(6, 2, 0.3, rounding="nearest")]
    result = prove(layers, layers)
    assert result.equivalent, result.counterexample


def _decode(x: int, fmt: FixedFormat, n: int) -> list[int]:
    """The packed port value -> n codes of ``fmt``."""
    codes = []
    for j in range(n):
        c = (x >> (j * fmt.width)) & ((1 << fmt.width) - 1)
        codes.append(c - (1 << fmt.width) if fmt.signed and c >> (fmt.width - 1) else c)
    return codes


def test_refutes_wrong_weight_and_names_a_witness():
    spec = small_layer("nearest", "saturate")
    w = [list(r) for r in spec.weight]
    w[1][2] = w[1][2] + 1 if w[1][2] < 7 else w[1][2] - 1
    wrong = LinearSpec.from_dict({**spec.to_dict(), "weight": w})
    result = prove([spec], [wrong])
    assert not result.equivalent
    x = _decode(counterexample_inputs(result)["x"], spec.in_fmt, spec.in_features)
    a = layer_forward(spec, np.array([x]))
    b = layer_forward(wrong, np.array([x]))
    assert a.tolist() != b.tolist()


def test_refutes_wrong_csd_digit(monkeypatch):
    """The hardware itself broken (one CSD digit misplaced) is caught, not just a wrong spec."""
    spec = small_layer("floor", "wrap")
    real = hdl.arith.adder_graph.csd
    monkeypatch.setattr(
        hdl.arith.adder_graph, "csd", lambda c: [(s + 1, d) for s, d in real(c)[:1]] + real(c)[1:]
    )
    result = prove([spec], [spec])
    assert not result.equivalent
