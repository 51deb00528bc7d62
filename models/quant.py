"""Post-training quantisation: folded float model + config -> integer spec and fake-quant model.

* :func:`quantise_network` resolves the config into concrete formats and returns a
  :class:`qspec.network.QuantisedNetwork` of integer codes.  Omitted fractional
  widths are calibrated on data (the train split): ``max`` takes the most
  fraction bits that still hold the largest magnitude; ``mse`` (default) also
  tries up to 4 finer choices, saturating outliers, and keeps the one with the
  least squared quantisation error -- much better at 3-4 bits.
* :class:`FakeQuantNet` is the same network in PyTorch float64: every value is
  a dequantised code, produced by the very qspec functions the integer
  reference uses, so the two agree bit for bit.  By default its weights are the
  spec's integer codes; for QAT (``weights="float"``) it quantises the float
  weights on every call with a straight-through estimator instead.

Weight constraints (:class:`WeightRule`, from the config's ``sparsity`` and ``max_digits``):
a magnitude pruning mask computed once from the float weights, then every weight code
rounded to its digit budget by :func:`qspec.digits.digit_table` -- in the spec builder and,
indexing the same table, in QAT's forward, so both give the same integers.

Offline constants (weights, biases) and the host-side input quantisation use
round-to-nearest + saturation; run-time requantisation uses the layer's
``rounding``/``overflow`` (what the hardware does).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qspec.digits import digit_table
from qspec.fixed import FixedFormat, Overflow, Rounding, dequantise, quantise
from qspec.leaky import LeakyReLUSpec
from qspec.network import (
    LayerSpec,
    LinearSpec,
    QuantisedNetwork,
    ReLUSpec,
    RequantiseSpec,
    min_accumulator_format,
)

from .fold import FoldedNet
from .qconfig import MAX_FRAC, MIN_FRAC, LayerQuant, QuantConfig

MAX_ACC_WIDTH = 53  # float64 holds every accumulator exactly up to 53 bits
CONST = (Rounding.NEAREST, Overflow.SATURATE)  # how offline constants are quantised


def calibrated_frac(width: int, max_abs: float) -> int:
    """Most fraction bits with ``max_abs`` inside a signed ``width``-bit format."""
    if not max_abs > 0:
        return MAX_FRAC if width > 1 else 0
    _, exp = math.frexp(max_abs)  # max_abs < 2**exp
    return int(min(max(width - 1 - exp, MIN_FRAC), MAX_FRAC))


MSE_EXTRA_BITS = 4  # how many fraction bits beyond the no-clipping choice ``mse`` tries


def mse_frac(width: int, values: torch.Tensor) -> int:
    """The fraction width (no-clipping choice or up to 4 bits finer) with the least
    squared error after quantise-dequantise with saturation; ties go to fewer bits."""
    v = values.detach().double().flatten()
    start = calibrated_frac(width, float(v.abs().max()) if v.numel() else 0.0)
    best = (math.inf, start)
    for f in range(start, min(start + MSE_EXTRA_BITS, MAX_FRAC) + 1):
        fmt = FixedFormat(width, f)
        err = float(((dequantise(quantise(v, fmt, *CONST).double(), fmt) - v) ** 2).sum())
        if err < best[0]:
            best = (err, f)
    return best[1]


@dataclass(frozen=True, eq=False)
class WeightRule:
    """Constraints on one Linear layer's weight codes: ``mask`` (bool, the weight's shape,
    False = pruned to zero; None: none pruned) and ``max_digits`` (0: unlimited)."""

    mask: torch.Tensor | None = None
    max_digits: int = 0


def prune_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor | None:
    """Keep-mask pruning the ``floor(sparsity * n)`` smallest-magnitude of ``n`` weights;
    equal magnitudes are pruned in row-major order (a stable sort).  None: nothing pruned."""
    n = weight.numel()
    k = math.floor(sparsity * n + 1e-9)  # 0.29 * 100 is 28.999999999999996 in float
    if k == 0:
        return None
    order = torch.sort(weight.detach().abs().flatten(), stable=True).indices
    mask = torch.ones(n, dtype=torch.bool)
    mask[order[:k]] = False
    return mask.reshape(weight.shape)


def weight_rules(folded: FoldedNet, config: QuantConfig) -> dict[str, WeightRule]:
    """The :class:`WeightRule` of every layer ``config`` constrains (masks from ``folded``'s
    float weights; computed once, then fixed through fine-tuning)."""
    rules = {}
    for ly in folded.layers:
        q = config.for_layer(ly.name)
        if q.sparsity or q.max_digits:
            rules[ly.name] = WeightRule(prune_mask(ly.linear.weight, q.sparsity), q.max_digits)
    return rules


def weight_codes(w: torch.Tensor, fmt: FixedFormat, rule: WeightRule | None) -> torch.Tensor:
    """The int64 codes of real weights ``w`` in ``fmt`` under ``rule``: prune, quantise
    (nearest, saturate), round to the digit budget."""
    w = w.detach().double()
    if rule is not None and rule.mask is not None:
        w = w * rule.mask
    codes = quantise(w, fmt, *CONST).long()
    if rule is not None and rule.max_digits:
        table = torch.from_numpy(digit_table(fmt.width, rule.max_digits).copy())
        codes = table[codes - fmt.min_code]
    return codes


def _pruned(folded: FoldedNet, rules: dict[str, WeightRule]) -> FoldedNet:
    """``folded`` with the masked weights zeroed (a copy; ``folded`` when none is masked)."""
    if not any(r.mask is not None for r in rules.values()):
        return folded
    folded = copy.deepcopy(folded)
    with torch.no_grad():
        for ly in folded.layers:
            rule = rules.get(ly.name)
            if rule is not None and rule.mask is not None:
                ly.linear.weight.mul_(rule.mask)
    return folded


def float_activation(h: torch.Tensor, activation: str | None, slope: float) -> torch.Tensor:
    if activation is None:
        return h
    return F.relu(h) if activation == "relu" else F.leaky_relu(h, slope)


@torch.no_grad()
def _calibration_tensors(folded: FoldedNet, x: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """(layer input, layer output as its format must hold it) per Linear, in float."""
    out = []
    h = x.double()
    for ly in folded.layers:
        y = F.linear(h, ly.linear.weight.double(), ly.linear.bias.double())
        # ReLU discards negatives, so only the kept range matters for the format
        seen = F.relu(y) if ly.activation == "relu" else y
        out.append((h, seen))
        h = float_activation(y, ly.activation, ly.slope)
    return out


def _fmt(width: int, frac: int | None, values: torch.Tensor, method: str) -> FixedFormat:
    if frac is None:
        v = values.detach().double()
        if method == "max":
            frac = calibrated_frac(width, float(v.abs().max()) if v.numel() else 0.0)
        else:
            frac = mse_frac(width, v)
    return FixedFormat(width, frac)


def _activation_spec(
    name: str, q: LayerQuant, default_act: str, default_slope: float, fmt: FixedFormat
) -> LayerSpec:
    act = q.activation or default_act
    if act == "relu":
        return ReLUSpec(fmt)
    if fmt.width < 2:
        raise ValueError(f"layers.{name}.act_width must be >= 2 for leaky_relu, got {fmt.width}")
    slope = default_slope if q.slope is None else q.slope
    # one rounding rule, qspec's: shift -> nearest 2^-n in linear distance (ties to the
    # smaller n); mult -> the finest slope format of slope_width bits unless given
    mult = q.leaky_impl == "mult"
    try:
        return LeakyReLUSpec.from_slope(
            fmt.width,
            fmt.frac_width,
            slope,
            q.leaky_impl,
            slope_width=q.slope_width if mult else None,  # mult-only keys (see qconfig)
            slope_frac_width=q.slope_frac_width if mult else None,
            rounding=q.rounding,
            overflow=q.overflow,
        )
    except ValueError as e:
        raise ValueError(f"layers.{name}: leaky_relu {e}") from None


def quantise_network(
    folded: FoldedNet, config: QuantConfig, calib_x: torch.Tensor | np.ndarray, name: str = ""
) -> QuantisedNetwork:
    """Resolve ``config`` on ``folded`` (calibrating on ``calib_x``) into integer codes."""
    names = folded.names
    config.check_layers(names)
    rules = weight_rules(folded, config)
    folded = _pruned(folded, rules)  # prune, then calibrate and quantise what is left
    x = torch.as_tensor(np.asarray(calib_x), dtype=torch.float64)
    ranges = _calibration_tensors(folded, x)
    layers: list[LayerSpec] = []
    prev: FixedFormat | None = None
    input_fmt = None
    for ly, (in_vals, out_vals) in zip(folded.layers, ranges, strict=True):
        q = config.for_layer(ly.name)
        if prev is None or ly.name in config.explicit_input:
            in_fmt = _fmt(q.input_width, q.input_frac_width, in_vals, q.calibration)
            if prev is None:
                input_fmt = in_fmt
            elif in_fmt != prev:
                layers.append(RequantiseSpec(prev, in_fmt, q.rounding, q.overflow))
        else:
            in_fmt = prev
        w = ly.linear.weight.detach().double()
        b = ly.linear.bias.detach().double()
        w_fmt = _fmt(q.weight_width, q.weight_frac_width, w, q.calibration)
        prod_frac = in_fmt.frac_width + w_fmt.frac_width
        b_fmt = _fmt(q.bias_width, q.bias_frac_width, b, q.calibration)
        if q.bias_frac_width is None:  # calibrated: never finer than the product
            b_fmt = replace(b_fmt, frac_width=min(b_fmt.frac_width, prod_frac))
        elif b_fmt.frac_width > prod_frac:
            raise ValueError(
                f"layers.{ly.name}.bias_frac_width must be <= input+weight frac width "
                f"{prod_frac}, got {b_fmt.frac_width}"
            )
        acc = min_accumulator_format(in_fmt, w_fmt, b_fmt, w.shape[1])
        if acc.width > MAX_ACC_WIDTH:
            raise ValueError(
                f"layers.{ly.name}: accumulator needs {acc.width} bits (max {MAX_ACC_WIDTH}); "
                f"raise bias_frac_width (got {b_fmt.frac_width}) or narrow the widths"
            )
        out_fmt = _fmt(q.act_width, q.act_frac_width, out_vals, q.calibration)
        layers.append(
            LinearSpec(
                ly.name,
                tuple(map(tuple, weight_codes(w, w_fmt, rules.get(ly.name)).tolist())),
                tuple(quantise(b, b_fmt, *CONST).tolist()),
                in_fmt,
                w_fmt,
                b_fmt,
                acc,
                out_fmt,
                q.rounding,
                q.overflow,
            )
        )
        if ly.activation is not None:
            layers.append(_activation_spec(ly.name, q, ly.activation, ly.slope, out_fmt))
        prev = layers[-1].out_fmt
    assert input_fmt is not None
    return QuantisedNetwork(input_fmt, tuple(layers), folded.layers[-1].linear.out_features, name)


def _fq(x: torch.Tensor, fmt: FixedFormat, rounding: Rounding, overflow: Overflow) -> torch.Tensor:
    """Fake-quantise (float64 in, float64 out) with a straight-through gradient."""
    q = dequantise(quantise(x.detach(), fmt, rounding, overflow).double(), fmt)
    return x + (q - x).detach()


WEIGHT_SOURCES = ("spec", "float")


def check_spec_matches(folded: FoldedNet, spec: QuantisedNetwork) -> None:
    """``spec``'s Linear layers have ``folded``'s names and shapes, else ``ValueError``."""
    got = [f"{ly.name}:{ly.in_features}x{ly.out_features}" for ly in spec.linear_layers]
    want = [f"{ly.name}:{ly.linear.in_features}x{ly.linear.out_features}" for ly in folded.layers]
    if got != want:
        raise ValueError(f"spec layers {', '.join(got)} do not match the model's {', '.join(want)}")


class FakeQuantNet(nn.Module):
    """``folded`` run in float64 with ``spec``'s formats: dequantised codes everywhere.

    ``weights`` says where the quantised layers' weights come from, so a metric
    can never score different weights than the spec it reports:

    * ``"spec"`` (default): the spec's own integer codes, dequantised -- what the
      hardware computes, for any spec (e.g. one a search built from a trial).
    * ``"float"`` (QAT): ``folded``'s float weights quantised into the spec's
      formats on every call, with a straight-through gradient; ``spec`` is then
      always :meth:`to_spec` of the current weights.

    ``quantised`` selects which Linear layers (by name) are quantised; the rest
    (with their activations) run in plain float on ``folded``'s weights -- used for
    per-layer sensitivity.  ``rules`` (``"float"`` only; see :func:`weight_rules`) prune
    and digit-round the quantised weights, in the forward (straight-through) and in
    :meth:`to_spec` alike.
    """

    def __init__(
        self,
        folded: FoldedNet,
        spec: QuantisedNetwork,
        quantised: set[str] | None = None,
        *,
        weights: str = "spec",
        rules: dict[str, WeightRule] | None = None,
    ):
        super().__init__()
        if weights not in WEIGHT_SOURCES:
            raise ValueError(f"weights must be one of {'|'.join(WEIGHT_SOURCES)}, got {weights!r}")
        check_spec_matches(folded, spec)
        self.folded = folded
        self.weights = weights
        self.rules = dict(rules or {})
        self._spec = spec
        self.quantised = set(folded.names) if quantised is None else set(quantised)
        self._lin = {ly.name: ly.linear for ly in folded.layers}
        self._slope = folded.layers[0].slope  # float slope for layers left unquantised
        # the spec's codes as real values (exact in float64: codes have <= 16 bits)
        self._codes = {
            ly.name: (
                dequantise(torch.tensor(ly.weight, dtype=torch.float64), ly.weight_fmt),
                dequantise(torch.tensor(ly.bias, dtype=torch.float64), ly.bias_fmt),
            )
            for ly in spec.linear_layers
        }

    @property
    def spec(self) -> QuantisedNetwork:
        """The integer network this model computes (for ``"float"``: of the current weights)."""
        return self._spec if self.weights == "spec" else self.to_spec()

    def _quantised_params(self, layer: LinearSpec) -> tuple[torch.Tensor, torch.Tensor]:
        if self.weights == "spec":
            return self._codes[layer.name]
        lin = self._lin[layer.name]
        w, b = lin.weight.double(), lin.bias.double()
        rule = self.rules.get(layer.name)
        if rule is None:
            return _fq(w, layer.weight_fmt, *CONST), _fq(b, layer.bias_fmt, *CONST)
        if rule.mask is not None:
            w = w * rule.mask  # a pruned weight gets no gradient
        q = dequantise(weight_codes(w, layer.weight_fmt, rule).double(), layer.weight_fmt)
        return w + (q - w).detach(), _fq(b, layer.bias_fmt, *CONST)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.double()
        entry = CONST  # the host quantises the network input
        on = False
        for layer in self._spec.layers:
            if isinstance(layer, RequantiseSpec):
                entry = (layer.rounding, layer.overflow)  # applied at the next Linear's entry
            elif isinstance(layer, LinearSpec):
                on = layer.name in self.quantised
                if on:
                    # identity when the previous layer already produced in_fmt codes
                    h = _fq(h, layer.in_fmt, *entry)
                    w, b = self._quantised_params(layer)
                else:
                    lin = self._lin[layer.name]
                    w, b = lin.weight.double(), lin.bias.double()
                h = F.linear(h, w, b)  # exact in float64: accumulator <= 53 bits
                if on:
                    h = _fq(h, layer.out_fmt, layer.rounding, layer.overflow)
                entry = (layer.rounding, layer.overflow)
            elif isinstance(layer, ReLUSpec):
                h = F.relu(h)
            elif isinstance(layer, LeakyReLUSpec):
                h = F.leaky_relu(h, float(layer.slope) if on else self._slope)
                if on:  # x * slope is exact in float64
                    h = _fq(h, layer.out_fmt, layer.rounding, layer.overflow)
        return h

    def to_spec(self) -> QuantisedNetwork:
        """The integer spec of the *current* float weights (after QAT) in the same formats."""
        if self.weights == "spec":
            return self._spec
        layers = []
        for layer in self._spec.layers:
            if isinstance(layer, LinearSpec):
                lin = self._lin[layer.name]
                w = weight_codes(lin.weight, layer.weight_fmt, self.rules.get(layer.name))
                b = quantise(lin.bias.detach().double(), layer.bias_fmt, *CONST)
                layer = replace(layer, weight=tuple(map(tuple, w.tolist())), bias=tuple(b.tolist()))
            layers.append(layer)
        return replace(self._spec, layers=tuple(layers))


def fake_quant_model(
    folded: FoldedNet, config: QuantConfig, calib_x: torch.Tensor | np.ndarray
) -> FakeQuantNet:
    """The fake-quantised PyTorch model for ``config`` (formats calibrated on ``calib_x``)."""
    return FakeQuantNet(folded, quantise_network(folded, config, calib_x))
