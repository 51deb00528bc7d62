"""Dead-unit removal: the same integer function with fewer neurons between Linear layers.

:func:`remove_dead_units` looks at each hidden neuron (an output of a Linear layer that
another Linear layer reads; the network's inputs and outputs never change):

* its outgoing column in the next Linear is all zero -- nothing reads it: dropped;
* its incoming row is all zero -- its output is a constant ``c`` (the bias through the
  layer's requantisation and the element-wise layers after it): ``W[k][j] * c`` is folded
  into the next layer's bias when that is exactly a bias code of its format (the product's
  extra fraction bits all zero, the sum in range), and the neuron dropped; else kept.

Repeated until nothing changes (a neuron whose every input was dropped becomes constant in
turn).  A layer keeps at least one neuron.  Formats (accumulators included) are unchanged,
so :func:`qspec.integer_forward.integer_forward` is the same on every input.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np

from .integer_forward import layer_forward
from .network import LayerSpec, LinearSpec, QuantisedNetwork


def _constants(layers: list[LayerSpec], a: int, b: int) -> list[int]:
    """Each output of Linear ``layers[a]`` at zero input, through ``layers[a+1:b]``, as
    ``layers[b]`` reads it (exact Python ints)."""
    x = np.zeros((1, layers[a].in_features), dtype=object)
    for layer in layers[a:b]:
        x = layer_forward(layer, x)
    return [int(v) for v in x[0]]


def _plan(
    first: LinearSpec, nxt: LinearSpec, consts: list[int], forced: int | None
) -> tuple[list[int], list[int]]:
    """(neurons kept, the next layer's bias after folding the rest); ``forced`` is kept."""
    bias = list(nxt.bias)
    lo, hi = nxt.bias_fmt.min_code, nxt.bias_fmt.max_code
    unit = 1 << nxt.bias_shift  # one bias code in product units
    keep = []
    for j in range(first.out_features):
        col = [row[j] for row in nxt.weight]
        if j == forced:
            keep.append(j)
        elif not any(col):
            continue
        elif not any(first.weight[j]):
            delta = [w * consts[j] for w in col]
            new = [b + d // unit for b, d in zip(bias, delta, strict=True)]
            if all(d % unit == 0 for d in delta) and all(lo <= v <= hi for v in new):
                bias = new
            else:
                keep.append(j)
        else:
            keep.append(j)
    return keep, bias


def _prune_pair(layers: list[LayerSpec], a: int, b: int) -> bool:
    """Drop or fold the dead neurons between Linear ``layers[a]`` and ``layers[b]``."""
    first, nxt = layers[a], layers[b]
    assert isinstance(first, LinearSpec) and isinstance(nxt, LinearSpec)
    consts = _constants(layers, a, b)
    keep, bias = _plan(first, nxt, consts, None)
    if not keep:  # every neuron dead: keep one, preferably one merely unread (costs nothing)
        unread = [j for j in range(first.out_features) if not any(r[j] for r in nxt.weight)]
        keep, bias = _plan(first, nxt, consts, unread[0] if unread else first.out_features - 1)
    if len(keep) == first.out_features:
        return False
    layers[a] = replace(
        first, weight=tuple(first.weight[j] for j in keep), bias=tuple(first.bias[j] for j in keep)
    )
    layers[b] = replace(
        nxt,
        weight=tuple(tuple(row[j] for j in keep) for row in nxt.weight),
        bias=tuple(bias),
    )
    return True


def remove_dead_units(net: QuantisedNetwork) -> QuantisedNetwork:
    """``net`` without its dead hidden neurons (see the module docstring); ``net`` itself
    when there is none."""
    layers = list(net.layers)
    linear = [i for i, ly in enumerate(layers) if isinstance(ly, LinearSpec)]
    changed = True
    any_change = False
    while changed:
        changed = False
        for a, b in pairwise(linear):
            changed |= _prune_pair(layers, a, b)
        any_change |= changed
    return replace(net, layers=tuple(layers)) if any_change else net
