"""LinearLayer (adder_tree and mul) in Amaranth's simulator vs ``qspec.integer_forward``.

Exact comparison, every input for tiny layers, seeded random vectors plus the
corners beyond; pipelined layers under a random ``en``.  The last tests break
the hardware on purpose (a wrong CSD digit, an adder one bit too narrow, a
missing rounding offset) and require the same checks to notice.
"""

import itertools
import random
import re

import numpy as np
import pytest
from amaranth.hdl import Const, Fragment, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

import hdl.arith.adder_graph
import hdl.arith.adder_tree
import hdl.arith.fixed
import hdl.arith.layer_graph
import hdl.layers.linear
from hdl.arith.layer_graph import cut_levels
from hdl.layers.linear import IMPLS, LinearLayer, linear_module_name
from qspec.fixed import FixedFormat, Overflow
from qspec.fixed import handle_overflow as sw_handle_overflow
from qspec.integer_forward import layer_forward
from qspec.leaky import LeakyReLUSpec
from qspec.network import LinearSpec, ReLUSpec, RequantiseSpec, min_accumulator_format

S8_4, S8_6 = FixedFormat(8, 4), FixedFormat(8, 6)
ROUND_OVF = [("floor", "saturate"), ("nearest", "saturate"), ("floor", "wrap"), ("nearest", "wrap")]


def linear(
    weight,
    bias=None,
    *,
    in_fmt=S8_4,
    weight_fmt=S8_6,
    bias_fmt=S8_4,
    out_fmt=S8_4,
    rounding="floor",
    overflow="saturate",
    name="fc",
):
    bias = [0] * len(weight) if bias is None else bias
    acc = min_accumulator_format(in_fmt, weight_fmt, bias_fmt, len(weight[0]))
    return LinearSpec(
        name, weight, bias, in_fmt, weight_fmt, bias_fmt, acc, out_fmt, rounding, overflow
    )


def random_linear(rng, n_in, n_out, *, wbits=8, density=0.8, **kw):
    wf = kw.pop("weight_fmt", FixedFormat(wbits, wbits - 2))
    bf = kw.get("bias_fmt", FixedFormat(8, 4))
    w = [
        [
            rng.randint(wf.min_code, wf.max_code) if rng.random() < density else 0
            for _ in range(n_in)
        ]
        for _ in range(n_out)
    ]
    b = [rng.randint(bf.min_code, bf.max_code) for _ in range(n_out)]
    return linear(w, b, weight_fmt=wf, **kw)


def reference(layers, xs):
    y = np.array(xs, dtype=object)
    for layer in layers:
        y = layer_forward(layer, y)
    return [[int(v) for v in row] for row in y]


def simulate(dut, xs):
    """Outputs of a combinational LinearLayer for each input vector."""
    out = []

    async def tb(ctx):
        for x in xs:
            ctx.set(dut.x, x)
            out.append([int(v) for v in ctx.get(dut.y)])

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return out


def vectors(fmt, n_in, n, seed=0):
    """Seeded random input vectors plus all-min, all-max, zero and alternating corners."""
    rng = random.Random(seed)
    lo, hi = fmt.min_code, fmt.max_code
    xs = [[lo] * n_in, [hi] * n_in, [0] * n_in, [lo, hi] * (n_in // 2) + [lo] * (n_in % 2)]
    xs += [[rng.randint(lo, hi) for _ in range(n_in)] for _ in range(n)]
    return xs


def mismatches(layers, xs, impl="adder_tree"):
    dut = LinearLayer(layers, impl=impl)
    got, want = simulate(dut, xs), reference(layers, xs)
    return [(x, g, w) for x, g, w in zip(xs, got, want, strict=True) if g != w]


def all_inputs(fmt, n_in):
    codes = range(fmt.min_code, fmt.max_code + 1)
    return [list(x) for x in itertools.product(codes, repeat=n_in)]


# --- random layers ------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("rounding, overflow", ROUND_OVF)
@pytest.mark.parametrize("signed_in", [True, False])
def test_random_layers(impl, rounding, overflow, signed_in):
    rng = random.Random(f"{impl}{rounding}{overflow}{signed_in}")
    for wbits, out_w in [(4, 6), (8, 12), (8, 5)]:  # 5-bit outputs saturate/wrap often
        in_fmt = FixedFormat(rng.choice([4, 8]), 3, signed_in)
        spec = random_linear(
            rng,
            6,
            4,
            wbits=wbits,
            in_fmt=in_fmt,
            out_fmt=FixedFormat(out_w, 2),
            rounding=rounding,
            overflow=overflow,
        )
        assert mismatches([spec], vectors(in_fmt, 6, 60, seed=wbits), impl) == []


@pytest.mark.parametrize("impl", IMPLS)
def test_jsc_like_16x8(impl):
    rng = random.Random(16)
    spec = random_linear(rng, 16, 8, wbits=8, out_fmt=FixedFormat(8, 3), rounding="nearest")
    assert mismatches([spec], vectors(spec.in_fmt, 16, 100), impl) == []


# --- extremes -----------------------------------------------------------------

WF = FixedFormat(4, 2)
EXTREME_MATRICES = {
    "all_min": [[WF.min_code] * 5] * 3,
    "all_max": [[WF.max_code] * 5] * 3,
    "zero_rows_cols": [[0, 3, 0, -5, 0], [0] * 5, [0, -8, 0, 7, 0]],
    "one_term_rows": [[0, 0, 1, 0, 0], [-8, 0, 0, 0, 0], [0, 0, 0, 0, 7]],
    "all_zero": [[0] * 5] * 3,
    "powers_of_two": [[1, 2, 4, -8, -1], [-2, -4, 1, 2, 4], [4, 4, 4, 4, 4]],
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("rounding, overflow", ROUND_OVF)
@pytest.mark.parametrize("matrix", EXTREME_MATRICES, ids=str)
def test_extreme_matrices(matrix, rounding, overflow, impl):
    in_fmt = FixedFormat(4, 1)
    for bias, out_fmt in [([0, 0, 0], FixedFormat(6, 2)), ([-8, 7, 3], FixedFormat(4, 1))]:
        spec = linear(
            EXTREME_MATRICES[matrix],
            bias,
            in_fmt=in_fmt,
            weight_fmt=WF,
            bias_fmt=FixedFormat(4, 2),
            out_fmt=out_fmt,
            rounding=rounding,
            overflow=overflow,
        )
        corners = [list(c) for c in itertools.product([-8, -1, 0, 1, 7], repeat=2)]
        xs = [c * 2 + c[:1] for c in corners] + vectors(in_fmt, 5, 20)
        assert mismatches([spec], xs, impl) == []


@pytest.mark.parametrize("rounding, overflow", ROUND_OVF)
@pytest.mark.parametrize("signed_in", [True, False])
def test_every_input_tiny(rounding, overflow, signed_in):
    """2 inputs x 4 bits: all 256 input vectors, weights covering the 4-bit range."""
    in_fmt = FixedFormat(4, 2, signed_in)
    weight = [[-8, 7], [5, -3], [0, 6], [-1, 0], [3, 3], [-7, -6]]
    for out_fmt in (FixedFormat(5, 1), FixedFormat(8, 4), FixedFormat(3, 0, False)):
        spec = linear(
            weight,
            [1, -2, 0, 7, -8, 3],
            in_fmt=in_fmt,
            weight_fmt=FixedFormat(4, 3),
            bias_fmt=FixedFormat(4, 1),
            out_fmt=out_fmt,
            rounding=rounding,
            overflow=overflow,
        )
        xs = all_inputs(in_fmt, 2)
        for impl in IMPLS:
            assert mismatches([spec], xs, impl) == []


# --- element-wise tails ---------------------------------------------------------


def tails(fmt):
    """Element-wise chains starting from ``fmt`` (signed)."""
    rq = FixedFormat(6, 2)
    return {
        "relu": [ReLUSpec(fmt)],
        "leaky_shift": [LeakyReLUSpec.shift_variant(fmt.width, fmt.frac_width, 2)],
        "leaky_mult": [LeakyReLUSpec.mult_variant(fmt.width, fmt.frac_width, 0.3)],
        "leaky_mult_neg_nearest": [
            LeakyReLUSpec.mult_variant(
                fmt.width, fmt.frac_width, -0.75, rounding="nearest", overflow="wrap"
            )
        ],
        "requantise": [RequantiseSpec(fmt, rq, "nearest", "saturate")],
        "requantise_wrap_relu": [RequantiseSpec(fmt, rq, "floor", "wrap"), ReLUSpec(rq)],
        "relu_requantise_unsigned": [
            ReLUSpec(fmt),
            RequantiseSpec(fmt, FixedFormat(4, 1, False), "nearest", "saturate"),
        ],
    }


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tail", tails(FixedFormat(8, 3)))
def test_tails(tail, impl):
    rng = random.Random(tail)
    out_fmt = FixedFormat(8, 3)
    spec = random_linear(rng, 5, 4, wbits=6, out_fmt=out_fmt, rounding="nearest")
    layers = [spec, *tails(out_fmt)[tail]]
    assert mismatches(layers, vectors(spec.in_fmt, 5, 80), impl) == []


# --- pipelining ---------------------------------------------------------------


def simulate_pipelined(dut, xs, seed=0):
    """(input, output) pairs: y after each enabled edge vs the input ``latency`` enabled edges ago.

    ``en`` is random; while it is low the outputs must not move.
    """
    rng = random.Random(seed)
    lat = dut.latency
    pairs, held = [], []

    async def tb(ctx):
        sampled = []
        prev = None
        for x in xs:
            while True:
                en = rng.random() < 0.6
                ctx.set(dut.x, x)
                ctx.set(dut.en, en)
                await ctx.tick()
                y = [int(v) for v in ctx.get(dut.y)]
                if not en:
                    held.append((prev, y))
                    continue
                sampled.append(x)
                if len(sampled) >= lat:  # a register shows what it loaded at this edge
                    pairs.append((sampled[-lat], y))
                prev = y
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return pairs, held


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "stages, overflow", [(1, "saturate"), (2, "wrap"), (3, "saturate"), (5, "wrap")]
)
def test_pipelined_with_random_enable(stages, overflow, impl):
    rng = random.Random(stages)
    spec = random_linear(
        rng, 6, 3, wbits=8, out_fmt=FixedFormat(7, 2), rounding="nearest", overflow=overflow
    )
    layers = [spec, ReLUSpec(spec.out_fmt)]
    dut = LinearLayer(layers, impl=impl, stages=stages)
    assert dut.latency == stages
    xs = vectors(spec.in_fmt, 6, 60, seed=stages)
    pairs, held = simulate_pipelined(dut, xs, seed=stages)
    assert len(pairs) == len(xs) - stages + 1
    want = reference(layers, [x for x, _ in pairs])
    assert [y for _, y in pairs] == want
    assert held and all(y == prev for prev, y in held if prev is not None)


def test_cut_levels_are_even_and_end_at_the_output():
    assert cut_levels(6, 1) == [6]
    assert cut_levels(6, 2) == [3, 6]
    assert cut_levels(6, 3) == [2, 4, 6]
    assert cut_levels(2, 4) == [0, 1, 2, 2]  # more stages than levels: extra registers


def test_pipeline_check_detects_wrong_latency():
    """Comparing against the reference one cycle early must fail."""
    rng = random.Random(7)
    spec = random_linear(rng, 4, 2)
    dut = LinearLayer([spec], stages=2)
    dut_latency = type(dut).latency
    try:
        type(dut).latency = property(lambda self: 1)
        pairs, _ = simulate_pipelined(dut, vectors(spec.in_fmt, 4, 30))
    finally:
        type(dut).latency = dut_latency
    assert [y for _, y in pairs] != reference([spec], [x for x, _ in pairs])


# --- module names and parameters ---------------------------------------------------


def test_module_name_is_content_derived():
    rng = random.Random(3)
    spec = random_linear(rng, 16, 8)
    dut = LinearLayer([spec], stages=1)
    Fragment.get(dut, None)  # elaborated: not an unused component
    name = dut.module_name()
    assert re.fullmatch(r"lin16x8_at_p1_[0-9a-f]{12}", name)
    assert name == linear_module_name([spec], "adder_tree", 1)
    renamed = LinearSpec.from_dict({**spec.to_dict(), "name": "other"})
    assert linear_module_name([renamed], "adder_tree", 1) == name
    w = [list(r) for r in spec.weight]
    w[3][5] = w[3][5] + 1 if w[3][5] < spec.weight_fmt.max_code else w[3][5] - 1
    changed = LinearSpec.from_dict({**spec.to_dict(), "weight": w})
    others = {
        linear_module_name([changed], "adder_tree", 1),
        linear_module_name([spec], "adder_tree", 2),
        linear_module_name([spec], "mul", 1),
        linear_module_name([spec, ReLUSpec(spec.out_fmt)], "adder_tree", 1),
        linear_module_name([linear(spec.weight, spec.bias, rounding="nearest")], "adder_tree", 1),
    }
    assert name not in others and len(others) == 5
    assert linear_module_name([spec], "mul", 0).startswith("lin16x8_mul_p0_")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"impl": "dsp"}, "impl must be one of adder_tree|adder_tree_nosub|mul"),
        ({"stages": -1}, "stages must be in"),
        ({"stages": 1.5}, "stages must be an integer"),
    ],
)
def test_bad_parameters(kwargs, match):
    spec = linear([[1, 2]])
    with pytest.raises(ValueError, match=match):
        LinearLayer([spec], **kwargs)


def test_bad_layers():
    spec = linear([[1, 2]])
    with pytest.raises(ValueError, match=r"layers\[0\] must be a LinearSpec"):
        LinearLayer([ReLUSpec(spec.out_fmt)])
    with pytest.raises(ValueError, match=r"layers\[1\] must be a ReLUSpec"):
        LinearLayer([spec, spec])
    with pytest.raises(ValueError, match=r"layers\[1\].in_fmt must be s8.4"):
        LinearLayer([spec, ReLUSpec(FixedFormat(6, 4))])


# --- the checks fail on broken hardware ---------------------------------------


def _layer_for_breaking():
    rng = random.Random(11)
    spec = random_linear(rng, 4, 3, out_fmt=FixedFormat(12, 8), rounding="nearest")
    return [spec], vectors(spec.in_fmt, 4, 40)


def test_detects_wrong_csd_digit(monkeypatch):
    layers, xs = _layer_for_breaking()
    real = hdl.arith.adder_graph.csd

    def wrong(c):
        digits = real(c)
        return [(s + 1, d) for s, d in digits[:1]] + digits[1:]  # first digit one place high

    monkeypatch.setattr(hdl.arith.adder_graph, "csd", wrong)
    assert mismatches(layers, xs) != []


def test_detects_adder_one_bit_too_narrow(monkeypatch):
    layers, xs = _layer_for_breaking()
    real = hdl.arith.adder_tree.shape_for

    def narrow(lo, hi):
        s = real(lo, hi)
        return type(s)(max(1, s.width - 1), s.signed)

    monkeypatch.setattr(hdl.arith.adder_tree, "shape_for", narrow)
    assert mismatches(layers, xs) != []


def test_detects_missing_rounding_offset(monkeypatch):
    layers, xs = _layer_for_breaking()
    monkeypatch.setattr(
        hdl.arith.layer_graph, "folded_constant", lambda spec, k: spec.bias[k] << spec.bias_shift
    )
    assert mismatches(layers, xs) != []
    assert mismatches(layers, xs, "mul") != []


# --- saturation from the high bits (hdl.arith.fixed.handle_overflow) ----------------


def saturation_errors():
    """Shapes where saturation is wrong for some value: every input shape up to 6 bits,
    every value, into formats of 1..5 bits."""
    fmts = [FixedFormat(w, 0, s) for w in range(1, 6) for s in (True, False)]
    shapes = [signed(w) for w in range(1, 7)] + [unsigned(w) for w in range(1, 7)]
    bad = []
    for shape in shapes:
        m = Module()
        v = Signal(shape)
        outs = []
        for fmt in fmts:
            o = Signal(signed(fmt.width) if fmt.signed else unsigned(fmt.width))
            m.d.comb += o.eq(hdl.arith.fixed.handle_overflow(v, fmt, Overflow.SATURATE))
            outs.append(o)
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        values = range(lo, lo + (1 << shape.width))
        got = []

        async def tb(ctx, v=v, outs=outs, values=values, got=got):
            for x in values:
                ctx.set(v, x)
                got.append([ctx.get(o) for o in outs])

        sim = Simulator(m)
        sim.add_testbench(tb)
        sim.run()
        if got != [[sw_handle_overflow(x, f, "saturate") for f in fmts] for x in values]:
            bad.append(shape)
    return bad


def test_saturation_every_shape_and_value():
    assert saturation_errors() == []


def test_saturation_check_detects_missing_lower_clip(monkeypatch):
    real = hdl.arith.fixed._out_of_range
    monkeypatch.setattr(
        hdl.arith.fixed, "_out_of_range", lambda v, fmt: (real(v, fmt)[0], Const(0, 1))
    )
    assert saturation_errors() != []


# --- random formats ----------------------------------------------------------------


def random_spec(rng):
    """Any formats: negative fractions, left shifts to the output, unsigned ends."""
    in_fmt = FixedFormat(rng.randint(2, 10), rng.randint(-2, 8), rng.random() < 0.7)
    wf = FixedFormat(rng.randint(2, 8), rng.randint(-2, 8))
    pf = in_fmt.frac_width + wf.frac_width
    bf = FixedFormat(rng.randint(2, 10), rng.randint(pf - 6, pf))
    out = FixedFormat(rng.randint(2, 12), rng.randint(pf - 10, pf + 3), rng.random() < 0.8)
    n_in, n_out = rng.randint(1, 6), rng.randint(1, 4)
    return random_linear(
        rng,
        n_in,
        n_out,
        weight_fmt=wf,
        in_fmt=in_fmt,
        bias_fmt=bf,
        out_fmt=out,
        density=rng.choice([0.3, 0.8, 1.0]),
        rounding=rng.choice(["floor", "nearest"]),
        overflow=rng.choice(["saturate", "wrap"]),
    )


@pytest.mark.parametrize("seed", range(30))
def test_random_formats(seed):
    rng = random.Random(seed)
    for _ in range(3):
        spec = random_spec(rng)
        xs = vectors(spec.in_fmt, spec.in_features, 30, seed=seed)
        for impl in IMPLS:
            assert mismatches([spec], xs, impl) == [], spec
