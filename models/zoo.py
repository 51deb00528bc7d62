"""The JSC model family (after MASE's ``jsc-tiny``/``jsc-toy``/``jsc-s``).

* ``jsc-tiny``: BatchNorm -> Linear(F, C)
* ``jsc-toy``:  Linear(F, 8) BN act -> Linear(8, 8) BN act -> Linear(8, C)
* ``jsc-s``:    Linear(F, 64) BN act -> 32 -> 32 -> Linear(32, C)  (hls4ml jet tagging)

Linear layers are named ``fc1``, ``fc2``, ... -- the names quantisation configs use.
"""

from __future__ import annotations

import torch
from torch import nn

from .modelspec import ACTIVATIONS, DEFAULT_SLOPE, MODELS, ModelSpec

__all__ = ["ACTIVATIONS", "DEFAULT_SLOPE", "MODELS", "JSCNet", "ModelSpec", "build_model"]


def make_activation(activation: str, slope: float) -> nn.Module:
    return nn.ReLU() if activation == "relu" else nn.LeakyReLU(slope)


class JSCNet(nn.Module):
    """A ``jsc-*`` model; ``blocks`` is the ordered list of sub-modules."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        layers: dict[str, nn.Module] = {}
        if not spec.hidden:
            layers["bn0"] = nn.BatchNorm1d(spec.in_features)
        width = spec.in_features
        for i, h in enumerate(spec.hidden, start=1):
            layers[f"fc{i}"] = nn.Linear(width, h)
            layers[f"bn{i}"] = nn.BatchNorm1d(h)
            layers[f"act{i}"] = make_activation(spec.activation, spec.slope)
            width = h
        layers[f"fc{len(spec.hidden) + 1}"] = nn.Linear(width, spec.num_classes)
        self.blocks = nn.Sequential(*layers.values())
        self.block_names = list(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def build_model(spec: ModelSpec, seed: int = 0) -> JSCNet:
    """A freshly initialised model (deterministic for a given seed)."""
    torch.manual_seed(seed)
    return JSCNet(spec)
