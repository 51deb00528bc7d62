"""A Linear layer's adder graph, as the generator builds it (pure Python, no Amaranth).

:mod:`hdl.layers.linear` emits it; :mod:`hdl.hwmodel` predicts area and delay from it.
"""

from __future__ import annotations

from qspec.fixed import Rounding
from qspec.network import LinearSpec

from .adder_graph import Graph, Term
from .cse import share_pairs


def folded_constant(spec: LinearSpec, k: int) -> int:
    """Bias of neuron ``k`` in accumulator units plus the ``nearest`` rounding offset."""
    c = spec.bias[k] << spec.bias_shift
    shift = spec.acc_fmt.frac_width - spec.out_fmt.frac_width
    if spec.rounding == Rounding.NEAREST and shift > 0:
        c += 1 << (shift - 1)
    return c


def build_graph(spec: LinearSpec, impl: str, *, share: bool = True) -> tuple[Graph, list[Term]]:
    """The adder graph of a layer and one root term per neuron (the accumulator + offset).

    ``share``: common digit pairs become shared adders (adder trees only).
    ``adder_tree_nosub``: a negative digit ``-x << s`` becomes ``~x << s`` plus a
    constant, so no adder subtracts (iCE40 carry cells cannot invert what they subtract:
    each subtracted bit costs a LUT, while ``~x`` costs a LUT per bit once per layer).
    """
    f = spec.in_fmt
    g = Graph([(f.min_code, f.max_code)] * spec.in_features)
    rows: list[list[Term]] = []
    for row in spec.weight:
        terms: list[Term] = []
        for j, w in enumerate(row):
            if w == 0:
                continue
            x = g.input(j)
            if impl == "mul":
                terms.append(Term(g.mul(x, w), 0, False))
            else:
                terms += g.const_mul_terms(x, w)
        rows.append(terms)
    consts = [folded_constant(spec, k) for k in range(len(rows))]
    if impl == "adder_tree_nosub":
        for k, terms in enumerate(rows):
            for i, t in enumerate(terms):
                if t.neg and t.node.op == "in":
                    inv = g.inv(t.node.args[0])
                    terms[i] = Term(inv, t.shift, False)
                    consts[k] -= inv.const << t.shift  # -x = ~x - K
    if impl != "mul" and share:
        rows = share_pairs(g, rows)
    return g, [g.sum_terms(r, consts[k], group_signs=True) for k, r in enumerate(rows)]


def cut_levels(depth: int, stages: int) -> list[int]:
    """Register positions for ``stages`` cuts of a ``depth``-level datapath, evenly spaced.

    A cut at level ``c`` registers what levels ``<= c`` computed; the last
    cut is at ``depth`` (the output).
    """
    return [round(i * depth / stages) for i in range(1, stages + 1)]


def level_placement(depth: int, stages: int):
    """``stages`` evenly spaced level cuts of a group whose adders reach level ``depth``:
    ``(stage_of(node), tail stage)`` (the tail -- shift, saturation, activations -- counts
    as one level after the deepest adder)."""
    tail_level = depth + 1
    cuts = cut_levels(tail_level, stages) if stages else []

    def of_level(level: int) -> int:
        return sum(c < level for c in cuts)

    return (lambda node: of_level(node.level)), of_level(tail_level)
