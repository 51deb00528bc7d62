"""Integer-only forward pass over a :class:`~qspec.network.QuantisedNetwork`.

This is the bit-exact reference the hardware must match.  It runs on numpy int64
arrays when :func:`intermediate_bound` shows every intermediate fits, otherwise on
numpy object arrays of Python ints (exact at any width, slower).  No torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fixed import FixedFormat, Rounding, quantise, requantise
from .leaky import LeakyReLUSpec
from .network import LayerSpec, LinearSpec, QuantisedNetwork, ReLUSpec, RequantiseSpec

INT64_MAX = (1 << 63) - 1


def _mag(fmt: FixedFormat) -> int:
    return max(-fmt.min_code, fmt.max_code)


def intermediate_bound(net: QuantisedNetwork) -> int:
    """An upper bound on the magnitude of every integer :func:`integer_forward` computes:
    products, partial sums, aligned biases, and every format's codes.

    ``requantise`` adds nothing: on int64 arrays :mod:`qspec.fixed` right-shifts without
    the rounding offset's overflow and saturates or wraps left shifts exactly, as long as
    the destination's codes fit (they are in the bound).
    """
    bound = _mag(net.input_fmt)
    for layer in net.layers:
        m = _mag(layer.in_fmt)  # every layer's input is in range (saturated or wrapped)
        if isinstance(layer, LinearSpec):
            bias = _mag(layer.bias_fmt) << layer.bias_shift
            bound = max(bound, layer.in_features * m * _mag(layer.weight_fmt) + bias)
        elif isinstance(layer, LeakyReLUSpec) and layer.impl == "mult":
            bound = max(bound, m * abs(layer.slope_code))
        bound = max(bound, _mag(layer.out_fmt))
    return bound


def int64_is_exact(net: QuantisedNetwork) -> bool:
    """Whether the int64 path computes ``net`` exactly (no intermediate overflows)."""
    return intermediate_bound(net) <= INT64_MAX


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


def _as_codes(net: QuantisedNetwork, x: Any, dtype: Any) -> np.ndarray:
    exact64 = int64_is_exact(net)
    if dtype is None:
        dtype = np.int64 if exact64 else object
    elif dtype is object:
        pass
    elif np.dtype(dtype) == np.int64:
        if not exact64:
            raise ValueError(
                f"dtype int64 cannot hold this network's intermediates (up to "
                f"{intermediate_bound(net).bit_length()} bits); use dtype=object or None"
            )
    else:
        raise ValueError(f"dtype must be None, numpy.int64 or object, got {dtype!r}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuO":
        raise ValueError(f"x must hold integer codes, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != net.in_features:
        raise ValueError(f"x must have shape (N, {net.in_features}), got {arr.shape}")
    if arr.dtype.kind == "O" and not all(
        isinstance(c, int | np.integer) and not isinstance(c, bool) for c in arr.flat
    ):
        raise ValueError("x must hold integer codes, got a non-integer object")
    fmt = net.input_fmt
    if arr.size and (arr.min() < fmt.min_code or arr.max() > fmt.max_code):
        raise ValueError(f"x codes must be in [{fmt.min_code}, {fmt.max_code}] for {fmt}")
    if dtype is object:  # Python ints, so every operation is exact
        return np.array([[int(c) for c in row] for row in arr], dtype=object).reshape(arr.shape)
    return arr.astype(np.int64)


def integer_forward(
    net: QuantisedNetwork, x_codes: Any, *, trace: bool = False, dtype: Any = None
) -> Any:
    """Output codes (N, num_classes) for input codes (N, in_features).

    ``dtype``: None picks int64 when :func:`int64_is_exact`, else object (Python
    ints); ``object`` forces the exact object path, ``numpy.int64`` the fast one.
    With ``trace=True`` returns the list of every layer's output instead.
    """
    x = _as_codes(net, x_codes, dtype)
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
