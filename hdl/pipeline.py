"""Pipelining a Linear layer group to a clock: where the registers go (pure Python).

The target's :class:`~hdl.timing.DelayModel` gives each node of the group's adder graph
its own delay; a stage may hold ``budget_ns`` of logic: the period less its
``uncertainty`` share and the register-to-register overhead of a design that size.
:func:`place` finds the fewest stages that meet it and, among the placements with that many, the one
with the fewest register bits (by :func:`hdl.hwmodel.register_bits`):

- **ASAP**: in graph order, a node joins the latest stage of its operands unless its
  path through them would overrun the budget, then it starts the next stage (cutting
  inside an adder tree wherever the widths make the path long, not at fixed levels).
  This gives every node its earliest stage, so its stage count is the fewest possible.
- **ALAP**: the mirror image, from the tail back, with the same number of stages: wide
  sums near the root wait, and narrow inputs are carried instead.
- **levels**: the evenly spaced level cuts of ``stages=K`` with the same K, when they
  happen to meet the budget too.

When one node alone is slower than the budget, no placement meets the clock: the
budget becomes that node's delay (the fastest the model allows, ``met`` False), so a
too-fast clock gets the fewest stages and FFs at that speed, not a register per adder.

The tail (requantise, saturation, activations) is placed like a node after its
neuron's root; the group's output is always registered (registers between layers), so
``latency = tail stage + 1``.  Inputs arrive from a register (the previous layer's, or
the stream's source): every stage's path starts at a register.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .arith.adder_graph import Node
from .hwmodel import (
    Emitted,
    boundary_bits,
    chain_bits,
    emitted_cached,
    level_stages,
    operands,
    register_bits,
    stage_delays,
)
from .targets import target as get_target
from .timing import DelayModel

METHODS = ("asap", "alap", "levels")
MIN_MHZ, MAX_MHZ = 1.0, 2000.0


@dataclass(frozen=True)
class Placement:
    """Register placement of one group: ``stage[node ident]``, the tail's stage, and the
    output register after it (``latency`` cycles in all)."""

    stage: dict[int, int] = field(repr=False)
    tail_stage: int
    method: str  # one of METHODS
    clock_mhz: float
    ffs: int  # predicted register bits
    delay_ns: float  # predicted critical register-to-register path
    # delay_ns within the period less the model's uncertainty (a single node slower than
    # that cannot be)
    met: bool

    @property
    def latency(self) -> int:
        return self.tail_stage + 1

    @property
    def registers(self) -> tuple[int, tuple[tuple[int, int], ...]]:
        """Where the registers go: the tail's stage and each node's (ident, stage). Two
        placements of a group with equal ``registers`` are the same Verilog; another delay
        model can move them at the same clock and stage count."""
        return self.tail_stage, tuple(sorted(self.stage.items()))

    def stage_of(self, node: Node) -> int:
        return self.stage.get(node.ident, 0)  # constants and unreached nodes: stage 0

    def boundary_bits(self, em: Emitted) -> list[int]:
        """FF bits at each register boundary ``1..latency`` (the last: the output)."""
        return boundary_bits(em, self.stage_of, self.tail_stage, self.latency)

    def adders_per_stage(self, em: Emitted) -> list[int]:
        """Adder (and negation) nodes computed in each stage."""
        out = [0] * self.latency
        for n in em.reached:
            if n.op in ("add", "neg"):
                out[self.stage_of(n)] += 1
        return out


def check_clock(clock_mhz: object) -> float:
    """``clock_mhz`` as a float in ``[MIN_MHZ, MAX_MHZ]``, else ValueError naming it."""
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, int | float):
        raise ValueError(f"clock_mhz must be a number of MHz, got {clock_mhz!r}")
    if not MIN_MHZ <= clock_mhz <= MAX_MHZ:
        raise ValueError(f"clock_mhz must be in [{MIN_MHZ:g}, {MAX_MHZ:g}], got {clock_mhz!r}")
    return float(clock_mhz)


def _asap(em: Emitted, delay: DelayModel, budget: float) -> tuple[dict[int, int], int]:
    stage: dict[int, int] = {}
    arrive: dict[int, float] = {}
    for n in em.reached:  # operands first
        ops = [a for a in operands(n) if a.op != "const"]
        s = max((stage[a.ident] for a in ops), default=0)
        t = max((arrive[a.ident] for a in ops if stage[a.ident] == s), default=0.0)
        own = delay.node(n)
        if t > 0 and t + own > budget:
            s, t = s + 1, 0.0
        stage[n.ident], arrive[n.ident] = s, t + own
    roots = [(n, sat) for n, sat in zip(em.nodes, em.tail_sat, strict=True) if n.op != "const"]
    ts = max((stage[n.ident] for n, _ in roots), default=0)
    late = [(arrive[n.ident], delay.tail_of(sat)) for n, sat in roots if stage[n.ident] == ts]
    if any(t > 0 and t + tail > budget for t, tail in late):  # the tail gets its own stage
        ts += 1
    return stage, ts


def _alap(em: Emitted, delay: DelayModel, budget: float, ts: int) -> dict[int, int]:
    """Latest stages with the tail in stage ``ts``; inputs stay in stage 0."""
    readers: dict[int, list[Node]] = {}
    for n in em.reached:
        for a in operands(n):
            readers.setdefault(a.ident, []).append(n)
    roots: dict[int, float] = {}
    for n, sat in zip(em.nodes, em.tail_sat, strict=True):
        roots[n.ident] = max(roots.get(n.ident, 0.0), delay.tail_of(sat))
    stage: dict[int, int] = {}
    depart: dict[int, float] = {}  # own delay plus the longest path after it in its stage
    for n in reversed(em.reached):
        if n.op == "in":
            stage[n.ident], depart[n.ident] = 0, 0.0
            continue
        own = delay.node(n)
        cands = [(stage[c.ident], depart[c.ident]) for c in readers.get(n.ident, [])]
        if n.ident in roots:
            cands.append((ts, roots[n.ident]))
        s = min(c[0] for c in cands)
        t = max(d for c, d in cands if c == s)
        if t + own > budget and t > 0:
            s, t = s - 1, 0.0
        stage[n.ident], depart[n.ident] = s, t + own
    return stage


def _lookup(stage: dict[int, int]):
    return lambda n: stage.get(n.ident, 0)


def place_emitted(em: Emitted, clock_mhz: float, delay: DelayModel) -> Placement:
    """The fewest-stage, fewest-FF placement of ``em`` at ``clock_mhz`` (module docstring)."""
    clock_mhz = check_clock(clock_mhz)
    bits = chain_bits(em)
    budget = delay.budget_ns(clock_mhz, bits)
    aim = goal = budget + delay.reg_for(bits)  # the period less the uncertainty
    asap, ts = _asap(em, delay, budget)
    if delay.reg_for(bits) + max(stage_delays(em, _lookup(asap), ts, delay)) > aim + 1e-9:
        # one node (or a tail) is slower than the budget: no placement meets the clock, so
        # aim for the fastest one can (the slowest single node a stage), with the fewest
        # stages and FFs for that, rather than a register after every adder
        budget = max(budget, *(delay.node(n) for n in em.reached),
                     *(delay.tail_of(s) for s in em.tail_sat))  # fmt: skip
        aim = budget + delay.reg_for(bits)
        asap, ts = _asap(em, delay, budget)
    cands = [("asap", asap, ts)]
    alap = _alap(em, delay, budget, ts)
    if all(s >= 0 for s in alap.values()):
        cands.append(("alap", alap, ts))
    lv_of, lv_tail = level_stages(em, ts + 1)
    levels = {n.ident: lv_of(n) for n in em.reached}
    cands.append(("levels", levels, lv_tail))
    best = None
    for method, st, tail in cands:
        of = _lookup(st)
        d = delay.reg_for(bits) + max(stage_delays(em, of, tail, delay))
        if method != "asap" and d > aim + 1e-9:
            continue  # only placements that meet the clock (ASAP's is the fewest stages)
        ffs = register_bits(em, of, tail, ts + 1)
        key = (ffs, METHODS.index(method))
        if best is None or key < best[0]:
            best = (key, Placement(st, tail, method, clock_mhz, ffs, d, d <= goal + 1e-9))
    assert best is not None
    return best[1]


def place(layers, impl: str, clock_mhz: float, target: str = "ecp5") -> Placement:
    """Placement of one Linear group (a LinearSpec and its element-wise layers)."""
    return place_emitted(emitted_cached(tuple(layers), impl), clock_mhz, get_target(target).delay)
