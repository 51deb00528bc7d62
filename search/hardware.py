"""The hardware step of a trial: one function, so the pipeline does not care how it is done.

:func:`hardware_metrics` synthesises a :class:`~qspec.network.QuantisedNetwork`
with :func:`hdl.synth.network.synthesise_network` and returns the search's
hardware metrics (``lut_eq``: LUT-equivalents; ``lut4``: LUT4 cells).  Any failure -- a tool crash,
a timeout, a generator error -- is a :class:`HardwareError`, which fails that
trial (with the error recorded) and never becomes numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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
    fidelity: str = "synth"  # "model": predicted by hdl.hwmodel, no tool runs
    clock_mhz: float | None = None  # pipelined to this clock (hdl.pipeline), stages = 0

    def clock(self) -> dict[str, float]:
        """The clock keyword of the hdl calls: none when unclocked (their defaults hold)."""
        return {} if self.clock_mhz is None else {"clock_mhz": self.clock_mhz}


HardwareEvaluator = Callable[[QuantisedNetwork, HardwareParams], dict[str, float]]


def one_line(e: BaseException) -> str:
    """``Type: first line of the message`` (what a failed trial records)."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}"


def hardware_metrics(net: QuantisedNetwork, hw: HardwareParams) -> dict[str, float]:
    """``net``'s hardware metrics at ``hw.fidelity``: :func:`synth_metrics` or
    :func:`model_metrics`, plus latency_ns and throughput where an fmax is known."""
    out = model_metrics(net, hw) if hw.fidelity == "model" else synth_metrics(net, hw)
    return with_derived(out)


def with_derived(out: dict[str, float]) -> dict[str, float]:
    """``latency_ns`` (cycles / fmax) and ``throughput`` (fmax / II, results per us)."""
    fmax = out.get("fmax")
    if fmax:
        out["latency_ns"] = out.get("latency", 0.0) * 1000.0 / fmax
        out["throughput"] = fmax / out.get("ii", 1.0)
    return out


def model_metrics(net: QuantisedNetwork, hw: HardwareParams) -> dict[str, float]:
    """The target's hardware model (:func:`hdl.hwmodel.predict_network`): lut_eq, lut4,
    carries, ffs, depth, latency, ii and fmax, in milliseconds and with no tool.  With
    ``hw.clock_mhz`` each layer is placed for that clock, and ``latency`` is the cycles of
    those placements."""
    try:
        from hdl.hwmodel import predict_network

        p = predict_network(net, impl=hw.impl, stages=hw.stages, target=hw.target, **hw.clock())
    except Exception as e:  # a generator error fails this trial only
        raise HardwareError(one_line(e)) from e
    return {
        "lut_eq": float(p.lut_eq),
        "lut4": float(p.lut4),
        "ffs": float(p.ffs),
        "carries": float(p.carries),
        "dsps": 0.0,
        "brams": 0.0,
        "depth": float(p.depth),
        # by construction (hdl.network): the layers' stages or placements, or the top's
        # output register
        "latency": float(p.latency),
        "ii": 1.0,
        "fmax": float(p.fmax_mhz),
    }


def synth_metrics(net: QuantisedNetwork, hw: HardwareParams) -> dict[str, float]:
    """Synthesise ``net``: lut_eq (LUT-equivalents), lut4, ffs, carries, dsps, brams, cells,
    depth, latency (cycles), ii and, with ``hw.fmax``, fmax (MHz).  A repeated design is
    a lookup (:func:`hdl.synth.network.synthesise_network_total` caches by spec)."""
    try:
        from hdl.synth.network import synthesise_network_total

        total = synthesise_network_total(
            net,
            hw.target,
            impl=hw.impl,
            stages=hw.stages,
            fmax=hw.fmax,
            timeout=hw.timeout,
            **hw.clock(),
        )
    except Exception as e:  # a tool crash, timeout or generator error fails this trial only
        raise HardwareError(one_line(e)) from e
    out: dict[str, float] = {
        "lut_eq": float(total.lut_eq),
        "lut4": float(total.lut4),
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
    return out


def confirm_params(hw: HardwareParams) -> HardwareParams:
    """``hw`` at full fidelity: what confirms a model-scored design."""
    return replace(hw, fidelity="synth")


def export_verilog(net: QuantisedNetwork, hw: HardwareParams, out_dir: Path) -> Path:
    """Write ``net`` as a design directory (``hdl.design.write_design``: Verilog, spec,
    manifest) into ``out_dir``, replacing what was there; the top module's file."""
    try:
        from hdl.design import write_design
        from hdl.export import export_network
    except ImportError as e:
        raise HardwareError(f"Verilog export unavailable: {e}") from e
    mod = export_network(net, impl=hw.impl, stages=hw.stages, target=hw.target, **hw.clock())
    return write_design(net, mod, out_dir, replace=True)
