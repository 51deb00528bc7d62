"""The constant-weight Linear layer (plus its element-wise tail) as one component.

``impl="adder_tree"``: every product ``x[j] * W[k][j]`` is the canonical
signed digits of the weight applied as shifts of ``x[j]``; digit pairs that
recur across the matrix become shared adders (:mod:`hdl.arith.cse`); all terms
of a neuron are summed by a Huffman tree of two-input adders, each exactly as
wide as its exact value range, and the bias plus the rounding offset is one
constant added last (:mod:`hdl.arith.adder_tree`).  ``impl="adder_tree_nosub"``:
the same with no subtractor -- a negative digit of ``x`` adds ``~x`` and the constant
absorbs the difference -- for carry cells that cannot invert an operand (iCE40:
-8 to -17 % LUTs on jsc-toy's layers; ECP5: +5 to +14 %).  ``impl="mul"``:
``x[j] * Const(w)`` per product, the synthesiser's baseline.  Both then shift
to the output format, saturate only where the neuron's exact range can leave
it, and apply the element-wise layers in order.

With ``stages > 0`` registers cut the adder trees at evenly spaced levels; the
tail (shift, saturation, activations) sits in the last stage, whose register
drives ``y``.  With ``clock_mhz`` instead, :mod:`hdl.pipeline` places the registers
where the target's delay model says a path would overrun the period (the fewest
stages that meet it, then the fewest FFs); ``stages`` is then that placement's
latency.  Every register loads only while ``en`` is high.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from amaranth.hdl import EnableInserter, Module, Shape, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from qspec import fixed as sw
from qspec.fixed import FixedFormat, Overflow, Rounding, check_int
from qspec.network import LayerSpec, LinearSpec

from ..arith import fixed as hwfixed
from ..arith.adder_graph import needed_bits
from ..arith.adder_tree import Emitter
from ..arith.layer_graph import build_graph, level_placement
from ..hwmodel import IMPLS as MODELLED_IMPLS
from ..params import LINEAR_IMPLS as IMPLS
from ..params import MAX_STAGES
from ..pipeline import Placement, check_clock, place
from ..targets import target as get_target
from .checked import CheckedComponent
from .elementwise import ELEMENTWISE, Bounds, elementwise, overflow_bounds

_IMPL_TAG = {"adder_tree": "at", "adder_tree_nosub": "an", "mul": "mul"}
# Keys that name or document a layer without changing its logic.
_NON_LOGIC_KEYS = ("name", "slope_requested")


def shape_of(fmt: FixedFormat) -> Shape:
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def check_layers(layers: Sequence[LayerSpec]) -> tuple[LayerSpec, ...]:
    """A LinearSpec followed by element-wise specs whose formats chain."""
    layers = tuple(layers)
    if not layers or not isinstance(layers[0], LinearSpec):
        raise ValueError("layers[0] must be a LinearSpec")
    for i, layer in enumerate(layers[1:], 1):
        if not isinstance(layer, ELEMENTWISE):
            raise ValueError(
                f"layers[{i}] must be a ReLUSpec, LeakyReLUSpec or RequantiseSpec, "
                f"got {type(layer).__name__}"
            )
        if layer.in_fmt != layers[i - 1].out_fmt:
            raise ValueError(
                f"layers[{i}].in_fmt must be {layers[i - 1].out_fmt}, got {layer.in_fmt}"
            )
    return layers


def layers_digest(
    layers: Sequence[LayerSpec],
    impl: str,
    stages: int,
    clock: tuple[float, str] | None = None,
    registers: tuple | None = None,
) -> str:
    """SHA-256 of the canonical JSON of everything that shapes the logic (``clock``:
    ``(MHz, target)`` of a clock-driven placement, ``registers`` its
    :attr:`~hdl.pipeline.Placement.registers`; absent, the digest is as before)."""
    dicts = []
    for layer in layers:
        d = layer.to_dict()
        dicts.append({k: v for k, v in d.items() if k not in _NON_LOGIC_KEYS})
    obj: dict = {"layers": dicts, "impl": impl, "stages": stages}
    if clock is not None:
        obj["clock"] = [clock[0], clock[1]]
    if registers is not None:  # the same clock under another delay model: other registers
        obj["registers"] = [registers[0], [list(p) for p in registers[1]]]
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def linear_module_name(
    layers: Sequence[LayerSpec],
    impl: str = "adder_tree",
    stages: int = 0,
    clock: tuple[float, str] | None = None,
    registers: tuple | None = None,
) -> str:
    """``lin<in>x<out>_<at|mul>_p<stages>[c<MHz>]_<12 hex of layers_digest>``."""
    s = check_layers(layers)[0]
    digest = layers_digest(layers, impl, stages, clock, registers)[:12]
    c = "" if clock is None else "c" + f"{clock[0]:g}".replace(".", "d")
    return f"lin{s.in_features}x{s.out_features}_{_IMPL_TAG[impl]}_p{stages}{c}_{digest}"


class LinearLayer(CheckedComponent):
    """``y = tail(requantise(W x + b))`` on integer codes; see the module docstring.

    Ports: ``x`` (array of ``in_features`` input codes), ``y`` (array of
    ``out_features`` output codes) and, when ``stages > 0``, ``en``.
    ``latency`` is ``stages`` cycles (counted while ``en`` is high).  ``clock_mhz``
    (with ``target``, whose delay model it uses) places the registers for that clock
    (:attr:`placement`); it excludes ``stages``, the manual override.
    """

    @classmethod
    def check(
        cls,
        layers: Sequence[LayerSpec],
        *,
        impl: str = "adder_tree",
        stages: int = 0,
        clock_mhz: float | None = None,
        target: str = "ecp5",
    ) -> None:
        check_layers(layers)
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {'|'.join(IMPLS)}, got {impl!r}")
        check_int("stages", stages, 0, MAX_STAGES)
        if clock_mhz is not None:
            check_clock(clock_mhz)
            get_target(target)
            if stages:
                raise ValueError("stages must be 0 with clock_mhz (stages is the manual override)")
            if impl not in MODELLED_IMPLS:
                raise ValueError(
                    f"clock_mhz needs impl {'|'.join(MODELLED_IMPLS)} (modelled), got {impl!r}"
                )

    def __init__(
        self,
        layers: Sequence[LayerSpec],
        *,
        impl: str = "adder_tree",
        stages: int = 0,
        clock_mhz: float | None = None,
        target: str = "ecp5",
    ):
        self.layers = check_layers(layers)
        self.placement: Placement | None = None
        self.clock: tuple[float, str] | None = None
        if clock_mhz is not None:
            self.placement = place(self.layers, impl, clock_mhz, target)
            self.clock = (self.placement.clock_mhz, target)
            stages = self.placement.latency
        self.impl, self.stages = impl, stages
        self.spec: LinearSpec = self.layers[0]
        self.out_fmt: FixedFormat = self.layers[-1].out_fmt
        members = {
            "x": In(data.ArrayLayout(shape_of(self.spec.in_fmt), self.spec.in_features)),
            "y": Out(data.ArrayLayout(shape_of(self.out_fmt), self.spec.out_features)),
        }
        if stages:
            members["en"] = In(1)
        super().__init__(members)

    @property
    def latency(self) -> int:
        return self.stages

    def module_name(self) -> str:
        registers = None if self.placement is None else self.placement.registers
        return linear_module_name(self.layers, self.impl, self.stages, self.clock, registers)

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        graph, roots = build_graph(spec, self.impl)
        nodes = [graph.term_node(t) for t in roots]
        if self.placement is not None:
            stage_of, tail_stage = self.placement.stage_of, self.placement.tail_stage
        else:
            stage_of, tail_stage = level_placement(max(n.level for n in nodes), self.stages)

        needs = {}
        if spec.overflow == Overflow.WRAP:  # only the low bits of each sum reach the output
            out_w = spec.out_fmt.width
            needs = needed_bits(
                graph, [(n, self._drop(t.shift) + out_w) for n, t in zip(nodes, roots, strict=True)]
            )
        inputs = [self.x[j] for j in range(spec.in_features)]
        # mul is the baseline: Yosys may merge its sums however it likes
        keep = self.impl != "mul"
        # outputs read by no adder need no keep: the tail logic may absorb them
        operands = {a.ident for n in graph.nodes if n.op == "add" for a in n.args[:2]}
        free = [n for n in nodes if n.ident not in operands]
        em = Emitter(m, inputs, stage_of, needs=needs, keep=keep, free=free)
        for k, (node, root) in enumerate(zip(nodes, roots, strict=True)):
            v, bounds = self._requantise(em.value(node, tail_stage), node, root.shift)
            for i, layer in enumerate(self.layers[1:], 1):
                v, bounds = elementwise(m, layer, v, bounds, f"y{k}_l{i}")
            v = em.delay(v, self.stages - tail_stage, f"y{k}")
            m.d.comb += self.y[k].eq(v)
        return EnableInserter(self.en)(m) if self.stages else m

    def _drop(self, shift: int) -> int:
        """Low bits of a root node (of weight ``2**shift``) below the output's LSB."""
        return self.spec.acc_fmt.frac_width - self.spec.out_fmt.frac_width - shift

    def _requantise(self, v, node, shift: int) -> tuple[object, Bounds]:
        """``floor(node * 2**shift / 2**r)`` then overflow (the rounding offset is in the sum)."""
        spec = self.spec
        r = self._drop(shift)
        v = hwfixed.shift_right(v, r, Rounding.FLOOR)
        bounds = (sw.shift_right(node.lo, r, "floor"), sw.shift_right(node.hi, r, "floor"))
        y = hwfixed.handle_overflow(v, spec.out_fmt, spec.overflow, bounds)
        return y, overflow_bounds(bounds, spec.out_fmt, spec.overflow)
