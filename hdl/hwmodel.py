"""A hardware model of a Linear layer group from the generator's own adder graph, per target.

Pure Python (no Amaranth, no tools): the graph :func:`hdl.layers.linear.build_graph` builds
is rebuilt here from the same pure parts (:func:`layer_graph`; a test checks they agree node
for node) and walked the way :class:`hdl.arith.adder_tree.Emitter` writes it.  Every kept
adder is one carry chain of exactly its emitted width (a concatenation or a ``needs``-trimmed
node has none); the tail (requantise, saturation, ReLU/LeakyReLU) is counted per output bit.
LUT4s besides the chains, and the delays, come from per-target coefficients fitted to Yosys
and nextpnr by ``bench/fit_hwmodel.py`` (:class:`AreaModel` in ``Target.area``,
:class:`hdl.timing.DelayModel` in ``Target.delay``).  FFs follow a ``stage_of(node)``
register placement (by default the Emitter's level cuts), so another pipeliner can plug in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from qspec import fixed as sw
from qspec.fixed import FixedFormat, Overflow
from qspec.leaky import LeakyReLUSpec
from qspec.network import (
    LayerSpec,
    LinearSpec,
    QuantisedNetwork,
    ReLUSpec,
    RequantiseSpec,
    group_layers,
)
from qspec.prune import remove_dead_units

from .area import AreaModel
from .arith.adder_graph import Graph, Node, Term, needed_bits, width_for
from .arith.layer_graph import build_graph, level_placement
from .params import LINEAR_IMPLS
from .targets import target as get_target

IMPLS = tuple(i for i in LINEAR_IMPLS if i != "mul")  # modelled: the adder trees


@dataclass(frozen=True)
class Prediction:
    """Predicted resources and timing; ``+`` puts two groups in series (a network)."""

    lut_eq: float
    lut4: float
    carries: int
    ffs: int
    depth: int  # logic levels on the longest path (cells, as Yosys ``ltp`` counts them)
    delay_ns: float  # critical register-to-register path
    fmax_mhz: float
    latency: int = 0  # cycles from input to output (a network's: as its top counts them)

    def __add__(self, other: Prediction) -> Prediction:
        delay = max(self.delay_ns, other.delay_ns)
        return Prediction(
            self.lut_eq + other.lut_eq,
            self.lut4 + other.lut4,
            self.carries + other.carries,
            self.ffs + other.ffs,
            max(self.depth, other.depth),
            delay,
            1000.0 / delay,
            self.latency + other.latency,
        )


# -- the graph, as hdl.layers.linear builds it ---------------------------------------------


def layer_graph(spec: LinearSpec, impl: str) -> tuple[Graph, list[Term]]:
    """The generator's graph and root terms (:func:`hdl.arith.layer_graph.build_graph`)."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {'|'.join(IMPLS)}, got {impl!r}")
    return build_graph(spec, impl)


# -- what the Emitter writes ---------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """One carry chain: the adder of ``node``, ``width`` bits from bit ``lsb`` of the node."""

    node: Node
    width: int
    lsb: int
    sub: bool
    half: int = 0  # bits where an operand is a constant or a zero extension
    root: bool = False  # a neuron's sum, read by no adder (its output is not kept)


@dataclass
class Emitted:
    """A layer group as the Emitter and the tail write it (target independent)."""

    graph: Graph
    roots: list[Term]
    nodes: list[Node]  # root nodes, one per neuron
    reached: list[Node]  # every non-constant node the roots read, operands first
    canon: dict[int, int]  # node ident -> the structurally equal node Yosys merges it into
    width: dict[int, int]  # emitted signal width per node ident
    chains: dict[int, Chain]
    tail_widths: list[int]  # width of each neuron's tail output (the last register's input)
    tail_sat: list[bool]  # whether each neuron's tail saturates (a longer path)
    feats: dict[str, int]  # tail and input features (see AreaModel)
    depth: int  # graph levels of the deepest root
    cache: dict = field(default_factory=dict)  # per-target results that do not depend on stages


def _signal_width(node: Node, needs: dict[int, int], drop: int = 0, lo=None, hi=None) -> int:
    lo, hi = (node.lo, node.hi) if lo is None else (lo, hi)
    w = width_for(lo, hi)[0]
    n = needs.get(node.ident)
    return n - drop if n is not None and n - drop < w else w


def emitted(layers: Sequence[LayerSpec], impl: str = "adder_tree") -> Emitted:
    """Walk the group's graph as the Emitter does; see the module docstring."""
    spec = layers[0]
    if not isinstance(spec, LinearSpec):
        raise ValueError("layers[0] must be a LinearSpec")
    g, roots = layer_graph(spec, impl)
    nodes = [g.term_node(t) for t in roots]
    out_w = spec.out_fmt.width

    def drop(shift: int) -> int:
        return spec.acc_fmt.frac_width - spec.out_fmt.frac_width - shift

    needs: dict[int, int] = {}
    if spec.overflow == Overflow.WRAP:
        demands = [(n, drop(t.shift) + out_w) for n, t in zip(nodes, roots, strict=True)]
        needs = needed_bits(g, demands)
    reached: dict[int, Node] = {}

    def visit(node: Node) -> None:
        stack = [node]
        while stack:
            n = stack[-1]
            if n.op == "const" or n.ident in reached:
                stack.pop()
                continue
            ops = [a for a in operands(n) if a.op != "const" and a.ident not in reached]
            if ops:
                stack.extend(ops)
            else:
                reached[n.ident] = n
                stack.pop()

    for n in nodes:
        visit(n)
    order = sorted(reached.values(), key=lambda n: n.ident)
    width: dict[int, int] = {}
    chains: dict[int, Chain] = {}
    feats = dict.fromkeys(("inv_bits", "sat_bits", "sat_in", "act_bits"), 0)
    canon: dict[int, int] = {}
    seen: dict[tuple, int] = {}
    for n in order:
        width[n.ident] = _signal_width(n, needs)
        # equal cells on equal inputs are one cell after Yosys' opt_merge
        key = (n.op, *(canon.get(a.ident, a.ident) for a in operands(n)), *n.args[2:],
               width[n.ident]) if n.op != "in" else (n.ident,)  # fmt: skip
        canon[n.ident] = seen.setdefault(key, n.ident)
        if canon[n.ident] != n.ident:
            continue
        if n.op == "inv":
            feats["inv_bits"] += width[n.ident]
        elif n.op == "neg":
            chains[n.ident] = Chain(n, width[n.ident], 0, True)
        elif n.op == "add":
            a, b, d, sub = n.args
            if d == 0:
                chains[n.ident] = Chain(n, width[n.ident], 0, sub)
            elif a.lo >= 0 and a.hi < (1 << d) and not sub:
                pass  # concatenation
            elif n.ident in needs and needs[n.ident] <= d:
                pass  # only a's low bits
            else:
                w = _signal_width(n, needs, d, n.lo >> d, n.hi >> d)
                chains[n.ident] = Chain(n, w, d, sub)
    # a root read by no adder is not kept: Yosys trims the bits its tail never reads
    read = {a.ident for n in g.nodes if n.op == "add" for a in n.args[:2]}
    free = {}
    for node, t in zip(nodes, roots, strict=True):
        if node.ident in read or node.ident not in chains:
            continue
        r = drop(t.shift)
        lo, hi = sw.shift_right(node.lo, r, "floor"), sw.shift_right(node.hi, r, "floor")
        fits = spec.out_fmt.contains(lo) and spec.out_fmt.contains(hi)
        free[node.ident] = r + out_w if fits or spec.overflow == Overflow.WRAP else None
    for k, c in chains.items():
        w = c.width
        if free.get(k) is not None:
            w = max(0, min(w, free[k] - c.lsb))
        chains[k] = replace(c, width=w, root=k in free)
        chains[k] = replace(chains[k], half=_half_bits(chains[k], width))
    tail_widths, tail_sat = [], []
    for node, root in zip(nodes, roots, strict=True):
        w = width[node.ident] if node.op != "const" else width_for(node.lo, node.lo)[0]
        tw, f = _tail(layers, node, root.shift, w, drop(root.shift))
        tail_widths.append(tw)
        tail_sat.append(f.get("sat_bits", 0) > 0)
        for k, v in f.items():
            feats[k] += v
    depth = max(n.level for n in nodes)
    return Emitted(
        g, roots, nodes, order, canon, width, chains, tail_widths, tail_sat, feats, depth
    )


def _half_bits(c: Chain, width: dict[int, int]) -> int:
    """Bits of chain ``c`` where an operand bit is constant (a constant, below an operand's
    LSB, or above an unsigned operand's MSB)."""
    n = c.node
    if n.op == "neg":
        return c.width
    a, b, d, _ = n.args
    half = 0
    for i in range(c.lsb, c.lsb + c.width):
        for op, pos in ((a, i), (b, i - d)):
            if op.op == "const" or pos < 0 or (pos >= width[op.ident] and op.lo >= 0):
                half += 1
                break
    return half


def operands(n: Node) -> list[Node]:
    """The nodes ``n`` reads (its constant operands included)."""
    if n.op == "add":
        return [n.args[0], n.args[1]]
    if n.op in ("neg", "inv", "mul"):
        return [n.args[0]]
    return []


def _overflow(width: int, signed: bool, bounds, fmt: FixedFormat, overflow) -> tuple[int, dict]:
    """Width after ``handle_overflow`` and its saturation features."""
    f = {"sat_bits": 0, "sat_in": 0}
    if overflow == Overflow.SATURATE and not (fmt.contains(bounds[0]) and fmt.contains(bounds[1])):
        top = fmt.width - 1 if fmt.signed else fmt.width
        stop = width - 1 if signed else width
        f["sat_bits"] = fmt.width
        f["sat_in"] = max(stop - top, 0) + int(signed)
        width = max(fmt.width + 1, width)
    return (width if width < fmt.width else fmt.width), f


def _clip(b, fmt: FixedFormat, overflow) -> tuple[int, int]:
    if fmt.contains(b[0]) and fmt.contains(b[1]):
        return b
    if overflow == Overflow.SATURATE:
        return sw.handle_overflow(b[0], fmt, overflow), sw.handle_overflow(b[1], fmt, overflow)
    return fmt.min_code, fmt.max_code


def _tail(layers, node: Node, shift: int, width: int, r: int) -> tuple[int, dict]:
    """Output width and LUT features of one neuron's tail (requantise + element-wise)."""
    spec = layers[0]
    signed = node.lo < 0
    # Value.shift_right: a signed value keeps its sign bit; left shifts widen
    width = max(width - r, 1 if signed else 0) if r > 0 else width - r
    b = (sw.shift_right(node.lo, r, "floor"), sw.shift_right(node.hi, r, "floor"))
    width, feats = _overflow(width, signed, b, spec.out_fmt, spec.overflow)
    b = _clip(b, spec.out_fmt, spec.overflow)
    signed = spec.out_fmt.signed
    feats["act_bits"] = 0
    for layer in layers[1:]:
        lo, hi = b
        if isinstance(layer, ReLUSpec):
            if lo >= 0:
                continue
            if hi <= 0:
                width, b = 1, (0, 0)
                continue
            feats["act_bits"] += width
            b = (0, hi)
        elif isinstance(layer, RequantiseSpec):
            s = layer.in_fmt.frac_width - layer.out_fmt.frac_width
            width = max(width - s, 1) if s > 0 else width - s
            nb = sw.shift_right(lo, s, layer.rounding), sw.shift_right(hi, s, layer.rounding)
            width, f = _overflow(width, lo < 0, nb, layer.out_fmt, layer.overflow)
            feats = {k: feats.get(k, 0) + f.get(k, 0) for k in feats | f}
            b = _clip(nb, layer.out_fmt, layer.overflow)
        elif isinstance(layer, LeakyReLUSpec):
            feats["act_bits"] += layer.out_fmt.width
            width = layer.out_fmt.width
            points = [lo, hi] + [p for p in (-1, 0) if lo <= p <= hi]
            ys = [layer.forward(p) for p in points]
            b = min(ys), max(ys)
        else:
            raise ValueError(f"unknown element-wise layer {type(layer).__name__}")
    return width, feats


# -- per-target counts ---------------------------------------------------------------------


def chain_bits(em: Emitted) -> int:
    """Carry-chain bits of the group (what the delay model's ``size`` term scales with)."""
    return sum(c.width for c in em.chains.values())


def features(em: Emitted) -> dict[str, int]:
    """The :class:`~hdl.area.AreaModel` features of an emitted group."""
    f = dict(em.feats)
    f["chain_bits"] = sum(c.width for c in em.chains.values())
    f["half_bits"] = sum(c.half for c in em.chains.values())
    f["sub_bits"] = sum(c.width for c in em.chains.values() if c.sub)
    return f


def area(em: Emitted, model: AreaModel) -> tuple[float, int]:
    """(LUT4s, carry cells) of a group on a target."""
    carries = sum(model.carries(c.width, c.root) for c in em.chains.values())
    return model.lut4(features(em)), carries


StageOf = Callable[[Node], int]


def level_stages(em: Emitted, stages: int) -> tuple[StageOf, int]:
    """The Emitter's placement: ``stage_of(node)`` and the tail's stage for ``stages`` cuts."""
    return level_placement(em.depth, stages)


def _stages(em: Emitted, stage_of: StageOf) -> dict[int, int]:
    return {n.ident: stage_of(n) for n in em.reached}


def live_ranges(em: Emitted, stage_of: StageOf, tail_stage: int) -> dict[int, tuple[int, int]]:
    """``{node ident: (own stage, last stage that reads it)}`` for every register-carried
    node (registers shared: equal nodes Yosys merges count once)."""
    st = _stages(em, stage_of)
    canon = em.canon
    last: dict[int, int] = {}
    for n in em.nodes:
        if n.op != "const":
            k = canon[n.ident]
            last[k] = max(last.get(k, -1), tail_stage)
    for n in reversed(em.reached):  # consumers come after their operands
        if n.ident in last and canon[n.ident] == n.ident:
            s = st[n.ident]  # an operand is read in the stage its consumer is computed in
            for a in operands(n):
                if a.op != "const":
                    k = canon[a.ident]
                    if last.get(k, -1) < s:
                        last[k] = s
    return {k: (st[k], s) for k, s in last.items()}


def register_bits(em: Emitted, stage_of: StageOf, tail_stage: int, stages: int) -> int:
    """FF bits the Emitter inserts: each node carried from its own stage to the latest stage
    that reads it, plus each tail output delayed to stage ``stages``."""
    live = live_ranges(em, stage_of, tail_stage)
    bits = sum(em.width[k] * max(0, last - own) for k, (own, last) in live.items())
    return bits + sum(em.tail_widths) * max(0, stages - tail_stage)


def boundary_bits(em: Emitted, stage_of: StageOf, tail_stage: int, stages: int) -> list[int]:
    """FF bits of each register boundary ``1..stages`` (boundary ``b`` ends stage ``b-1``)."""
    live = live_ranges(em, stage_of, tail_stage)
    out = [0] * stages
    for k, (own, last) in live.items():
        for b in range(own + 1, min(last, stages) + 1):
            out[b - 1] += em.width[k]
    for b in range(tail_stage + 1, stages + 1):
        out[b - 1] += sum(em.tail_widths)
    return out


def stage_delays(em: Emitted, stage_of: StageOf, tail_stage: int, delay) -> list[float]:
    """Logic delay (ns) of each stage's longest path, from its registers (or the inputs) to
    the next (or the tail's output), summing ``delay.node`` and ``delay.tail``."""
    st = _stages(em, stage_of)
    own = em.cache.setdefault(("node_delay", delay), {})
    if not own:
        own.update({n.ident: delay.node(n) for n in em.reached})
    arrive: dict[int, float] = {}
    worst = [0.0] * (max([*st.values(), tail_stage], default=0) + 1)
    for n in em.reached:
        s, t = st[n.ident], 0.0
        for a in operands(n):
            if a.ident in arrive and st[a.ident] == s and arrive[a.ident] > t:
                t = arrive[a.ident]
        arrive[n.ident] = t + own[n.ident]
        worst[s] = max(worst[s], arrive[n.ident])
    for n, sat in zip(em.nodes, em.tail_sat, strict=True):
        t = arrive.get(n.ident, 0.0) if st.get(n.ident, tail_stage) == tail_stage else 0.0
        worst[tail_stage] = max(worst[tail_stage], t + delay.tail_of(sat))
    return worst


def path_delay(em: Emitted, stage_of: StageOf, tail_stage: int, delay) -> float:
    """Longest register-to-register logic delay (ns) along the graph with ``delay.node``."""
    return max(stage_delays(em, stage_of, tail_stage, delay))


def logic_depth(em: Emitted, model: AreaModel, tail_levels: int = 1) -> int:
    """Cells on the longest path (as ``ltp -noff``, registers ignored), bit by bit: a chain
    cell waits for its operands' bits and the cell below it; the tail adds ``tail_levels``."""
    key = ("depth", model.bits_per_cell, tail_levels)
    if key in em.cache:
        return em.cache[key]
    per = model.bits_per_cell
    arrive: dict[int, list[int]] = {}  # per node: depth of each emitted bit

    def bit(n: Node, i: int) -> int:
        a = arrive.get(n.ident)
        if not a or i < 0:
            return 0
        return a[i] if i < len(a) else a[-1]

    for n in em.reached:
        w = em.width[n.ident]
        if em.canon[n.ident] != n.ident:
            arrive[n.ident] = arrive[em.canon[n.ident]]
            continue
        if n.op in ("in", "inv"):
            arrive[n.ident] = [int(n.op == "inv")] * w
            continue
        ops = operands(n)
        c = em.chains.get(n.ident)
        if c is None and n.op == "neg":  # folded into its operand's chain
            arrive[n.ident] = [bit(ops[0], i) for i in range(w)]
            continue
        if c is None:  # concatenation or low bits: no logic
            a, b, d = ops[0], ops[-1], n.args[2]
            arrive[n.ident] = [bit(a, i) if i < d else bit(b, i - d) for i in range(w)]
            continue
        out = [bit(ops[0], i) for i in range(c.lsb)]
        carry = 0
        d = n.args[2] if n.op == "add" else 0
        for i0 in range(c.lsb, c.lsb + c.width, per):
            m = carry
            for i in range(i0, i0 + per):
                m = max(m, bit(ops[0], i), bit(ops[-1], i - d) if n.op == "add" else 0)
            carry = m + 1
            out += [carry] * per
        arrive[n.ident] = out[:w] if len(out) >= w else out + [carry] * (w - len(out))
    worst = max((max(a) for a in arrive.values() if a), default=0)
    em.cache[key] = worst + tail_levels
    return em.cache[key]


def predict_emitted(
    em: Emitted,
    stages: int = 0,
    target: str = "ecp5",
    stage_of: StageOf | None = None,
    tail_stage: int | None = None,
) -> Prediction:
    t = get_target(target)
    if stage_of is None:
        stage_of, level_tail = level_stages(em, stages)
        tail_stage = level_tail if tail_stage is None else tail_stage
    elif tail_stage is None:
        tail_stage = max([stage_of(n) for n in em.nodes] + [0])
    lut4, carries = area(em, t.area)
    ffs = register_bits(em, stage_of, tail_stage, stages)
    delay = t.delay.reg_for(chain_bits(em)) + path_delay(em, stage_of, tail_stage, t.delay)
    lut_eq = lut4 + t.carry_lut_weight * carries
    depth = logic_depth(em, t.area)
    return Prediction(lut_eq, lut4, carries, ffs, depth, delay, 1000.0 / delay, stages)


@lru_cache(maxsize=128)
def emitted_cached(layers: tuple[LayerSpec, ...], impl: str) -> Emitted:
    """:func:`emitted`, memoised: building the graph (CSE) is most of the time."""
    return emitted(layers, impl)


def predict_layer(
    layers: Sequence[LayerSpec],
    impl: str = "adder_tree",
    stages: int = 0,
    target: str = "ecp5",
    *,
    stage_of: StageOf | None = None,
    tail_stage: int | None = None,
) -> Prediction:
    """Resources and timing of one layer group (a LinearSpec + element-wise layers) built
    with ``impl`` and ``stages`` level cuts, or registers placed by ``stage_of(node)``
    (``tail_stage``: the stage of the tail; ``stages``: the output's)."""
    return predict_emitted(
        emitted_cached(tuple(layers), impl), stages, target, stage_of, tail_stage
    )


def predict_network(
    net: QuantisedNetwork,
    impl: str = "adder_tree",
    stages: int | Sequence[int] = 0,
    target: str = "ecp5",
    clock_mhz: float | None = None,
) -> Prediction:
    """Sum over the network's Linear groups; ``stages``: an int, or one per group as
    ``hdl.network`` takes them (leading element-wise layers are not counted).  The path of a
    combinational group (``stages=0``) runs on into the next group.  ``clock_mhz``: each
    group pipelined to that clock by :func:`hdl.pipeline.place_emitted` (as ``NetworkTop``
    builds it, dead units removed) instead of level cuts; ``stages`` must then be 0.
    ``latency``: the top's cycles (the groups' latencies, or 1 for its output register)."""
    from .pipeline import place_emitted  # it imports this module

    if clock_mhz is not None:
        net = remove_dead_units(net)  # the network NetworkTop builds, so the placement is its
    groups = group_layers(net)
    per = [stages] * len(groups) if isinstance(stages, int) else list(stages)
    if len(per) != len(groups):
        raise ValueError(f"stages must be an int or {len(groups)} ints, got {stages!r}")
    if clock_mhz is not None and any(per):
        raise ValueError("stages must be 0 with clock_mhz (stages is the manual override)")
    delay = get_target(target).delay
    preds, worst, running, bits = [], 0.0, 0.0, 0
    for g, s in zip(groups, per, strict=True):
        if not isinstance(g[0], LinearSpec):
            continue
        em = emitted_cached(tuple(g), impl)
        bits += chain_bits(em)
        if clock_mhz is None:
            stage_of, tail = level_stages(em, s)
        else:  # the group's own placement; its output is always registered
            placed = place_emitted(em, clock_mhz, delay)
            stage_of, tail, s = placed.stage_of, placed.tail_stage, placed.latency
        preds.append(predict_emitted(em, s, target, stage_of, tail))
        seg = stage_delays(em, stage_of, tail, delay)
        if s == 0:  # combinational: its path runs on into the next group
            running += seg[0]
        else:  # registered output (the last level cut is at the output)
            worst = max(worst, running + seg[0], *seg[1:])
            running = 0.0
    out = preds[0]
    for p in preds[1:]:
        out = out + p
    total = delay.reg_for(bits) + max(worst, running)
    # no layer register: the top registers its output (hdl.network)
    return replace(out, delay_ns=total, fmax_mhz=1000.0 / total, latency=max(out.latency, 1))
