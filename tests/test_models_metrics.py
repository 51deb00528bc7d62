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
    assert fc1.weight == ((4, 0, 0), (0, 4, 0)) and str(fc1.acc_fmt) == "s14.6"
    m = compute_metrics(toy_net(), spec, toy_dataset(), per_layer_accuracy=False)
    t = m.totals()
    assert "layers" not in t and t["bitops"] == 264 and math.isnan(m.layers[0].accuracy)
    assert m.to_dict()["layers"][1]["name"] == "fc2"
