"""BatchNorm folding: a trained :class:`~models.zoo.JSCNet` -> a Linear/activation chain.

For ``Linear -> BN`` (eval mode, ``a = gamma / sqrt(var + eps)``)::

    W' = diag(a) W,   b' = a (b - mean) + beta

For ``BN -> Linear`` (jsc-tiny) the BN is folded into the *following* Linear::

    W' = W diag(a),   b' = b + W (beta - a mean)

Both are exact algebra; they are computed in float64 then stored as float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .zoo import JSCNet, make_activation


@dataclass(frozen=True)
class FoldedLayer:
    """One Linear and the activation after it (``None`` for the output layer)."""

    name: str
    linear: nn.Linear
    activation: str | None
    slope: float


class FoldedNet(nn.Module):
    """Float model without BatchNorm: ``fc1 act1 fc2 act2 ... fcN``."""

    def __init__(self, layers: list[FoldedLayer]):
        super().__init__()
        self.layers = layers
        mods: list[nn.Module] = []
        for ly in layers:
            mods.append(ly.linear)
            if ly.activation is not None:
                mods.append(make_activation(ly.activation, ly.slope))
        self.seq = nn.Sequential(*mods)

    @property
    def names(self) -> list[str]:
        return [ly.name for ly in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


def _bn_scale_shift(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    var = bn.running_var.double()
    a = bn.weight.double() / torch.sqrt(var + bn.eps)
    return a, bn.bias.double() - a * bn.running_mean.double()


def _linear(w: torch.Tensor, b: torch.Tensor) -> nn.Linear:
    # skip_init: no random initialisation (it would advance the global RNG)
    lin = torch.nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight.copy_(w.float())
        lin.bias.copy_(b.float())
    return lin


@torch.no_grad()
def fold_batchnorm(model: JSCNet) -> FoldedNet:
    """Fold every BatchNorm into its neighbouring Linear (see the module docstring)."""
    spec = model.spec
    mods = dict(zip(model.block_names, model.blocks, strict=True))
    n = len(spec.hidden) + 1
    layers = []
    for i in range(1, n + 1):
        lin = mods[f"fc{i}"]
        w, b = lin.weight.double(), lin.bias.double()
        if i == 1 and "bn0" in mods:  # BN before the Linear
            a, c = _bn_scale_shift(mods["bn0"])
            w, b = w * a[None, :], b + w @ c
        if f"bn{i}" in mods:  # BN after the Linear
            a, c = _bn_scale_shift(mods[f"bn{i}"])
            w, b = w * a[:, None], a * b + c
        act = spec.activation if i < n else None
        layers.append(FoldedLayer(f"fc{i}", _linear(w, b), act, spec.slope))
    return FoldedNet(layers).eval()
