"""Model metrics as functions of (model, quantisation config), per layer and in total.

* ``accuracy``/``loss`` -- on a split (val by default) of the spec's own integer
  codes, run by the integer reference (:mod:`qspec.integer_forward`; logits are
  the dequantised output codes); per layer: the spec's codes for *only* that
  layer, the rest in float (sensitivity).
* ``macs`` -- ptflops, PyTorch (module-hook) backend, on each Linear with its
  bias removed: exactly ``in * out`` multiply-accumulates per sample.
* ``flops`` -- ptflops, same backend, on each BN-folded ``Linear + activation``
  block: ptflops counts one op per multiply-accumulate, one per bias add and one
  per activation element, i.e. ``in*out + out (+ out)``.  BN costs nothing
  because it is folded.  Functional counting is off (``count_functional``):
  with it, ptflops 0.7.5 counts ``nn.ReLU`` twice and ``nn.LeakyReLU`` once.
* ``bitops`` -- ``macs * weight bits * input-activation bits``.
* ``size_bits`` -- ``weights * weight bits + biases * bias bits``.
* ``avg_weight_bits`` (weights only), ``avg_param_bits`` (weights + biases),
  ``avg_act_bits`` -- element-weighted mean width of the activations the Linear
  layers read (network input and hidden activations).
"""

from __future__ import annotations

import functools
import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from qspec.fixed import dequantise
from qspec.integer_forward import integer_forward, quantise_input
from qspec.network import QuantisedNetwork

from .data import Dataset
from .fold import FoldedNet, fold_batchnorm
from .qconfig import QuantConfig
from .quant import FakeQuantNet, check_spec_matches, quantise_network
from .train import evaluate, score_logits
from .zoo import DEFAULT_SLOPE, JSCNet, make_activation

FLOPS_BACKEND = "pytorch"


def ptflops_count(module: nn.Module, in_features: int) -> int:
    """ptflops' count for one sample through ``module`` (PyTorch backend)."""
    from ptflops import get_model_complexity_info

    count, _ = get_model_complexity_info(
        module,
        (in_features,),
        as_strings=False,
        print_per_layer_stat=False,
        backend=FLOPS_BACKEND,
        # ptflops 0.7.5 would otherwise count nn.ReLU twice (module hook + patched
        # F.relu inside it) but nn.LeakyReLU once; our models are modules only
        backend_specific_config={"count_functional": False},
        ost=io.StringIO(),
    )
    if count is None:
        raise RuntimeError(f"ptflops could not count {type(module).__name__}")
    return int(count)


@dataclass(frozen=True)
class LayerMetrics:
    name: str
    in_features: int
    out_features: int
    weight_bits: int
    bias_bits: int
    act_bits: int  # width of the activation this layer reads
    macs: int
    flops: int
    bitops: int
    size_bits: int
    accuracy: float  # only this layer quantised
    loss: float


@dataclass(frozen=True)
class Metrics:
    layers: tuple[LayerMetrics, ...]
    accuracy: float
    loss: float
    float_accuracy: float
    float_loss: float
    macs: int
    flops: int
    bitops: int
    size_bits: int
    avg_weight_bits: float
    avg_param_bits: float
    avg_act_bits: float

    def totals(self) -> dict[str, Any]:
        """The scalar metrics (no per-layer breakdown): what a search scores."""
        return {k: v for k, v in asdict(self).items() if k != "layers"}

    def to_dict(self) -> dict[str, Any]:
        return {**self.totals(), "layers": [asdict(ly) for ly in self.layers]}


@functools.cache
def layer_counts(n_in: int, n_out: int, activation: str | None) -> tuple[int, int]:
    """(MACs, FLOPs) of one sample through a Linear (+ activation) of this shape.

    Cached: ptflops counts module types and shapes only, and a search asks per trial.
    """
    # skip_init: empty modules of the right shape without touching the global RNG
    bare = torch.nn.utils.skip_init(nn.Linear, n_in, n_out, bias=False)
    block: nn.Module = torch.nn.utils.skip_init(nn.Linear, n_in, n_out)
    if activation is not None:
        block = nn.Sequential(block, make_activation(activation, DEFAULT_SLOPE))
    return ptflops_count(bare, n_in), ptflops_count(block, n_in)


def integer_scores(spec: QuantisedNetwork, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, cross-entropy) of the integer reference: host-quantised ``x``, logits =
    dequantised output codes."""
    codes = integer_forward(spec, quantise_input(spec, x))
    logits = dequantise(np.asarray(codes, dtype=np.float64), spec.output_fmt)
    return score_logits(torch.from_numpy(logits), y)


def compute_metrics(
    model: JSCNet | FoldedNet,
    config: QuantConfig | QuantisedNetwork,
    ds: Dataset,
    split: str = "val",
    per_layer_accuracy: bool = True,
) -> Metrics:
    """All metrics of ``model`` under ``config`` (calibrated on the train split).

    Given a spec, its integer codes are what is scored (``model`` supplies the
    float reference and the float layers of the per-layer sensitivity).
    """
    folded = fold_batchnorm(model) if isinstance(model, JSCNet) else model
    spec = config if isinstance(config, QuantisedNetwork) else None
    if spec is None:
        spec = quantise_network(folded, config, ds.train.x)
    check_spec_matches(folded, spec)  # float and per-layer figures must be of the same network
    data = ds.split(split)
    acc, loss = integer_scores(spec, data.x, data.y)
    f_acc, f_loss = evaluate(folded, data)
    layers = []
    for ly, ls in zip(folded.layers, spec.linear_layers, strict=True):
        n_in, n_out = ls.in_features, ls.out_features
        macs, flops = layer_counts(n_in, n_out, ly.activation)
        if per_layer_accuracy:
            l_acc, l_loss = evaluate(FakeQuantNet(folded, spec, {ly.name}), data)
        else:
            l_acc = l_loss = float("nan")
        w, b, a = ls.weight_fmt.width, ls.bias_fmt.width, ls.in_fmt.width
        layers.append(
            LayerMetrics(
                ly.name, n_in, n_out, w, b, a, macs, flops, macs * w * a,
                n_in * n_out * w + n_out * b, l_acc, l_loss,
            )
        )  # fmt: skip
    n_w = sum(ly.in_features * ly.out_features for ly in layers)
    n_b = sum(ly.out_features for ly in layers)
    n_a = sum(ly.in_features for ly in layers)
    w_bits = sum(ly.in_features * ly.out_features * ly.weight_bits for ly in layers)
    size = sum(ly.size_bits for ly in layers)
    return Metrics(
        tuple(layers),
        acc,
        loss,
        f_acc,
        f_loss,
        sum(ly.macs for ly in layers),
        sum(ly.flops for ly in layers),
        sum(ly.bitops for ly in layers),
        size,
        w_bits / n_w,
        size / (n_w + n_b),
        sum(ly.in_features * ly.act_bits for ly in layers) / n_a,
    )


@torch.no_grad()
def whole_model_flops(model: JSCNet | FoldedNet) -> int:
    """ptflops over the whole BN-folded model (equals the sum of the per-layer flops)."""
    folded = fold_batchnorm(model) if isinstance(model, JSCNet) else model
    return ptflops_count(folded, folded.layers[0].linear.in_features)
