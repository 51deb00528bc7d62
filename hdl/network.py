"""A :class:`~qspec.network.QuantisedNetwork` as one streaming Amaranth component.

The spec's layers are grouped: each ``LinearSpec`` with the element-wise layers
that follow it (up to the next ``LinearSpec``) becomes one
:class:`~hdl.layers.linear.LinearLayer`; element-wise layers before the first
Linear form an :class:`ElementwiseLayer`.  Each group is a module named from its
content (``module_name()``), so the same layer is the same module in any network.

Back-pressure: **a stall holds the whole pipeline.**  One enable
``en = ~o.valid | o.ready`` drives every layer's ``en`` (all pipeline registers),
a shift register of valid bits, and ``i.ready``.  ``o.valid`` is a register, so
valid never depends on ready, and while ``o.valid & ~o.ready`` nothing moves, so
the payload is stable.  The alternative, a skid buffer per stage (ready
registered stage by stage), would double every pipeline register of the
datapath -- the dominant cost of these designs -- to buy two things we do not
need: a registered ``i.ready`` and bubbles squeezed out during a stall.  At full
rate both run one beat per cycle (II = 1); latency is the sum of the layers'
stages, or 1 when that is 0: the top then registers its output so that ``clk``
and ``rst`` exist for every configuration (the port contract).

Dead hidden neurons (all-zero outgoing columns, or constant outputs a bias absorbs) are
removed first (:func:`qspec.prune.remove_dead_units`: the same integer function), so
pruned weights leave fewer ports between the layers; the top's ports never change.

Two builds from the same code (:meth:`NetworkTop._attach`): real submodules,
for Amaranth's simulator, or ``Instance``\\ s of the layer modules by name, for
Verilog export, where each distinct layer module is emitted once beside the top.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from amaranth.hdl import (
    ClockSignal,
    Const,
    Instance,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
    signed,
)
from amaranth.hdl import unsigned as hunsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from qspec.errors import ParamError
from qspec.fixed import FixedFormat
from qspec.network import (
    LayerSpec,
    LinearSpec,
    QuantisedNetwork,
    group_layers,
    layer_to_dict,
)
from qspec.prune import remove_dead_units

from .layers.checked import CheckedComponent
from .layers.elementwise import elementwise, fmt_bounds
from .layers.linear import LinearLayer
from .params import LINEAR_IMPLS as IMPLS
from .params import MAX_STAGES


@runtime_checkable
class NetworkLayer(Protocol):
    """What :class:`NetworkTop` uses of a layer (:class:`~hdl.layers.linear.LinearLayer`,
    :class:`ElementwiseLayer`, or a test's substitute).

    ``signature``: members ``x`` (In) and ``y`` (Out), ``data.ArrayLayout``\\ s of codes,
    and optionally ``en`` (In, 1 bit: every pipeline register advances only while it is
    high); each member is also an attribute of the layer (as a ``wiring.Component``'s
    are).  ``latency``: pipeline registers from ``x`` to ``y`` (0: combinational, and
    the layer module then has no ``clk``/``rst``).  ``module_name()``: the Verilog module
    name, equal for equal layers (an ``Instance`` of it replaces the layer in export).
    ``elaborate``: the layer as an Amaranth elaboratable (a simulator submodule).
    """

    latency: int

    @property
    def signature(self) -> wiring.Signature: ...

    def module_name(self) -> str: ...

    def elaborate(self, platform: Any) -> Module: ...


# ``factory(group, impl=..., stages=...) -> NetworkLayer`` for each group led by a
# LinearSpec; a ``check`` attribute of the same arguments, if any, validates them first
# (raising ValueError) without building anything (``LinearLayer`` is one).
LayerFactory = Callable[..., NetworkLayer]


def fmt_shape(fmt: FixedFormat):
    return signed(fmt.width) if fmt.signed else hunsigned(fmt.width)


def group_name(group: Sequence[LayerSpec]) -> str:
    """The Linear layer's spec name, or ``pre`` for a leading element-wise group."""
    return group[0].name if isinstance(group[0], LinearSpec) else "pre"


class ElementwiseLayer(wiring.Component):
    """Element-wise layers before the first Linear: ports ``x`` and ``y``, combinational."""

    def __init__(self, layers: Sequence[LayerSpec], features: int):
        self.layers, self.features = tuple(layers), features
        super().__init__(
            {
                "x": In(data.ArrayLayout(fmt_shape(self.layers[0].in_fmt), features)),
                "y": Out(data.ArrayLayout(fmt_shape(self.layers[-1].out_fmt), features)),
            }
        )

    latency = 0

    def module_name(self) -> str:
        text = json.dumps([layer_to_dict(s) for s in self.layers], sort_keys=True)
        digest = hashlib.sha256(f"{self.features}:{text}".encode()).hexdigest()[:12]
        return f"elementwise_n{self.features}_{digest}"

    def elaborate(self, platform):
        m = Module()
        for k in range(self.features):
            v: Value = self.x[k]
            bounds = fmt_bounds(self.layers[0].in_fmt)
            for s, spec in enumerate(self.layers):
                v, bounds = elementwise(m, spec, v, bounds, f"f{k}_l{s}")
            m.d.comb += self.y[k].eq(v)
        return m


def first_argmax(values: Sequence[Value]) -> Value:
    """Index of the first maximum: a tree whose nodes keep the left (lower-index) side unless
    the right one is strictly greater, so ties go to the lowest index (as ``np.argmax``)."""
    bits = max(1, (len(values) - 1).bit_length())
    nodes = [(v, Const(k, bits)) for k, v in enumerate(values)]
    while len(nodes) > 1:
        pairs = [(a, b) for a, b in zip(nodes[::2], nodes[1::2], strict=False)]
        merged = [(Mux(b[0] > a[0], b[0], a[0]), Mux(b[0] > a[0], b[1], a[1])) for a, b in pairs]
        nodes = merged + ([nodes[-1]] if len(nodes) % 2 else [])
    return nodes[0][1]


def adder_count(net: QuantisedNetwork, impl: str = "adder_tree") -> int:
    """Two-input adders in the Linear layers' adder graphs of the network :class:`NetworkTop`
    builds (dead units removed): the generator's own cost, in milliseconds, no synthesis."""
    from .layers.linear import build_graph

    if impl not in IMPLS:
        raise ParamError("impl", f"impl must be one of {'|'.join(IMPLS)}, got {impl!r}")
    layers = remove_dead_units(net).linear_layers
    return sum(n.op == "add" for ly in layers for n in build_graph(ly, impl)[0].nodes)


def default_layer_factory() -> LayerFactory:
    """The ``LinearLayer`` builder (a function, so tests can substitute a broken one).

    Any :data:`LayerFactory` will do: called as ``factory(group, impl=impl, stages=s)``
    with the specs of one Linear group, it returns a :class:`NetworkLayer`.
    """
    return LinearLayer


def clock_kwargs(clock_mhz: float | None, target: str) -> dict[str, Any]:
    """The factory's clock arguments: none without a clock (test factories need not know)."""
    return {} if clock_mhz is None else {"clock_mhz": clock_mhz, "target": target}


def normalise_stages(stages: int | Sequence[int], groups: int) -> tuple[int, ...]:
    """One stage count per group from an int (every group) or a per-group sequence."""
    allowed = f"an int in [0, {MAX_STAGES}] or a sequence of {groups} of them (one per layer)"
    per = (stages,) * groups if isinstance(stages, int) else tuple(stages)
    if len(per) != groups or any(
        isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_STAGES for s in per
    ):
        raise ParamError("stages", f"stages must be {allowed}, got {stages!r}")
    return per


class NetworkTop(CheckedComponent):
    """The whole network as one stream: ports ``i`` and ``o`` (``amaranth.lib.stream``).

    ``i.payload``: ``in_features`` input codes; ``o.payload``: ``num_classes``
    output codes (logits), with ``argmax`` a struct of ``logits`` and, above
    them, ``cls`` (the index of the first maximum; combinational after the last
    layer).  ``stages``: pipeline registers per layer group (an int for every
    group, or one per group).  ``instances=True`` instantiates the layer modules
    by name (for export) instead of adding them as submodules.  ``layer_factory`` (a
    :data:`LayerFactory`, default :func:`default_layer_factory`) builds each Linear
    group's :class:`NetworkLayer`.  ``clock_mhz`` (with ``target``'s delay model) has each
    Linear group place its own registers for that clock (:mod:`hdl.pipeline`) instead of
    ``stages``; every group's output is then registered.
    """

    @classmethod
    def check(
        cls,
        net: QuantisedNetwork,
        *,
        impl: str = "adder_tree",
        stages: int | Sequence[int] = 0,
        argmax: bool = False,
        instances: bool = False,
        layer_factory: LayerFactory | None = None,
        clock_mhz: float | None = None,
        target: str = "ecp5",
    ) -> None:
        if impl not in IMPLS:
            raise ParamError("impl", f"impl must be one of {'|'.join(IMPLS)}, got {impl!r}")
        groups = group_layers(remove_dead_units(net))
        factory = layer_factory or default_layer_factory()
        per = normalise_stages(stages, len(groups))
        clock = clock_kwargs(clock_mhz, target)
        if clock and any(per):
            why = "stages must be 0 with clock_mhz (stages is the manual override)"
            raise ParamError("stages", why)
        for group, s in zip(groups, per, strict=True):
            if not isinstance(group[0], LinearSpec):
                if s:
                    raise ParamError(
                        "stages",
                        "stages must be 0 for the leading element-wise group (it has no registers)",
                    )
            elif hasattr(factory, "check"):
                try:
                    factory.check(group, impl=impl, stages=s, **clock)
                except ValueError as e:
                    if clock and not isinstance(e, ParamError):
                        raise ParamError("clock_mhz", str(e)) from None
                    raise

    def __init__(
        self,
        net: QuantisedNetwork,
        *,
        impl: str = "adder_tree",
        stages: int | Sequence[int] = 0,
        argmax: bool = False,
        instances: bool = False,
        layer_factory: LayerFactory | None = None,
        clock_mhz: float | None = None,
        target: str = "ecp5",
    ):
        net = remove_dead_units(net)  # the hardware of the same function (``self.net``)
        self.groups = group_layers(net)
        self.stages = normalise_stages(stages, len(self.groups))
        factory = layer_factory or default_layer_factory()
        clock = clock_kwargs(clock_mhz, target)
        self.clock_mhz, self.target = clock_mhz, target
        self.layers: list[NetworkLayer] = [
            factory(group, impl=impl, stages=s, **clock)
            if isinstance(group[0], LinearSpec)
            else ElementwiseLayer(group, net.in_features)
            for group, s in zip(self.groups, self.stages, strict=True)
        ]
        self.net, self.impl, self.instances = net, impl, instances
        names = [group_name(g) for g in self.groups]  # specs do not require unique names
        self.names = [n if names.count(n) == 1 else f"{n}_{k}" for k, n in enumerate(names)]
        if clock_mhz is not None:  # what the placements chose
            self.stages = tuple(layer.latency for layer in self.layers)
        layer_latency = sum(layer.latency for layer in self.layers)
        self.output_register = layer_latency == 0  # so clk/rst exist (port contract)
        self.latency = layer_latency + self.output_register
        self.initiation_interval = 1
        in_layout = data.ArrayLayout(fmt_shape(net.input_fmt), net.in_features)
        out_layout: Any = data.ArrayLayout(fmt_shape(net.output_fmt), net.num_classes)
        self.argmax = argmax
        if argmax:  # logits in the low bits, the class index above them
            index = hunsigned(max(1, (net.num_classes - 1).bit_length()))
            out_layout = data.StructLayout({"logits": out_layout, "cls": index})
        super().__init__(
            {"i": In(stream.Signature(in_layout)), "o": Out(stream.Signature(out_layout))}
        )

    def _attach(self, m: Module, k: int, layer: NetworkLayer, conns: dict[str, Any]) -> None:
        """Connect ``layer``'s ports (``x``, ``y``, ``en``) to ``conns``: submodule or Instance."""
        name = self.names[k]
        if not self.instances:
            m.submodules[name] = layer
            for path, member, _ in layer.signature.flatten(layer):
                port, value = getattr(layer, path[0]), conns[path[0]]
                m.d.comb += port.eq(value) if member.flow == In else value.eq(port)
            return
        ports: dict[str, Any] = {}
        if layer.latency:  # the layer module's sync domain: clk and rst ports
            ports |= {"i_clk": ClockSignal("sync"), "i_rst": ResetSignal("sync")}
        for path, member, _ in layer.signature.flatten(layer):
            flow = "i" if member.flow == In else "o"
            ports[f"{flow}_{path[0]}"] = Value.cast(conns[path[0]])
        m.submodules[name] = Instance(layer.module_name(), **ports)

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        x: Any = self.i.payload
        for k, layer in enumerate(self.layers):
            y = Signal(layer.signature.members["y"].shape, name=f"{self.names[k]}_y")
            conns = {"x": x, "y": y}
            if "en" in layer.signature.members:
                conns["en"] = en
            self._attach(m, k, layer, conns)
            x = y
        if self.argmax:
            out = Signal(self.o.payload.shape(), name="logits_cls")
            logits = [x[k] for k in range(self.net.num_classes)]
            m.d.comb += [out.logits.eq(x), out.cls.eq(first_argmax(logits))]
            x = out
        if self.output_register:
            out = Signal.like(self.o.payload, name="out_reg")
            with m.If(en):
                m.d.sync += out.eq(x)
            x = out

        valid = self.i.valid
        for s in range(self.latency):  # the valid bits travel with the layers' registers
            v = Signal(name=f"valid{s + 1}")
            with m.If(en):
                m.d.sync += v.eq(valid)
            valid = v
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.eq(x)]
        return m
