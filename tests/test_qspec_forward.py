"""The integer reference is exact on both paths (issue #7, defect 4).

The int64/object choice used to ignore left shifts inside ``requantise`` (s8.-16 inputs
and weights into s8.32 gave 0 where 127 is right) and ``nearest`` with a right shift
>= 64 raised OverflowError on int64 arrays.  Both paths are checked against the exact
Fraction model, including networks whose intermediates force the object path.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from qspec.fixed import FixedFormat
from qspec.integer_forward import (
    INT64_MAX,
    int64_is_exact,
    integer_forward,
    intermediate_bound,
    predict,
)
from qspec.leaky import LeakyReLUSpec
from qspec.network import (
    LinearSpec,
    QuantisedNetwork,
    ReLUSpec,
    RequantiseSpec,
    min_accumulator_format,
)
from tests.test_qspec_network import fraction_forward, random_network


def _fmt(rng: random.Random, wmax: int, signed: bool | None = None) -> FixedFormat:
    s = rng.random() < 0.7 if signed is None else signed
    return FixedFormat(rng.randint(2, wmax), rng.randint(-24, 40), s)


def extreme_network(seed: int) -> QuantisedNetwork:
    """Wide formats, large left/right shifts, unsigned formats, both modes."""
    rng = random.Random(seed)
    sizes = [rng.randint(1, 5) for _ in range(rng.randint(2, 4))]
    fmt = _fmt(rng, 48)
    in_fmt, layers = fmt, []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        wf = _fmt(rng, 48)
        pf = fmt.frac_width + wf.frac_width
        bf = FixedFormat(rng.randint(2, 30), pf - rng.randint(0, 30), rng.random() < 0.7)
        codes = lambda f, n: [rng.choice([f.min_code, f.max_code, rng.randint(f.min_code,  # noqa: E731
                              f.max_code)]) for _ in range(n)]  # fmt: skip
        w = [codes(wf, a) for _ in range(b)]
        last = i == len(sizes) - 2
        out = _fmt(rng, 64 if last else 32, signed=None if last else True)
        acc = min_accumulator_format(fmt, wf, bf, a)
        mode = dict(rounding=rng.choice(["floor", "nearest"]),
                    overflow=rng.choice(["saturate", "wrap"]))  # fmt: skip
        layers.append(LinearSpec(f"fc{i}", w, codes(bf, b), fmt, wf, bf, acc, out, **mode))
        fmt = out
        if not last:
            kind = rng.choice(["relu", "shift", "mult", "requant"])
            if kind == "relu":
                layers.append(ReLUSpec(fmt))
            elif kind == "shift":
                n = rng.randint(0, fmt.width)
                layers.append(LeakyReLUSpec("shift", fmt, _fmt(rng, 32, True), shift=n, **mode))
            elif kind == "mult":
                sf = _fmt(rng, 32, True)
                code = rng.choice([sf.min_code, sf.max_code, rng.randint(sf.min_code, sf.max_code)])
                out2 = _fmt(rng, 32, True)
                layers.append(
                    LeakyReLUSpec("mult", fmt, out2, slope_fmt=sf, slope_code=code, **mode)
                )
            else:
                layers.append(RequantiseSpec(fmt, _fmt(rng, 32, True), **mode))
            fmt = layers[-1].out_fmt
    return QuantisedNetwork(in_fmt, layers, sizes[-1], f"extreme{seed}")


def _inputs(net: QuantisedNetwork, seed: int, n: int = 12) -> list[list[int]]:
    f = net.input_fmt
    rng = random.Random(seed)
    x = [[rng.randint(f.min_code, f.max_code) for _ in range(net.in_features)] for _ in range(n)]
    x += [[f.min_code] * net.in_features, [f.max_code] * net.in_features]
    x += [[rng.choice([f.min_code, f.max_code]) for _ in range(net.in_features)]]
    return x


def _as_list(a) -> list[list[int]]:
    return [[int(c) for c in row] for row in a]


def _check_both_paths(net: QuantisedNetwork, x: list[list[int]]) -> None:
    want = [fraction_forward(net, row, trace=True) for row in x]
    paths = [object] + ([np.int64] if int64_is_exact(net) else [])
    for dtype in paths:
        trace = integer_forward(net, np.array(x, dtype=object), trace=True, dtype=dtype)
        assert len(trace) == len(net.layers)
        for k, layer_out in enumerate(trace):  # every layer's values, not just the count
            assert layer_out.dtype == np.dtype(dtype)
            assert _as_list(layer_out) == [w[k] for w in want], (net.name, dtype, k)
        if dtype is object:
            assert all(type(c) is int for c in trace[-1].flat)
    auto = integer_forward(net, x)
    assert auto.dtype == (np.int64 if int64_is_exact(net) else object)
    assert _as_list(auto) == [w[-1] for w in want]


@pytest.mark.parametrize("seed", range(60))
def test_extreme_networks_both_paths_match_the_fraction_model(seed):
    net = extreme_network(seed)
    _check_both_paths(net, _inputs(net, seed))


def test_both_paths_are_exercised():
    exact = [int64_is_exact(extreme_network(s)) for s in range(60)]
    assert 10 <= sum(exact) <= 50, sum(exact)  # both kinds of network occur above


@pytest.mark.parametrize("seed", range(20))
def test_random_networks_both_paths(seed):
    for wide in (False, True):
        net = random_network(seed, wide)
        _check_both_paths(net, _inputs(net, seed))


def test_bound_covers_every_accumulator():
    """intermediate_bound is a bound: the largest |acc| on extreme inputs stays within it."""
    for seed in range(60):
        net = extreme_network(seed)
        bound = intermediate_bound(net)
        x = np.array(_inputs(net, seed), dtype=object)
        trace = integer_forward(net, x, trace=True, dtype=object)
        for layer, inp in zip(net.layers, [x, *trace[:-1]], strict=True):
            assert np.abs(inp).max() <= bound
            if isinstance(layer, LinearSpec):
                acc = inp @ np.array(layer.weight, dtype=object).T
                acc = acc + np.array([b << layer.bias_shift for b in layer.bias], dtype=object)
                assert np.abs(acc).max() <= bound, net.name


def _linear_net(in_fmt, w_fmt, out_fmt, weight, rounding="floor", bias_fmt=None):
    bf = bias_fmt or FixedFormat(2, in_fmt.frac_width + w_fmt.frac_width)
    n = len(weight[0])
    acc = min_accumulator_format(in_fmt, w_fmt, bf, n)
    lin = LinearSpec("fc", weight, [0] * len(weight), in_fmt, w_fmt, bf, acc, out_fmt, rounding)
    return QuantisedNetwork(in_fmt, [lin], len(weight))


def test_left_shift_regression():
    """s8.-16 x s8.-16 accumulates at frac -32; s8.32 output is a left shift by 64."""
    net = _linear_net(FixedFormat(8, -16), FixedFormat(8, -16), FixedFormat(8, 32), [[1]])
    for dtype in (None, object, np.int64):
        got = integer_forward(net, [[1], [-1], [0]], dtype=dtype)
        assert _as_list(got) == [[127], [-128], [0]]
    assert fraction_forward(net, [1]) == [127]


def test_nearest_right_shift_beyond_64_on_int64():
    net = _linear_net(FixedFormat(8, 40), FixedFormat(8, 40), FixedFormat(8, 0), [[127]],
                      "nearest")  # fmt: skip
    assert int64_is_exact(net)
    x = [[127], [-128], [0]]
    assert _as_list(integer_forward(net, x, dtype=np.int64)) == [[0], [0], [0]]
    assert _as_list(integer_forward(net, x)) == [fraction_forward(net, r) for r in x]


def test_wide_products_force_the_object_path():
    big = FixedFormat(40, 0)
    net = _linear_net(big, big, FixedFormat(64, 0), [[big.max_code, big.min_code]])
    assert intermediate_bound(net) > INT64_MAX and not int64_is_exact(net)
    x = [[big.max_code, big.min_code], [big.min_code, big.max_code]]
    got = integer_forward(net, x)
    assert got.dtype == object
    assert _as_list(got) == [fraction_forward(net, r) for r in x] == [[2**63 - 1], [-(2**63)]]
    with pytest.raises(ValueError, match="dtype int64 cannot hold this network"):
        integer_forward(net, x, dtype=np.int64)
    # an unsigned 64-bit output cannot live in int64 either
    u64 = _linear_net(FixedFormat(4, 0), FixedFormat(4, 0), FixedFormat(64, 0, False), [[1]])
    assert not int64_is_exact(u64)
    assert _as_list(integer_forward(u64, [[7]])) == [[49 // 7]]


def test_forward_input_validation():
    net = random_network(1)
    with pytest.raises(ValueError, match="dtype must be None, numpy.int64 or object"):
        integer_forward(net, np.zeros((1, net.in_features), dtype=np.int64), dtype=np.float64)
    with pytest.raises(ValueError, match="x must hold integer codes"):
        integer_forward(net, np.zeros((1, net.in_features)))
    with pytest.raises(ValueError, match="x must hold integer codes"):
        integer_forward(net, np.array([[0.5] * net.in_features], dtype=object))
    x = np.zeros((3, net.in_features), dtype=np.int64)
    assert predict(net, x).tolist() == np.argmax(integer_forward(net, x), axis=1).tolist()


def test_int64_limit_is_inclusive_and_messages_are_exact():
    u63 = _linear_net(FixedFormat(4, 0), FixedFormat(4, 0), FixedFormat(63, 0, False), [[1]])
    assert intermediate_bound(u63) == INT64_MAX and int64_is_exact(u63)
    assert integer_forward(u63, [[-8], [7]]).dtype == np.int64
    net = random_network(1)
    with pytest.raises(ValueError, match=r"^x must hold integer codes, got a non-integer object$"):
        integer_forward(net, np.array([[0.5] * net.in_features], dtype=object))
    with pytest.raises(ValueError, match=r"^x must hold integer codes, got dtype float64$"):
        integer_forward(net, np.zeros((1, net.in_features)))
