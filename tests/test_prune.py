"""qspec.prune.remove_dead_units: fewer hidden neurons, the same integer function.

Random small networks with many zero rows and columns are checked exhaustively (4 inputs of
4 bits: all 2^16 input vectors); jsc-toy quantised with high sparsity on seeded random
inputs.  Zero weights cost no adder (hdl.layers.linear.build_graph).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import pytest

from qspec.fixed import FixedFormat, Overflow, Rounding
from qspec.integer_forward import integer_forward
from qspec.leaky import LeakyReLUSpec
from qspec.network import (
    LinearSpec,
    QuantisedNetwork,
    ReLUSpec,
    RequantiseSpec,
    min_accumulator_format,
)
from qspec.prune import remove_dead_units


def rand_linear(rng, name, n_in, n_out, in_fmt, p_zero_row, p_zero_col, zero_cols=()):
    wf = FixedFormat(rng.randint(2, 5), rng.randint(0, 4))
    bf = FixedFormat(rng.randint(2, 6), rng.randint(-1, in_fmt.frac_width + wf.frac_width))
    cols = {j for j in range(n_in) if rng.random() < p_zero_col} | set(zero_cols)
    weight = []
    for _ in range(n_out):
        zero_row = rng.random() < p_zero_row
        weight.append(
            tuple(
                0 if zero_row or j in cols else rng.randint(wf.min_code, wf.max_code)
                for j in range(n_in)
            )
        )
    bias = tuple(rng.randint(bf.min_code, bf.max_code) for _ in range(n_out))
    acc = min_accumulator_format(in_fmt, wf, bf, n_in)
    out = FixedFormat(rng.randint(3, 6), rng.randint(0, 4))
    return LinearSpec(
        name, tuple(weight), bias, in_fmt, wf, bf, acc, out,
        rng.choice(list(Rounding)), rng.choice(list(Overflow)),
    )  # fmt: skip


def rand_net(rng: random.Random) -> QuantisedNetwork:
    in_fmt = FixedFormat(4, 2)
    sizes = [4, rng.randint(3, 7), rng.randint(3, 7), 3]
    layers, fmt = [], in_fmt
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        lin = rand_linear(rng, f"fc{i + 1}", n_in, n_out, fmt, 0 if i == 0 else 0.3, 0.3)
        layers.append(lin)
        fmt = lin.out_fmt
        if not last:
            act = rng.choice(["relu", "shift", "mult"])
            if act == "relu":
                layers.append(ReLUSpec(fmt))
            else:
                layers.append(LeakyReLUSpec.from_slope(fmt.width, fmt.frac_width, 0.25, act))
            if rng.random() < 0.4:
                new = FixedFormat(rng.randint(3, 6), rng.randint(0, 3))
                layers.append(RequantiseSpec(fmt, new, Rounding.NEAREST, Overflow.SATURATE))
                fmt = new
    return QuantisedNetwork(in_fmt, tuple(layers), sizes[-1])


def hidden(net: QuantisedNetwork) -> list[int]:
    return [ly.out_features for ly in net.linear_layers[:-1]]


ALL_INPUTS = np.array(list(itertools.product(range(-8, 8), repeat=4)), dtype=np.int64)


def test_exhaustive_same_function_on_random_nets():
    rng = random.Random(17)
    removed = folded = 0
    for _ in range(60):
        net = rand_net(rng)
        pruned = remove_dead_units(net)
        assert pruned.in_features == net.in_features and pruned.num_classes == net.num_classes
        assert all(a <= b for a, b in zip(hidden(pruned), hidden(net), strict=True))
        want = integer_forward(net, ALL_INPUTS)
        assert np.array_equal(integer_forward(pruned, ALL_INPUTS), want)
        removed += sum(hidden(net)) - sum(hidden(pruned))
        folded += sum(
            a.bias != b.bias for a, b in zip(net.linear_layers, pruned.linear_layers, strict=True)
        )
        assert remove_dead_units(pruned) == pruned  # a fixed point
    assert removed > 20 and folded > 3  # the draws exercised both rules


F4, W3 = FixedFormat(4, 2), FixedFormat(3, 0)


def mk(name, weight, bias, bias_fmt) -> LinearSpec:
    """A Linear on 4-bit codes (2 fraction bits) with 3-bit integer weights."""
    acc = min_accumulator_format(F4, W3, bias_fmt, len(weight[0]))
    return LinearSpec(name, weight, bias, F4, W3, bias_fmt, acc, F4)


def test_zero_columns_and_constant_rows_are_removed():
    l1 = mk("a", ((1, 2), (0, 0), (3, -1)), (1, 2, 0), FixedFormat(3, 2))  # 1: constant
    l2 = mk("b", ((1, 1, 0), (2, -1, 0)), (0, 1), FixedFormat(6, 2))  # neuron 2: unread
    net = QuantisedNetwork(F4, (l1, ReLUSpec(F4), l2), 2)
    pruned = remove_dead_units(net)
    assert hidden(pruned) == [1]
    assert pruned.linear_layers[0].weight == ((1, 2),)
    # constant 2 (0.5 in 2 fraction bits) times weights 1, -1 -> bias codes +2, -2
    assert pruned.linear_layers[1].bias == (2, -1)
    x = ALL_INPUTS[:, :2][::7]
    assert np.array_equal(integer_forward(pruned, x), integer_forward(net, x))


def test_unrepresentable_constant_is_kept():
    """A constant whose product has fraction bits the bias format lacks stays a neuron."""
    l1 = mk("a", ((1,), (0,)), (1, 1), FixedFormat(3, 2))
    l2 = mk("b", ((1, 1),), (0,), FixedFormat(6, 0))  # integer biases; the constant is 0.25
    net = QuantisedNetwork(F4, (l1, ReLUSpec(F4), l2), 1)
    assert remove_dead_units(net) == net


@pytest.fixture(scope="module")
def toy():
    from models.data import load_dataset
    from models.fold import fold_batchnorm
    from models.train import load_float

    return fold_batchnorm(load_float("jsc-toy", "digits16", "relu")[0]), load_dataset("digits16")


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_pruned_jsc_toy_same_function_random_inputs(toy, sparsity):
    from models.qconfig import QuantConfig
    from models.quant import quantise_network

    folded, ds = toy
    qc = QuantConfig.from_dict({"default": {"width": 6, "sparsity": sparsity}})
    net = quantise_network(folded, qc, ds.train.x)
    pruned = remove_dead_units(net)
    assert sum(hidden(pruned)) <= sum(hidden(net))
    if sparsity >= 0.9:  # unstructured pruning kills whole neurons only when heavy
        assert sum(hidden(pruned)) < sum(hidden(net))
    rng = np.random.default_rng(5)
    fmt = net.input_fmt
    x = rng.integers(fmt.min_code, fmt.max_code + 1, size=(20000, net.in_features))
    assert np.array_equal(integer_forward(pruned, x), integer_forward(net, x))


def adders(spec: LinearSpec, impl: str = "adder_tree", share: bool = True) -> int:
    from hdl.layers.linear import build_graph

    g, _ = build_graph(spec, impl, share=share)
    return sum(node.op == "add" for node in g.nodes)


def without_columns(lin: LinearSpec, cols) -> LinearSpec:
    keep = [j for j in range(lin.in_features) if j not in cols]
    acc = min_accumulator_format(lin.in_fmt, lin.weight_fmt, lin.bias_fmt, len(keep))
    weight = tuple(tuple(r[j] for j in keep) for r in lin.weight)
    return replace(lin, weight=weight, acc_fmt=acc)


@pytest.mark.parametrize("impl", ["adder_tree", "adder_tree_nosub"])
def test_zero_weights_cost_no_adder(impl):
    """A layer with zeroed columns has exactly the adders of the layer without them.

    With sharing, the common-subexpression pass breaks ties by input index, so removing a
    middle column may change which pairs it shares (either way); without sharing, and with
    sharing for trailing columns (indices unchanged), the counts are equal."""
    rng = random.Random(3)
    f = FixedFormat(6, 3)
    for _ in range(20):
        lin = rand_linear(rng, "l", 8, 6, f, 0.0, 0.0, zero_cols=(1, 4, 5))
        narrow = without_columns(lin, (1, 4, 5))
        assert adders(lin, impl, share=False) == adders(narrow, impl, share=False) > 0
        tail = rand_linear(rng, "l", 8, 6, f, 0.0, 0.0, zero_cols=(5, 6, 7))
        assert adders(tail, impl) == adders(without_columns(tail, (5, 6, 7)), impl) > 0


@pytest.mark.parametrize("seed", range(3))
def test_network_top_of_a_net_with_dead_units(seed):
    """NetworkTop builds the pruned network (fewer ports between layers, the same top
    ports) and streams the original spec's integer_forward under random stalls."""
    from hdl.network import NetworkTop
    from hdl.rtlsim.verify import random_rows
    from tests.test_network_sim import check_network

    rng = random.Random(100 + seed)
    while True:
        net = rand_net(rng)
        if hidden(remove_dead_units(net)) != hidden(net):
            break
    dut = NetworkTop(net, stages=seed % 2)
    assert hidden(dut.net) == hidden(remove_dead_units(net)) != hidden(net)
    inner = [g[0].out_features for g in dut.groups[:-1]]
    assert inner == hidden(dut.net)
    assert dut.i.payload.shape().length == net.in_features
    check_network(dut, net, random_rows(net, 80, rng), seed)


def test_zeroed_columns_cost_no_yosys_cell():
    """ECP5 synthesis of a Linear layer with zeroed input columns: the same cells as the
    layer without those inputs (unused inputs are ports and nothing else)."""
    from hdl.export import export_layer
    from hdl.layers.linear import LinearLayer
    from hdl.synth import synthesise
    from hdl.synth.yosys import available_backends

    if not available_backends():
        pytest.skip("no Yosys backend")
    rng = random.Random(11)
    lin = rand_linear(rng, "l", 8, 6, FixedFormat(6, 3), 0.0, 0.0, zero_cols=(1, 3, 4))
    counts = []
    for spec in (lin, without_columns(lin, (1, 3, 4))):
        mod = export_layer(LinearLayer((spec,), impl="adder_tree"), (spec,), "adder_tree", 0)
        r = synthesise(mod.verilog, mod.name, "ecp5", cache=False)
        counts.append((r.lut_eq, r.lut4, r.carries, r.cells))
    assert counts[0] == counts[1] and counts[0][0] > 0


def test_a_layer_of_constants_keeps_one_neuron():
    l1 = mk("a", ((0, 0), (0, 0), (0, 0)), (1, 2, 3), FixedFormat(3, 2))
    l2 = mk("b", ((1, 1, 1), (2, -1, 3)), (0, 1), FixedFormat(8, 2))
    net = QuantisedNetwork(F4, (l1, ReLUSpec(F4), l2), 2)
    pruned = remove_dead_units(net)
    assert hidden(pruned) == [1]
    x = ALL_INPUTS[:, :2][::5]
    assert np.array_equal(integer_forward(pruned, x), integer_forward(net, x))


def test_prune_mask_counts_and_ties():
    """floor(s * n) weights pruned, smallest magnitude first, equal ones in row-major order."""
    import torch

    from models.quant import prune_mask

    w = torch.tensor([[0.5, -0.1, 0.1], [0.1, 2.0, -0.3]])
    assert prune_mask(w, 0.0) is None and prune_mask(w, 0.1) is None  # floor(0.6) = 0
    m = prune_mask(w, 0.5)  # 3 of 6: the three 0.1s (ties: row-major order)
    assert m.tolist() == [[True, False, False], [False, True, True]]
    assert prune_mask(w, 2 / 6).tolist() == [[True, False, False], [True, True, True]]
    assert int((~prune_mask(torch.ones(100), 0.29)).sum()) == 29  # not 28.999...
