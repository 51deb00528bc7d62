"""Integer-only forward pass over a :class:`~qspec.network.QuantisedNetwork`.

This is the bit-exact reference the hardware must match.  It uses numpy int64
arrays when every intermediate fits in 62 bits, otherwise numpy object arrays
of Python ints (exact at any width, slower).  No torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fixed import Rounding, quantise, requantise
from .leaky import LeakyReLUSpec
from .network import LayerSpec, LinearSpec, QuantisedNetwork, ReLUSpec, RequantiseSpec

_INT64_SAFE_BITS = 62


def _widest(net: QuantisedNetwork) -> int:
    bits = net.input_fmt.width
    for layer in net.layers:
        if isinstance(layer, LinearSpec):
            bits = max(bits, layer.acc_fmt.width)
        elif isinstance(layer, LeakyReLUSpec):
            bits = max(bits, layer.neg_format.width)
        bits = max(bits, layer.out_fmt.width)
    return bits


def linear_forward(layer: LinearSpec, x: np.ndarray) -> np.ndarray:
    """``requantise(x @ W.T + (b << shift), acc_fmt, out_fmt)`` for a batch ``x`` (N, in)."""
    w = np.array(layer.weight, dtype=x.dtype)
    b = np.array(layer.bias, dtype=x.dtype) << layer.bias_shift
    acc = x @ w.T + b
    return requantise(acc, layer.acc_fmt, layer.out_fmt, layer.rounding, layer.overflow)


def layer_forward(layer: LayerSpec, x: np.ndarray) -> np.ndarray:
    """One layer's output codes for input codes ``x`` (N, features)."""
    if isinstance(layer, LinearSpec):
        return linear_forward(layer, x)
    if isinstance(layer, ReLUSpec):
        return np.where(x >= 0, x, 0 * x)
    if isinstance(layer, LeakyReLUSpec):
        return layer.forward(x)
    if isinstance(layer, RequantiseSpec):
        return requantise(x, layer.in_fmt, layer.out_fmt, layer.rounding, layer.overflow)
    raise TypeError(f"unknown layer spec {type(layer).__name__}")


def _as_codes(net: QuantisedNetwork, x: Any) -> np.ndarray:
    dtype = np.int64 if _widest(net) <= _INT64_SAFE_BITS else object
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuO":
        raise ValueError(f"x must hold integer codes, got dtype {arr.dtype}")
    arr = arr.astype(dtype)
    if arr.ndim != 2 or arr.shape[1] != net.in_features:
        raise ValueError(f"x must have shape (N, {net.in_features}), got {arr.shape}")
    fmt = net.input_fmt
    if arr.size and (arr.min() < fmt.min_code or arr.max() > fmt.max_code):
        raise ValueError(f"x codes must be in [{fmt.min_code}, {fmt.max_code}] for {fmt}")
    return arr


def integer_forward(net: QuantisedNetwork, x_codes: Any, *, trace: bool = False) -> Any:
    """Output codes (N, num_classes) for input codes (N, in_features).

    With ``trace=True`` returns the list of every layer's output instead.
    """
    x = _as_codes(net, x_codes)
    outs = []
    for layer in net.layers:
        x = layer_forward(layer, x)
        outs.append(x)
    return outs if trace else x


def quantise_input(net: QuantisedNetwork, x_real: Any) -> np.ndarray:
    """Real features -> input codes: round to nearest, saturate (done by the host)."""
    return quantise(np.asarray(x_real, dtype=np.float64), net.input_fmt, Rounding.NEAREST)


def predict(net: QuantisedNetwork, x_codes: Any) -> np.ndarray:
    """Class indices (first maximum on ties, as ``torch.argmax``)."""
    return np.argmax(np.asarray(integer_forward(net, x_codes)), axis=1)
