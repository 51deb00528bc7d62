"""Amaranth emitter for adder graphs (:mod:`hdl.arith.adder_graph`).

:class:`Emitter` writes graph nodes as Amaranth values, optionally with pipeline
registers between adder levels; :func:`const_mul` is a constant multiplier built
from a graph.  The graph names are re-exported here for existing importers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from amaranth.hdl import Cat, Const, Module, Shape, Signal, Value

from .adder_graph import Graph, Node, Range, Term, needed_bits, width_for

__all__ = [
    "KEEP",
    "Emitter",
    "Graph",
    "Node",
    "Range",
    "Term",
    "const_mul",
    "low_bits",
    "needed_bits",
    "shape_for",
]

# Yosys' alumacc merges chained adders into one $macc, which maps to LUT compressor
# trees instead of carry chains; a kept wire between two adders stops the merge.
KEEP = {"keep": 1}


def shape_for(lo: int, hi: int) -> Shape:
    """The narrowest shape holding every integer in ``[lo, hi]`` (at least one bit)."""
    return Shape(*width_for(lo, hi))


def low_bits(v: Value, n: int) -> Value:
    """The low ``n`` bits of ``v``'s two's complement (sign- or zero-extended as needed)."""
    w = v.shape().width
    if n <= w:
        return v[:n]
    pad = v[-1] if v.shape().signed else Const(0, 1)
    return Cat(v, pad.replicate(n - w))


class Emitter:
    """Writes graph nodes into ``m``; ``stage_of`` places pipeline registers.

    ``needs`` (from :func:`needed_bits`) truncates nodes whose high bits nobody uses.
    ``keep`` marks every adder output ``keep``, so that Yosys maps each adder to its own
    carry chain instead of merging chains of them into one ``$macc`` (LUT compressors);
    ``free`` nodes (outputs, read by no adder) stay unmarked, so logic can absorb them.

    A node is computed in stage ``stage_of(node)`` (by default 0: combinational); asking
    for it in a later stage inserts (and shares) registers in the ``sync`` domain.
    """

    def __init__(
        self,
        m: Module,
        inputs: Sequence[Value],
        stage_of: Callable[[Node], int] = lambda node: 0,
        name: str = "n",
        needs: dict[int, int] | None = None,
        keep: bool = True,
        free: Iterable[Node] = (),
    ):
        self.m, self.inputs, self.stage_of, self.name = m, inputs, stage_of, name
        self.needs, self.keep = needs or {}, keep
        self.free = {n.ident for n in free}
        self._memo: dict[tuple[int, int], Value] = {}

    def value(self, node: Node, stage: int | None = None) -> Value:
        if node.op == "const":
            return Const(node.const, shape_for(node.const, node.const))
        own = self.stage_of(node)
        stage = own if stage is None else stage
        if stage < own:
            raise ValueError(f"stage must be >= {own} for node {node.ident} (its own stage)")
        key = (node.ident, stage)
        if key not in self._memo:
            if stage > own:
                prev = self.value(node, stage - 1)
                self._memo[key] = self.register(prev, f"{self.name}{node.ident}_p{stage}")
            else:
                self._memo[key] = self._compute(node, stage)
        return self._memo[key]

    def register(self, v: Value, name: str) -> Signal:
        r = Signal(v.shape(), name=name)
        self.m.d.sync += r.eq(v)
        return r

    def delay(self, v: Value, n: int, name: str) -> Value:
        for k in range(n):
            v = self.register(v, f"{name}_d{k}")
        return v

    def _compute(self, node: Node, stage: int) -> Value:
        if node.op == "in":
            return self.inputs[node.args[0]]
        # a node made by concatenation has its adder (if any) in its kept high part
        concat = node.op == "add" and node.args[2] > 0
        attrs = KEEP if self.keep and not concat and node.ident not in self.free else {}
        shape = self._shape(node.ident, node.lo, node.hi)
        out = Signal(shape, name=f"{self.name}{node.ident}", attrs=attrs)
        if node.op == "mul":
            x, c = node.args
            expr = self.value(x, stage) * Const(c, shape_for(c, c))
        elif node.op == "neg":
            expr = -self.value(node.args[0], stage)
        elif node.op == "inv":
            expr = ~self.value(node.args[0], stage)
        else:
            expr = self._add(node, stage)
        self.m.d.comb += out.eq(expr)
        return out

    def _shape(self, ident: int, lo: int, hi: int, drop: int = 0) -> Shape:
        """The exact shape of ``[lo, hi]``, cut to the node's needed bits (less ``drop``)."""
        shape = shape_for(lo, hi)
        n = self.needs.get(ident)
        if n is not None and n - drop < shape.width:
            return Shape(n - drop, shape.signed)
        return shape

    def _add(self, node: Node, stage: int) -> Value:
        a, b, d, sub = node.args
        va, vb = self.value(a, stage), self.value(b, stage)
        if d == 0:
            return va - vb if sub else va + vb
        # a + b*2^d = (a mod 2^d) + 2^d * (floor(a / 2^d) + b): the chain starts at bit d
        if a.lo >= 0 and a.hi < (1 << d) and not sub:
            cat = Cat(low_bits(va, d), vb)  # no overlap: plain concatenation
            return cat.as_signed() if vb.shape().signed else cat
        n = self.needs.get(node.ident)
        if n is not None and n <= d:  # only a's low bits are needed
            return low_bits(va, d)
        # high = floor(node / 2^d) exactly, so its range follows from the node's exact one
        shape = self._shape(node.ident, node.lo >> d, node.hi >> d, drop=d)
        keep = self.keep and node.ident not in self.free
        high = Signal(shape, name=f"{self.name}{node.ident}_hi", attrs=KEEP if keep else {})
        ha = va.shift_right(d)
        self.m.d.comb += high.eq(ha - vb if sub else ha + vb)
        cat = Cat(low_bits(va, d), high)
        return cat.as_signed() if high.shape().signed else cat


def const_mul(m: Module, x: Value, c: int, name: str = "cm") -> Value:
    """``x * c`` for a constant ``c`` as canonical-signed-digit shift-adds (no multiplier).

    The result is exact and as wide as its value range needs.
    """
    shape = x.shape()
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    g = Graph([(lo, lo + (1 << shape.width) - 1)])
    t = g.const_mul(g.input(0), c)
    node = g.term_node(t)
    # unkept: with only a few adders Yosys maps them as well or better (fewer iCE40 LUTs)
    v = Emitter(m, [x], name=name, keep=False).value(node)
    return v.shift_left(t.shift) if t.shift else v
