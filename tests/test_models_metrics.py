"""Metrics on a hand-built two-layer toy model, every figure computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.data import Dataset, Split
from models.fold import FoldedLayer, FoldedNet
from models.metrics import compute_metrics, whole_model_flops
from models.qconfig import QuantConfig
from models.quant import quantise_network
from qspec.network import min_accumulator_format


def _linear(w, b) -> torch.nn.Linear:
    lin = torch.nn.Linear(len(w[0]), len(w))
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w))
        lin.bias.copy_(torch.tensor(b))
    return lin


def toy_net(activation: str = "relu") -> FoldedNet:
    """fc1: 3 -> 2 (identity on x0, x1) + act; fc2: 2 -> 2 (identity). Logits = act(x0, x1)."""
    return FoldedNet(
        [
            FoldedLayer("fc1", _linear([[1, 0, 0], [0, 1, 0]], [0, 0]), activation, 0.125),
            FoldedLayer("fc2", _linear([[1, 0], [0, 1]], [0, 0]), None, 0.125),
        ]
    ).eval()


# the last sample separates float (0.5 < 0.5625) from quantised: fc2 reads s6.3, where
# 0.5625 floors to 0.5 and the tie goes to the first class
X = np.array(
    [[1, 0.5, 0], [0.25, 2, 1], [-1, 0.5, 3], [0.5, 0.25, 0], [0.5, 0.5625, 0]], dtype=np.float32
)
Y = np.array([0, 1, 1, 1, 1])

CONFIG = QuantConfig.from_dict(
    {
        "default": {"input_width": 8, "input_frac_width": 4, "rounding": "floor"},
        "layers": {
            "fc1": dict(weight_width=4, weight_frac_width=2, bias_width=6, bias_frac_width=3,
                        act_width=8, act_frac_width=4),
            "fc2": dict(input_width=6, input_frac_width=3, weight_width=3, weight_frac_width=1,
                        bias_width=5, bias_frac_width=3, act_width=6, act_frac_width=3),
        },
    }
)  # fmt: skip


def toy_dataset() -> Dataset:
    split = Split(X, Y, np.arange(len(Y)))
    return Dataset("toy", split, split, split, 3, 2, np.zeros(3), np.ones(3))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_toy_metrics_by_hand(activation):
    m = compute_metrics(toy_net(activation), CONFIG, toy_dataset())
    fc1, fc2 = m.layers
    # MACs: in*out; FLOPs (ptflops): MACs + one per bias + one per activation element
    assert (fc1.macs, fc2.macs, m.macs) == (6, 4, 10)
    assert (fc1.flops, fc2.flops, m.flops) == (6 + 2 + 2, 4 + 2, 16)
    assert whole_model_flops(toy_net(activation)) == 16
    # BitOPs = MACs * weight bits * bits of the activation the layer reads
    assert (fc1.act_bits, fc2.act_bits) == (8, 6)
    assert (fc1.bitops, fc2.bitops, m.bitops) == (6 * 4 * 8, 4 * 3 * 6, 192 + 72)
    # size = weights * weight bits + biases * bias bits
    assert (fc1.size_bits, fc2.size_bits, m.size_bits) == (6 * 4 + 2 * 6, 4 * 3 + 2 * 5, 58)
    assert m.avg_weight_bits == pytest.approx((6 * 4 + 4 * 3) / 10)
    assert m.avg_param_bits == pytest.approx(58 / 14)
    assert m.avg_act_bits == pytest.approx((3 * 8 + 2 * 6) / 5)
    # accuracy: float gets 4/5 (sample 4 is mislabelled); quantised also loses sample 5
    assert m.float_accuracy == pytest.approx(0.8)
    assert m.accuracy == pytest.approx(0.6)
    assert fc1.accuracy == pytest.approx(0.8)  # fc1 alone: 9/16 is exact in s8.4
    assert fc2.accuracy == pytest.approx(0.6)  # fc2 alone reads s6.3: 9/16 -> 1/2
    # loss: cross-entropy of the (exact, dequantised) logits
    logits = (
        np.maximum(X[:, :2], 0)
        if activation == "relu"
        else np.where(X[:, :2] > 0, X[:, :2], X[:, :2] / 8)
    )
    logits[4, 1] = 0.5
    want = np.mean([math.log(np.exp(r).sum()) - r[c] for r, c in zip(logits, Y, strict=True)])
    assert m.loss == pytest.approx(want)


def test_toy_spec_and_totals_dict():
    spec = quantise_network(toy_net(), CONFIG, X)
    assert [ly.kind for ly in spec.layers] == ["linear", "relu", "requantise", "linear"]
    fc1 = spec.linear_layers[0]
    assert fc1.weight == ((4, 0, 0), (0, 4, 0))
    # the accumulator sizing rule is qspec's (tested there): models must just use it
    assert fc1.acc_fmt == min_accumulator_format(fc1.in_fmt, fc1.weight_fmt, fc1.bias_fmt, 3)
    assert fc1.acc_fmt.frac_width == 6
    m = compute_metrics(toy_net(), spec, toy_dataset(), per_layer_accuracy=False)
    t = m.totals()
    assert "layers" not in t and t["bitops"] == 264 and math.isnan(m.layers[0].accuracy)
    assert m.to_dict()["layers"][1]["name"] == "fc2"


# --- the spec's own codes are what is scored ---------------------------------------------


@pytest.fixture(scope="module")
def digits():
    from models.data import load_dataset

    return load_dataset("digits16")


def _np_scores(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy (first maximum wins) and mean cross-entropy, in numpy float64."""
    acc = float(np.mean(np.argmax(logits, axis=1) == y))
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    return acc, float(np.mean(lse - logits[np.arange(len(y)), y]))


def _integer_logits(spec, x: np.ndarray) -> np.ndarray:
    from qspec.integer_forward import integer_forward, quantise_input

    codes = integer_forward(spec, quantise_input(spec, x))
    return codes.astype(np.float64) * 2.0**-spec.output_fmt.frac_width


def _with_codes(spec, name: str, fn):
    """``spec`` with layer ``name``'s weight codes mapped by ``fn`` (kept in range)."""
    from dataclasses import replace

    from qspec.network import LinearSpec

    layers = []
    for ly in spec.layers:
        if isinstance(ly, LinearSpec) and ly.name == name:
            lo, hi = ly.weight_fmt.min_code, ly.weight_fmt.max_code
            w = np.clip(fn(np.array(ly.weight, dtype=np.int64)), lo, hi)
            ly = replace(ly, weight=tuple(map(tuple, w.tolist())))
        layers.append(ly)
    return replace(spec, layers=tuple(layers))


def _negate(w):
    return -w


def _bump_one(w):
    w = w.copy()
    i = np.unravel_index(np.argmax(np.abs(w)), w.shape)
    w[i] = -w[i]  # the largest weight flips sign
    return w


@pytest.mark.parametrize("change", [_negate, _bump_one])
@pytest.mark.parametrize("layer", ["fc1", "fc3"])
def test_metrics_score_the_specs_codes_not_the_model_weights(digits, change, layer):
    from models.fold import fold_batchnorm
    from models.quant import FakeQuantNet
    from models.train import load_float
    from qspec.fixed import Overflow, Rounding, quantise
    from qspec.integer_forward import linear_forward

    folded = fold_batchnorm(load_float("jsc-toy", "digits16", "relu")[0])
    base = quantise_network(folded, QuantConfig.uniform(6), digits.train.x)
    spec = _with_codes(base, layer, change)
    assert spec != base
    val = digits.val
    m = compute_metrics(folded, spec, digits, per_layer_accuracy=True)
    want = _np_scores(_integer_logits(spec, val.x), val.y)
    assert m.accuracy == want[0] and m.loss == pytest.approx(want[1], rel=1e-12, abs=1e-12)
    unchanged = compute_metrics(folded, base, digits, per_layer_accuracy=False)
    assert (m.accuracy, m.loss) != (unchanged.accuracy, unchanged.loss)
    # every layer quantised: the fake-quant model computes the spec's integers, bit for bit
    with torch.no_grad():
        y = FakeQuantNet(folded, spec)(torch.from_numpy(val.x)).numpy()
    np.testing.assert_array_equal(y, _integer_logits(spec, val.x))
    # sensitivity of fc3 alone: float fc1/fc2, then the integer reference's fc3 on the codes
    # the float activations floor to (the rounding fc2 would have used)
    fc3 = spec.linear_layers[2]
    with torch.no_grad():
        h = torch.from_numpy(val.x).double()
        for ly in folded.layers[:2]:
            h = torch.relu(torch.nn.functional.linear(h, ly.linear.weight.double(),
                                                      ly.linear.bias.double()))  # fmt: skip
    codes = quantise(h.numpy(), fc3.in_fmt, Rounding.FLOOR, Overflow.SATURATE)
    logits = linear_forward(fc3, codes).astype(np.float64) * 2.0**-fc3.out_fmt.frac_width
    want3 = _np_scores(logits, val.y)
    assert m.layers[2].accuracy == want3[0]
    assert m.layers[2].loss == pytest.approx(want3[1], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("activation", "bits"), [("relu", 8), ("relu", 4), ("leaky_relu", 3)])
def test_specs_from_quantise_network_score_as_before(digits, activation, bits):
    """Old path: FakeQuantNet re-quantising the float weights (now ``weights="float"``)."""
    from models.fold import fold_batchnorm
    from models.quant import FakeQuantNet
    from models.train import evaluate, load_float

    folded = fold_batchnorm(load_float("jsc-toy", "digits16", activation)[0])
    cfg = QuantConfig.uniform(bits)
    spec = quantise_network(folded, cfg, digits.train.x)
    for given in (cfg, spec):
        m = compute_metrics(folded, given, digits, split="test")
        assert (m.accuracy, m.loss) == evaluate(FakeQuantNet(folded, spec, weights="float"),
                                                digits.test)  # fmt: skip
        for ly in m.layers:
            old = FakeQuantNet(folded, spec, {ly.name}, weights="float")
            assert (ly.accuracy, ly.loss) == evaluate(old, digits.test)


def test_fake_quant_modes_are_explicit(digits):
    from models.fold import fold_batchnorm
    from models.quant import FakeQuantNet
    from models.train import load_float

    folded = fold_batchnorm(load_float("jsc-tiny")[0])
    spec = quantise_network(folded, QuantConfig.uniform(4), digits.train.x)
    with pytest.raises(ValueError, match="weights must be one of spec\\|float, got 'codes'"):
        FakeQuantNet(folded, spec, weights="codes")
    with pytest.raises(
        ValueError, match="spec layers fc1:16x10 do not match the model's fc1:3x2, "
    ):
        FakeQuantNet(toy_net(), spec)
    with pytest.raises(ValueError, match="spec layers fc1:16x10 do not match"):
        compute_metrics(toy_net(), spec, toy_dataset(), per_layer_accuracy=False)
    qat = FakeQuantNet(folded, spec, weights="float")
    frozen = FakeQuantNet(folded, spec)
    assert qat.spec == spec and frozen.spec == spec
    with torch.no_grad():
        folded.layers[0].linear.weight.mul_(-1)  # a QAT step: the float weights move
    assert qat.spec != spec and qat.spec == qat.to_spec()  # QAT: always the current weights
    assert frozen.spec == spec  # spec mode: the codes it was given, whatever the floats do
    x = torch.from_numpy(digits.val.x)
    with torch.no_grad():
        assert torch.equal(frozen(x), FakeQuantNet(toy_net_like(folded), spec)(x))


def toy_net_like(folded):
    """Same shapes as ``folded``, all weights zero: spec mode must not read them."""
    import copy

    z = copy.deepcopy(folded)
    with torch.no_grad():
        for p in z.parameters():
            p.zero_()
    return z


def test_per_trial_metrics_are_fast(digits):
    """The search's path (one call per trial, no per-layer accuracy) stays cheap."""
    import time

    from models.fold import fold_batchnorm
    from models.train import load_float

    folded = fold_batchnorm(load_float("jsc-toy", "digits16", "relu")[0])
    spec = quantise_network(folded, QuantConfig.uniform(6), digits.train.x)
    compute_metrics(folded, spec, digits, per_layer_accuracy=False)  # warm-up (imports)
    t = time.perf_counter()
    for _ in range(5):
        compute_metrics(folded, spec, digits, per_layer_accuracy=False)
    assert (time.perf_counter() - t) / 5 < 0.5  # ~1-2 ms measured; generous for a busy box
