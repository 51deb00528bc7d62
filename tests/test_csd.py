"""Canonical signed digits and the constant multiplier built from them."""

import itertools
import random
import subprocess
import sys

import pytest
from amaranth.hdl import Fragment, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

import hdl.arith.adder_graph
from hdl.arith.adder_tree import Graph, Term, const_mul
from hdl.arith.csd import csd, csd_value, fewest_negative
from hdl.arith.cse import share_pairs


def _min_signed_digits(c: int, width: int) -> int:
    """Fewest non-zero digits in {-1, 0, 1} over ``width + 1`` positions (brute force)."""
    best = width + 1
    for digits in itertools.product((-1, 0, 1), repeat=width + 1):
        if sum(d << k for k, d in enumerate(digits)) == c:
            best = min(best, sum(d != 0 for d in digits))
    return best


def test_value_and_non_adjacency():
    for c in range(-(1 << 12), 1 << 12):
        digits = csd(c)
        assert csd_value(digits) == c
        shifts = [s for s, _ in digits]
        assert shifts == sorted(shifts)
        assert all(b - a >= 2 for a, b in itertools.pairwise(shifts)), c
        assert all(sign in (1, -1) for _, sign in digits)
    assert csd(0) == []
    assert csd(7) == [(0, -1), (3, 1)]
    assert csd(-77 * 256) == [(8, -1), (10, 1), (12, -1), (14, -1)]


def test_digit_count_is_minimal():
    for c in range(-32, 32):
        assert len(csd(c)) == _min_signed_digits(c, 6), c


def test_rejects_non_integers():
    for bad in (1.0, True, "3"):
        for f in (csd, fewest_negative):
            with pytest.raises(ValueError, match="c must be an int"):
                f(bad)


def _min_negatives(c: int, width: int, weight: int) -> int:
    """Fewest -1 digits among ``weight``-digit forms over ``width + 1`` positions (brute force)."""
    best = width + 1
    for digits in itertools.product((-1, 0, 1), repeat=width + 1):
        if sum(d != 0 for d in digits) == weight and sum(d << k for k, d in enumerate(digits)) == c:
            best = min(best, sum(d < 0 for d in digits))
    return best


def test_fewest_negative_keeps_the_weight():
    for c in range(-(1 << 12), 1 << 12):
        digits = fewest_negative(c)
        assert csd_value(digits) == c
        assert len(digits) == len(csd(c)), c
        assert sum(s < 0 for _, s in digits) <= sum(s < 0 for _, s in csd(c)), c
    assert fewest_negative(77) == [(0, 1), (2, 1), (3, 1), (6, 1)]
    assert fewest_negative(7) == [(0, -1), (3, 1)]  # 4 + 2 + 1 would take an adder more


def test_fewest_negative_is_minimal():
    for c in range(-32, 32):
        digits = fewest_negative(c)
        assert sum(s < 0 for _, s in digits) == _min_negatives(c, 6, len(digits)), c


def const_mul_errors(shape, constants):
    """(c, x, got) for every input code and constant where ``const_mul`` is wrong."""
    m = Module()
    x = Signal(shape)
    outs = []
    for k, c in enumerate(constants):
        v = const_mul(m, x, c, name=f"c{k}")
        o = Signal(signed(v.shape().width + 1))
        m.d.comb += o.eq(v)
        outs.append(o)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    bad = []

    async def tb(ctx):
        for xv in range(lo, lo + (1 << shape.width)):
            ctx.set(x, xv)
            for c, o in zip(constants, outs, strict=True):
                if ctx.get(o) != c * xv:
                    bad.append((c, xv, ctx.get(o)))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    return bad


CONSTANTS = [0, 1, -1, 2, 3, -3, 5, 7, -7, 11, 45, -64, 77, 85, -85, 127, -128, 255, 19712, -4097]


@pytest.mark.parametrize("shape", [signed(8), unsigned(8), signed(1), unsigned(1)], ids=str)
def test_const_mul_every_input(shape):
    assert const_mul_errors(shape, CONSTANTS) == []


def test_const_mul_is_as_wide_as_its_range():
    m = Module()
    assert const_mul(m, Signal(signed(8)), 77).shape() == signed(15)  # [-9856, 9779]
    assert const_mul(m, Signal(unsigned(8)), -3).shape() == signed(11)  # [-765, 0]
    assert const_mul(m, Signal(unsigned(8)), 64).shape() == unsigned(14)  # a plain shift
    Fragment.get(m, None)  # elaborated: not an unused module


def test_check_detects_wrong_digit(monkeypatch):
    real = hdl.arith.adder_graph.fewest_negative
    monkeypatch.setattr(
        hdl.arith.adder_graph,
        "fewest_negative",
        lambda c: [(s, -d) for s, d in real(c)[:1]] + real(c)[1:],
    )
    assert const_mul_errors(signed(6), [3, 77]) != []


# --- sharing digit pairs across a matrix (hdl.arith.cse) ------------------------------


def _value_forms(g, rows):
    """Each row's exact linear form ``{input: coefficient}`` (constants are zero here)."""
    forms = []
    for row in rows:
        form = {}
        for t in row:
            for j, c in t.node.form.items():
                form[j] = form.get(j, 0) + (-c if t.neg else c) * (1 << t.shift)
        forms.append({j: c for j, c in form.items() if c})
    return forms


def test_share_pairs_keeps_every_row_and_saves_adders():
    rng = random.Random(5)
    matrix = [[rng.randint(-128, 127) for _ in range(12)] for _ in range(6)]
    matrix.append(list(matrix[0]))  # a repeated row shares everything
    g = Graph([(-128, 127)] * 12)
    rows = [[t for j, w in enumerate(r) for t in g.const_mul_terms(g.input(j), w)] for r in matrix]
    shared = share_pairs(g, rows)
    want = [{j: w for j, w in enumerate(r) if w} for r in matrix]
    assert _value_forms(g, rows) == want
    assert _value_forms(g, shared) == want

    def terms(row):
        return sorted((t.shift, t.node.ident, t.neg) for t in row)

    assert terms(shared[-1]) == terms(shared[0])  # the repeated row reuses the same adders
    adders_before = sum(len(r) - 1 for r in rows)
    adders_after = sum(len(r) - 1 for r in shared) + sum(n.op == "add" for n in g.nodes)
    assert adders_after < 0.8 * adders_before


@pytest.mark.parametrize("group", [True, False])
def test_sum_subtracts_once_when_signs_are_grouped(group):
    """iCE40 carry cells pay a LUT per subtracted bit: a row of mixed signs gets exactly one
    subtraction (positives and negatives summed apart), and the value stays exact."""
    g = Graph([(0, 15)] * 6)
    signs = [False, True, False, True, True, False]
    terms = [Term(g.input(j), j % 3, neg) for j, neg in enumerate(signs)]
    root = g.sum_terms(terms, group_signs=group)
    subs = [n for n in g.nodes if n.op == "add" and n.args[3]]
    want = {j: (-1 if neg else 1) << (j % 3) for j, neg in enumerate(signs)}
    node = root.node
    got = {j: (-1 if root.neg else 1) * c << root.shift for j, c in node.form.items()}
    assert got == want
    if group:
        assert len(subs) == 1
    else:  # the magnitude-only Huffman tree subtracts wherever signs meet
        assert len(subs) > 1


def test_adder_graph_imports_no_amaranth():
    """The graph alone (area/delay estimates) must load without Amaranth."""
    code = "import sys, hdl.arith.adder_graph; print([m for m in sys.modules if 'amaranth' in m])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
