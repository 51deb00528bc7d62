"""The JSC model family (after MASE's ``jsc-tiny``/``jsc-toy``/``jsc-s``).

* ``jsc-tiny``: BatchNorm -> Linear(F, C)
* ``jsc-toy``:  Linear(F, 8) BN act -> Linear(8, 8) BN act -> Linear(8, C)
* ``jsc-s``:    Linear(F, 64) BN act -> 32 -> 32 -> Linear(32, C)  (hls4ml jet tagging)

Linear layers are named ``fc1``, ``fc2``, ... -- the names quantisation configs use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

MODELS = {"jsc-tiny": (), "jsc-toy": (8, 8), "jsc-s": (64, 32, 32)}
ACTIVATIONS = ("relu", "leaky_relu")
DEFAULT_SLOPE = 0.125  # a power of two, so the shift-only LeakyReLU is exact


@dataclass(frozen=True)
class ModelSpec:
    """What to build: a model name, its activation and the dataset's shape."""

    name: str
    in_features: int
    num_classes: int
    activation: str = "relu"
    slope: float = DEFAULT_SLOPE

    def __post_init__(self) -> None:
        if self.name not in MODELS:
            raise ValueError(f"model must be one of {'|'.join(MODELS)}, got {self.name!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {'|'.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if not 0 < self.slope < 1:
            raise ValueError(f"slope must be in (0, 1), got {self.slope}")
        for k in ("in_features", "num_classes"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be an integer >= 1, got {v!r}")

    @property
    def hidden(self) -> tuple[int, ...]:
        return MODELS[self.name]

    @property
    def has_activation(self) -> bool:
        return bool(self.hidden)


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
