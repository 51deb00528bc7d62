"""QuantisedNetwork spec: validation, JSON round trip, integer forward vs exact Fractions."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from qspec.fixed import FixedFormat
from qspec.integer_forward import integer_forward
from qspec.leaky import LeakyReLUSpec
from qspec.network import (
    LinearSpec,
    QuantisedNetwork,
    ReLUSpec,
    RequantiseSpec,
    min_accumulator_format,
)
from tests.fraction_model import model_leaky, model_quantise, safe_id


def lively_frac(rng: random.Random, fmt: FixedFormat, width: int) -> int:
    """A frac width for ``width`` bits that keeps the top of ``fmt``'s range (up to 3 bits
    more fraction, so large values saturate or wrap): a frac drawn without regard to the
    values rounds every beat to one constant (as it did for half the networks), and a
    design stuck at that constant would pass."""
    return fmt.frac_width - (fmt.width - width) + rng.randint(0, 3)


def _rand_linear(rng: random.Random, name: str, n_in: int, n_out: int, in_fmt, out_w, rounding):
    wf = FixedFormat(rng.randint(2, 8), rng.randint(-2, 8))
    pf = in_fmt.frac_width + wf.frac_width
    # a bias coarser than the products by up to 6 bits, but no larger than a product: a
    # larger one dominates the accumulator and its top bits, so every output is the bias
    shift = rng.randint(0, 6)
    bf = FixedFormat(rng.randint(2, max(2, in_fmt.width + wf.width - shift)), pf - shift)
    w = [[rng.randint(wf.min_code, wf.max_code) for _ in range(n_in)] for _ in range(n_out)]
    b = [rng.randint(bf.min_code, bf.max_code) for _ in range(n_out)]
    acc = min_accumulator_format(in_fmt, wf, bf, n_in)
    out = FixedFormat(out_w, lively_frac(rng, acc, out_w))
    overflow = rng.choice(["saturate", "wrap"])
    return LinearSpec(name, w, b, in_fmt, wf, bf, acc, out, rounding, overflow)


def random_network(seed: int, wide: bool = False) -> QuantisedNetwork:
    rng = random.Random(seed)
    sizes = [rng.randint(1, 6) for _ in range(rng.randint(2, 4))]
    fmt = FixedFormat(rng.randint(2, 40 if wide else 8), rng.randint(-2, 8))
    in_fmt, layers = fmt, []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        rounding = rng.choice(["floor", "nearest"])
        lin = _rand_linear(
            rng, f"fc{i + 1}", a, b, fmt, rng.randint(2, 40 if wide else 10), rounding
        )
        layers.append(lin)
        fmt = lin.out_fmt
        if i < len(sizes) - 2:
            kind = rng.choice(["relu", "shift", "mult", "requant"])
            if kind in ("shift", "mult") and fmt.width > 32:  # LeakyReLUSpec's width limit
                kind = "relu"
            if kind == "relu":
                layers.append(ReLUSpec(fmt))
            elif kind == "shift":
                layers.append(
                    LeakyReLUSpec.shift_variant(fmt.width, fmt.frac_width, 2, rounding=rounding)
                )
            elif kind == "mult":
                layers.append(
                    LeakyReLUSpec.mult_variant(fmt.width, fmt.frac_width, 0.3, rounding=rounding,
                                               slope_width=6, slope_frac_width=5)
                )  # fmt: skip
            else:
                w = rng.randint(2, 9)
                layers.append(RequantiseSpec(fmt, FixedFormat(w, lively_frac(rng, fmt, w))))
            fmt = layers[-1].out_fmt
    return QuantisedNetwork(in_fmt, layers, sizes[-1], f"rand{seed}")


def _q(real: Fraction, fmt: FixedFormat, rounding, overflow) -> int:
    return model_quantise(real, fmt.width, fmt.frac_width, fmt.signed, rounding, overflow)


def fraction_forward(net: QuantisedNetwork, x: list[int], trace: bool = False):
    """Exact model from the docstring semantics: real values as Fractions, no shifts."""
    outs = []
    for layer in net.layers:
        if isinstance(layer, LinearSpec):
            xr = [layer.in_fmt.real(c) for c in x]
            out = []
            for row, b in zip(layer.weight, layer.bias, strict=True):
                acc = sum((xi * layer.weight_fmt.real(w) for xi, w in zip(xr, row, strict=True)),
                          layer.bias_fmt.real(b))  # fmt: skip
                out.append(_q(acc, layer.out_fmt, layer.rounding.value, layer.overflow.value))
            x = out
        elif isinstance(layer, ReLUSpec):
            x = [max(c, 0) for c in x]
        elif isinstance(layer, LeakyReLUSpec):
            x = [model_leaky(layer, c) for c in x]
        else:
            x = [_q(layer.in_fmt.real(c), layer.out_fmt, layer.rounding.value, layer.overflow.value)
                 for c in x]  # fmt: skip
        outs.append(x)
    return outs if trace else x


@pytest.mark.parametrize("wide", [False, True])
def test_integer_forward_matches_fraction_model(wide):
    for seed in range(40):
        net = random_network(seed, wide)
        rng = np.random.default_rng(seed)
        f = net.input_fmt
        x = rng.integers(f.min_code, f.max_code + 1, size=(25, net.in_features)).tolist()
        x[0] = [f.min_code] * net.in_features  # extremes exercise the accumulator bound
        x[1] = [f.max_code] * net.in_features
        got = integer_forward(net, np.array(x, dtype=object))
        want = [fraction_forward(net, row) for row in x]
        assert [[int(c) for c in row] for row in got] == want, seed


def test_json_round_trip():
    for seed in range(10):
        net = random_network(seed)
        back = QuantisedNetwork.from_json(net.to_json())
        assert back == net
        assert back.to_dict() == net.to_dict()


F8 = FixedFormat(8, 4)


def _lin(**kw):
    base = dict(name="fc1", weight=[[1, 2]], bias=[3], in_fmt=F8, weight_fmt=F8,
                bias_fmt=FixedFormat(8, 8), acc_fmt=FixedFormat(18, 8), out_fmt=F8)  # fmt: skip
    return LinearSpec(**{**base, **kw})


def test_linear_hand_computed():
    # x = (1.0, -0.5), W = (0.0625, 0.125), b = 3/256: acc = 16*1 + (-8)*2 + 3 = 3 (frac 8)
    lin = _lin()
    assert lin.bias_shift == 0
    out = integer_forward(QuantisedNetwork(F8, [lin], 1), [[16, -8]])
    assert out.tolist() == [[0]]  # 3/256 floors to 0 at frac 4
    near = _lin(rounding="nearest", bias=[8])  # 8/256 = 0.5 LSB: rounds half up
    assert integer_forward(QuantisedNetwork(F8, [near], 1), [[16, -8]]).tolist() == [[1]]
    shifted = _lin(bias_fmt=FixedFormat(4, 2), bias=[3])  # 0.75 -> 3 << 6 = 192 at frac 8
    assert integer_forward(QuantisedNetwork(F8, [shifted], 1), [[0, 0]]).tolist() == [[12]]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            dict(weight=[[1, 200]]),
            r"weight\[0\]\[1\] must be in \[-128, 127\] for weight format s8.4",
        ),
        (dict(weight=[[1, 2.0]]), r"weight\[0\]\[1\] must be an integer"),
        (dict(bias=[True]), r"bias\[0\] must be an integer"),
        (dict(weight="ab"), "weight must be a list of rows"),
        (dict(in_fmt=(8, 4)), "in_fmt must be a FixedFormat"),
        (dict(overflow="clamp"), r"overflow must be one of saturate\|wrap"),
        (dict(bias=[1, 2]), "bias must have 1 entries"),
        (
            dict(bias_fmt=FixedFormat(8, 9)),
            "bias_fmt.frac_width must be <= input\\+weight frac width 8",
        ),
        (
            dict(acc_fmt=FixedFormat(10, 8)),
            r"acc_fmt must hold \[-32640, 32895\] with frac_width 8",
        ),
        (dict(acc_fmt=FixedFormat(18, 7)), "acc_fmt must hold"),
        (dict(rounding="even"), "rounding must be one of floor\\|nearest"),
        (dict(weight=[[1], [1, 2]]), "rectangular"),
    ],
    ids=safe_id,
)
def test_linear_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        _lin(**kw)


def test_network_validation():
    lin = _lin()
    with pytest.raises(
        ValueError, match=r"layers\[0\].in_fmt must be s8.3 \(input_fmt\), got s8.4"
    ):
        QuantisedNetwork(FixedFormat(8, 3), [lin], 1)
    with pytest.raises(ValueError, match="num_classes must equal"):
        QuantisedNetwork(F8, [lin], 2)
    with pytest.raises(ValueError, match="version must be 1"):
        QuantisedNetwork.from_dict({"version": 0})
    with pytest.raises(ValueError, match=r"layers\[0\].kind must be one of linear\|relu"):
        QuantisedNetwork.from_dict(
            {**QuantisedNetwork(F8, [lin], 1).to_dict(), "layers": [{"kind": "conv"}]}
        )
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\)"):
        integer_forward(QuantisedNetwork(F8, [lin], 1), [[1, 2, 3]])
    with pytest.raises(ValueError, match=r"x codes must be in \[-128, 127\]"):
        integer_forward(QuantisedNetwork(F8, [lin], 1), [[1, 200]])


def test_spec_is_torch_free():
    import subprocess
    import sys

    code = "import qspec.network, qspec.integer_forward, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
