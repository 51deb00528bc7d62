"""Adder graphs: constant multiplications and multi-operand sums as two-input adders.

Pure Python (no Amaranth), so area and delay can be estimated from the graph alone;
:mod:`hdl.arith.adder_tree` writes it as Amaranth.  Every :class:`Node` knows its
value as an exact linear form over the inputs (``const + sum(coef[j] * x[j])``), so
its integer range -- and hence the width of the adder that makes it -- is exact even
when an input reaches it along several paths (``8x - x`` is ``[7 lo, 7 hi]``, not
``[8 lo - hi, 8 hi - lo]``).

A :class:`Term` is ``(-1)**neg * node * 2**shift``.  Adding two terms with
shifts ``s <= t`` computes ``a + b * 2**(t - s)``: the low ``t - s`` bits of
``a`` pass straight through and the carry chain only spans the bits above, so
terms are paired by magnitude (Huffman) to keep every chain short.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .csd import csd, fewest_negative

Range = tuple[int, int]


@dataclass(eq=False)
class Node:
    """One value of the graph; ``op`` is ``in``, ``const``, ``mul``, ``add`` or ``neg``.

    ``args``: ``in`` (index,); ``const`` (value,); ``mul`` (x, c): ``x * c``;
    ``add`` (a, b, d, sub): ``a + (-1)**sub * (b << d)``; ``neg`` (a,): ``-a``.
    """

    op: str
    args: tuple
    form: dict[int, int]
    const: int
    lo: int
    hi: int
    level: int  # adder/multiplier depth from the inputs
    ident: int = field(default=0)


class Term(NamedTuple):
    node: Node
    shift: int
    neg: bool

    @property
    def msb(self) -> int:
        """Bit length of the largest magnitude the term takes."""
        return max(abs(self.node.lo), abs(self.node.hi)).bit_length() + self.shift


def width_for(lo: int, hi: int) -> tuple[int, bool]:
    """``(width, signed)`` of the narrowest two's-complement field holding every integer
    in ``[lo, hi]`` (at least one bit)."""
    if lo < 0:
        return 1 + max((-lo - 1).bit_length(), hi.bit_length()), True
    return max(1, hi.bit_length()), False


class Graph:
    """An adder graph over inputs with known ranges ``ranges[j] = (lo, hi)``."""

    def __init__(self, ranges: Sequence[Range]):
        self.ranges = list(ranges)
        self.nodes: list[Node] = []
        self._inputs: dict[int, Node] = {}
        self._consts: dict[int, Node] = {}
        self._inverted: dict[int, Node] = {}

    def _node(self, op: str, args: tuple, form: dict[int, int], const: int, level: int) -> Node:
        form = {j: c for j, c in form.items() if c}
        lo = hi = const
        for j, c in form.items():
            a, b = c * self.ranges[j][0], c * self.ranges[j][1]
            lo, hi = lo + min(a, b), hi + max(a, b)
        node = Node(op, args, form, const, lo, hi, level, len(self.nodes))
        self.nodes.append(node)
        return node

    def input(self, j: int) -> Node:
        if j not in self._inputs:
            self._inputs[j] = self._node("in", (j,), {j: 1}, 0, 0)
        return self._inputs[j]

    def const(self, c: int) -> Node:
        if c not in self._consts:
            self._consts[c] = self._node("const", (c,), {}, c, 0)
        return self._consts[c]

    def mul(self, x: Node, c: int) -> Node:
        form = {j: c * k for j, k in x.form.items()}
        return self._node("mul", (x, c), form, c * x.const, x.level + 1)

    def add(self, a: Node, b: Node, d: int, sub: bool) -> Node:
        k = -(1 << d) if sub else 1 << d
        form = dict(a.form)
        for j, c in b.form.items():
            form[j] = form.get(j, 0) + k * c
        return self._node("add", (a, b, d, sub), form, a.const + k * b.const, _level(a, b))

    def neg(self, a: Node) -> Node:
        form = {j: -c for j, c in a.form.items()}
        return self._node("neg", (a,), form, -a.const, a.level + 1)

    def inv(self, j: int) -> Node:
        """``~x[j]``, the bitwise complement of input ``j`` in its own width: ``-x - 1``
        when the input's range is signed, ``2**w - 1 - x`` when unsigned (the range must
        fill the width, as a format's codes do)."""
        if j not in self._inverted:
            lo, hi = self.ranges[j]
            width, is_signed = width_for(lo, hi)
            k = -1 if is_signed else (1 << width) - 1
            self._inverted[j] = self._node("inv", (self.input(j),), {j: -1}, k, 0)
        return self._inverted[j]

    # -- terms ---------------------------------------------------------------

    def const_term(self, c: int) -> Term | None:
        """``c`` as an odd constant node times a power of two (None for zero)."""
        if c == 0:
            return None
        tz = (c & -c).bit_length() - 1
        return Term(self.const(c >> tz), tz, False)

    def combine(self, t1: Term, t2: Term) -> Term:
        """One adder computing ``t1 + t2``; the term with the smaller shift is the base."""
        if (t2.shift, t1.neg) < (t1.shift, t2.neg):  # lower shift first; prefer a positive base
            t1, t2 = t2, t1
        node = self.add(t1.node, t2.node, t2.shift - t1.shift, t1.neg != t2.neg)
        return Term(node, t1.shift, t1.neg)

    def sum_terms(self, terms: Iterable[Term], const: int = 0, group_signs: bool = False) -> Term:
        """All ``terms`` plus ``const`` as one term, by Huffman trees on magnitudes.

        Pairing the two smallest terms first keeps the adders narrow and puts
        the widest operands near the root, where the tree is shallow.  With
        ``group_signs`` the positive and the negative terms are summed apart and
        subtracted once at the root: an iCE40 carry cell cannot invert the operand
        it subtracts, so every subtraction costs a LUT per bit there (a Linear row:
        3-7 % fewer iCE40 LUTs, 0.5-2 % more on ECP5, whose CCU2C inverts for free;
        a lone constant multiplier of 3-4 digits is better off mixed).
        The constant comes last, where it also absorbs a negative root's sign
        (``c - node``: no negation adder).
        """
        terms = list(terms)
        if group_signs:
            groups = [[t for t in terms if not t.neg], [t for t in terms if t.neg]]
            roots = [self._huffman(ts) for ts in groups if ts]
            root = self._huffman(roots)
        else:
            root = self._huffman(terms)
        if root is None:
            return Term(self.const(const), 0, False)
        return self.add_const(root, const)

    def _huffman(self, terms: Sequence[Term]) -> Term | None:
        heap = [(t.msb, -t.shift, k, t) for k, t in enumerate(terms)]
        heapq.heapify(heap)
        k = len(heap)
        while len(heap) > 1:
            a = heapq.heappop(heap)[3]
            b = heapq.heappop(heap)[3]
            t = self.combine(a, b)
            heapq.heappush(heap, (t.msb, -t.shift, k, t))
            k += 1
        return heap[0][3] if heap else None

    def add_const(self, t: Term, c: int) -> Term:
        """``t + c``; a negative ``t`` becomes ``c - node``, so no negation is needed."""
        if c == 0:
            return t
        if not t.neg:
            ct = self.const_term(c)
            assert ct is not None
            return self.combine(t, ct)
        tz = (c & -c).bit_length() - 1
        base = min(tz, t.shift)
        return Term(self.add(self.const(c >> base), t.node, t.shift - base, True), base, False)

    def const_mul_terms(self, x: Node, c: int) -> list[Term]:
        """``x * c`` as signed shifts of ``x`` (canonical signed digits)."""
        return [Term(x, shift, sign < 0) for shift, sign in csd(c)]

    def term_node(self, t: Term) -> Node:
        """A node equal to ``(-1)**neg * node`` (the term without its shift)."""
        return self.neg(t.node) if t.neg else t.node

    def const_mul(self, x: Node, c: int) -> Term:
        """``x * c`` alone (the LeakyReLU slope): fewest digits, then fewest subtractions.

        Linear rows keep :func:`csd`'s digits: with these, jsc-toy's nine layers came out
        0.1-1.4 % larger in sum (ECP5 adder_tree, iCE40 adder_tree and _nosub).
        """
        return self.sum_terms([Term(x, s, sign < 0) for s, sign in fewest_negative(c)])


def needed_bits(g: Graph, demands: Iterable[tuple[Node, int | None]]) -> dict[int, int]:
    """Low bits each node must compute so that every demanded node is right in its low bits.

    ``demands``: (node, bits), ``None`` meaning all bits.  Addition modulo ``2**n``
    only needs its operands modulo ``2**n`` (``b << d`` modulo ``2**(n - d)``),
    so a wrapping output lets every adder below it drop its high bits.  Nodes
    absent from the result need all their bits (or are not needed at all).
    """
    need: dict[int, int | None] = {}

    def ask(node: Node, bits: int | None) -> None:
        if bits is not None and bits <= 0:
            return
        old = need.get(node.ident, 0)
        need[node.ident] = None if old is None or bits is None else max(old, bits)

    for node, bits in demands:
        ask(node, bits)
    for node in reversed(g.nodes):  # every node comes after its operands
        if node.ident not in need:
            continue
        n = need[node.ident]
        if node.op == "add":
            a, b, d, _ = node.args
            ask(a, n)
            ask(b, None if n is None else n - d)
        elif node.op in ("neg", "mul", "inv"):
            ask(node.args[0], n)
    return {i: n for i, n in need.items() if n is not None}


def _level(a: Node, b: Node) -> int:
    return 1 + max(a.level, b.level)
