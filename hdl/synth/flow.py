"""Hardware metrics of a Verilog design: Yosys cell counts and depth, nextpnr Fmax; cached.

``synthesise(verilog, top, target)`` runs ``synth_<target>``, ``stat -json``,
``ltp -noff`` and ``portlist`` in one Yosys run; with ``fmax=True`` it also
synthesises a registered wrapper (:mod:`hdl.synth.wrapper`) and places and routes it
(:mod:`hdl.synth.nextpnr`). Results are cached by content (:mod:`hdl.synth.cache`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from qspec.errors import ParamError
from qspec.limits import check_seconds
from qspec.names import check_name, is_name, name_rule

from .. import targets
from ..resources import Resources
from . import nextpnr
from .cache import SynthCache, cache_key
from .wrapper import WRAPPER_TOP, parse_portlist, registered_wrapper
from .yosys import (
    YosysCrash,
    YosysError,
    YosysTimeout,
    backend_version,
    resolve_backend,
    run_yosys_files,
)

TARGETS = targets.TARGET_NAMES  # re-exported by hdl.synth
FLOW_VERSION = 1  # bump when the scripts below change what is measured
DEFAULT_TIMEOUT = 600.0

_LTP = re.compile(r"Longest topological path in \\?(\S+) \(length=(\d+)\)")
_MODULE = re.compile(r"^\s*module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)", re.M)


class SynthError(YosysError):
    """Synthesis or place-and-route crashed or timed out (``log_tail`` has the details)."""


class SynthTimeout(SynthError, YosysTimeout):
    """Synthesis or place-and-route exceeded its timeout."""


def check_target(target: str) -> str:
    return targets.target(target).name


def check_timeout(timeout: float | None) -> float | None:
    """Seconds per tool run: ``None`` (no limit) or a finite number > 0."""
    return check_seconds("timeout", timeout, none=True)


def module_names(verilog: str) -> list[str]:
    return [n.lstrip("\\") for n in _MODULE.findall(verilog)]


def infer_top(verilog: str) -> str:
    """The only module no other module instantiates; one-line ``ValueError`` otherwise."""
    names = module_names(verilog)
    if not names:
        raise ValueError("no Verilog module found in the input")
    tops = [
        n for n in names if len(re.findall(rf"(?<![\w$]){re.escape(n)}(?![\w$])", verilog)) == 1
    ]
    if len(tops) != 1:
        raise ValueError(f"--top is required: the modules are {', '.join(names)}")
    return tops[0]


def cell_counts(stat_json: str, top: str) -> dict[str, int]:
    """Cell type counts from ``stat -json``, tolerant of layout changes across Yosys versions."""
    data = json.loads(stat_json)
    modules = data.get("modules") or {}
    entry = data.get("design") or modules.get(f"\\{top}") or modules.get(top)
    if entry is None and len(modules) == 1:
        entry = next(iter(modules.values()))
    if entry is None:
        raise ValueError(f"stat -json has no entry for {top!r}")
    raw = entry.get("num_cells_by_type") or entry.get("cells_by_type") or {}
    counts = {}
    for name, v in raw.items():
        n = v.get("count", v.get("num", 0)) if isinstance(v, dict) else v
        counts[name.lstrip("\\")] = int(n)
    return dict(sorted(counts.items()))


def resources_from(target: str, counts: dict[str, int], depth: int | None) -> Resources:
    t = targets.target(target)
    ff_prefixes = (*t.ff_prefixes, "$_DFF")
    tally = {"lut4": 0, "ffs": 0, "carries": 0, "dsps": 0, "brams": 0}
    for cell, n in counts.items():
        kind = t.cell_classes.get(cell)
        if kind is None and cell.startswith(ff_prefixes):
            kind = "ffs"
        if kind:
            tally[kind] += n
    return Resources(target, **tally, cells=sum(counts.values()), depth=depth, cell_types=counts)


def _dsp_flag(target: str, dsp: bool) -> str:
    t = targets.target(target)
    return "" if dsp == t.dsp_default else f" {t.dsp_flag}"


FLOWS = ("abc9", "abc9 -dff", "abc")
FLOW_NOTES = {
    "abc9 -dff": "mapped with -dff (abc9 sees the flops): plain abc9 of Yosys 0.70 crashes here",
    "abc": "mapped with classic abc -lut 4: abc9 of Yosys 0.70 crashes here, also with -dff",
}


# ABC9 of Yosys 0.70 ends its script with ``&verify``, a SAT check of its own mapping
# against its input. On wide adder designs that check, not the mapping, takes the time
# (jsc-s 8-bit 64->32: 29.6 s of synthesis without it, 888.6 s with it); the mapped
# netlist is written before the check, so switching it off changes no number.
ABC9_VERIFY = False


def _synth_cmd(target: str, top: str, dsp: bool, flow: str = "abc9") -> str:
    base = f"synth_{target} -top {top}" + _dsp_flag(target, dsp)
    pre = "" if ABC9_VERIFY else "scratchpad -set abc9.verify false\n"
    if flow == "abc9":
        return pre + base
    if flow == "abc9 -dff":
        return pre + base + " -dff"
    # fallback when ABC9 crashes: the same script with classic abc spliced into map_luts
    classic = targets.target(target).classic_luts
    return f"{base} -run :map_luts\n{classic}{base} -run map_cells:"


def _read_cmds(
    top: str,
    params: dict[str, int],
    files: str,
    hier_top: str | None = None,
    blackboxes: tuple[str, ...] = (),
) -> str:
    chparams = "".join(f"chparam -set {k} {int(v)} {top}\n" for k, v in params.items())
    boxes = f"blackbox {' '.join(blackboxes)}\n" if blackboxes else ""
    return f"read_verilog -sv {files}\n{chparams}{boxes}hierarchy -check -top {hier_top or top}\n"


def _run(script, sources, outputs, timeout, backend):
    try:
        return run_yosys_files(script, sources, outputs=outputs, timeout=timeout, backend=backend)
    except YosysError as e:
        # Failing before synthesis started means the input, not the tool, is at fault.
        started = "SYNTH_" in e.log or isinstance(e, YosysCrash)
        if not isinstance(e, YosysTimeout) and not started:
            raise ValueError(str(e).splitlines()[0]) from None
        kind = SynthTimeout if isinstance(e, YosysTimeout) else SynthError
        raise kind(
            str(e), e.log_tail, returncode=e.returncode, backend=e.backend, log=e.log
        ) from None


def synthesise(
    verilog: str,
    top: str | None = None,
    target: str = "ecp5",
    *,
    fmax: bool = False,
    dsp: bool | None = None,
    device: str | None = None,
    params: dict[str, int] | None = None,
    latency: int | None = None,
    initiation_interval: int | None = None,
    backend: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    cache: SynthCache | bool | None = None,
    blackboxes: tuple[str, ...] = (),
) -> Resources:
    """Synthesise ``top`` of ``verilog`` for ``target`` (``ecp5``: LFE5U-25F; ``ice40``: UP5K).

    ``dsp``: map multipliers to DSP blocks (default: ECP5 yes, iCE40 no; ECP5
    ``False`` runs ``-nodsp``; iCE40 ``True`` maps to SB_MAC16, which
    nextpnr-ice40 does not time). ``device``: the part nextpnr places on for
    Fmax (:data:`hdl.synth.nextpnr.PARTS`, e.g. ``LFE5U-85F`` for a network).
    ``params`` override Verilog parameters. ``cache``: a :class:`SynthCache`,
    ``None`` for the default one, ``False`` for none. ``blackboxes``: modules
    left out (counted as nothing), e.g. a network's layers to measure its own
    glue; not with ``fmax``. If ABC9 crashes the run
    falls back to ``-dff``, then to classic ``abc`` (named in ``notes``).
    Raises ``ValueError`` for bad input and :class:`SynthError` for tool
    failures or timeouts; failures are never cached.
    """
    t = targets.target(target)
    check_timeout(timeout)
    dsp = t.dsp_default if dsp is None else bool(dsp)
    flip = dsp != t.dsp_default
    device = nextpnr.check_device(target, device)
    if top is None:  # an escaped Verilog name may hold ';' (a Yosys command separator)
        top = infer_top(verilog)
        if not is_name(top):
            raise ValueError(f"the top module {top!r} must be {name_rule()}; rename it")
    check_name("top", top)  # it is spliced into the Yosys script
    if top not in module_names(verilog):
        raise ParamError(
            "top",
            f"top {top!r} is not a module of the input; modules: "
            f"{', '.join(module_names(verilog)) or '(none)'}",
        )
    params = dict(sorted((params or {}).items()))
    for name in (*params, *blackboxes):
        check_name("params" if name in params else "blackboxes", name)
    blackboxes = tuple(sorted(set(blackboxes)))
    unknown = sorted(set(blackboxes) - set(module_names(verilog)) | {top} & set(blackboxes))
    if unknown:
        raise ValueError(f"blackboxes must name non-top modules of the input, got {unknown}")
    if blackboxes and fmax:
        raise ValueError("fmax cannot be measured with blackboxes (nothing to place)")
    backend = resolve_backend(backend)
    store = SynthCache() if cache is None or cache is True else (cache or None)
    key = cache_key(
        {
            "flow": FLOW_VERSION,
            "verilog": verilog,
            "top": top,
            "target": target,
            "fmax": fmax,
            # keys of runs with the default DSP mapping and device are those of flow 1
            "dsp": flip and not t.dsp_default,
            **({"nodsp": True} if flip and t.dsp_default else {}),
            **({"device": device} if fmax and device != nextpnr.default_device(target) else {}),
            "params": params,
            **({"blackboxes": list(blackboxes)} if blackboxes else {}),
            "yosys": backend_version(backend),
            "nextpnr": nextpnr.nextpnr_version(target) if fmax else None,
        }
    )
    hit = store.get(key) if store is not None else None
    if hit is not None:
        res = dataclasses.replace(Resources.from_dict(hit), cached=True)
    else:
        res = _synthesise(
            verilog, top, target, fmax, dsp, device, params, backend, timeout, blackboxes
        )
        if store is not None:
            store.put(key, res.to_dict())
    return dataclasses.replace(res, latency=latency, initiation_interval=initiation_interval)


NOABC9_NOTE = FLOW_NOTES["abc9 -dff"]


def _synth_run(script_of, sources, outputs, timeout, backend, flows=None):
    """Run ``script_of(flow)`` for each flow in turn until one finishes.

    A failure after synthesis started (assertion, signal, silent exit, missing
    output, an ``ERROR:`` inside a pass) moves to the next flow; a timeout is
    raised at once, as is the last flow's failure. Returns the run and its flow.
    """
    flows = FLOWS if flows is None else flows
    for i, flow in enumerate(flows):
        try:
            return _run(script_of(flow), sources, outputs, timeout, backend), flow
        except SynthError as e:
            if isinstance(e, SynthTimeout) or i == len(flows) - 1:
                raise
    raise AssertionError("unreachable")


def _synthesise(
    verilog, top, target, fmax, dsp, device, params, backend, timeout, blackboxes=()
) -> Resources:
    def metrics_script(flow: str) -> str:
        return (
            _read_cmds(top, params, "design.v", blackboxes=blackboxes)
            + _synth_cmd(target, top, dsp, flow)
            + "\ntee -q -o stat.json stat -json\nltp -noff\nportlist\n"
        )

    run, flow = _synth_run(metrics_script, {"design.v": verilog}, ("stat.json",), timeout, backend)
    notes = (FLOW_NOTES[flow],) if flow in FLOW_NOTES else ()
    depths = {m: int(n) for m, n in _LTP.findall(run.log)}
    counts = cell_counts(run.outputs["stat.json"], top)
    counts = {c: n for c, n in counts.items() if c not in blackboxes}
    res = resources_from(target, counts, depths.get(top))
    dsp_note = targets.target(target).dsp_note
    if dsp and res.dsps and dsp_note:
        notes += (dsp_note,)
    if not fmax:
        return dataclasses.replace(res, notes=notes)
    wrapper = registered_wrapper(top, parse_portlist(run.log, top))

    def wrap_script(flow: str) -> str:
        return (
            _read_cmds(top, params, "design.v wrapper.v", WRAPPER_TOP)
            + _synth_cmd(target, WRAPPER_TOP, dsp, flow)
            + "\nwrite_json wrap.json\n"
        )

    sources = {"design.v": verilog, "wrapper.v": wrapper}
    # start from the flow that worked for the bare design
    flows = FLOWS[FLOWS.index(flow) :] if flow in FLOWS else (flow,)
    wrap, wflow = _synth_run(wrap_script, sources, ("wrap.json",), timeout, backend, flows)
    try:
        pnr = nextpnr.place_and_route(
            wrap.outputs["wrap.json"], target, timeout=timeout, device=device
        )
    except nextpnr.NextpnrError as e:
        kind = SynthTimeout if isinstance(e, YosysTimeout) else SynthError
        raise kind(str(e), e.log_tail, returncode=e.returncode, backend=e.backend) from None
    if wflow != flow and wflow in FLOW_NOTES:
        notes += (FLOW_NOTES[wflow] + " (Fmax wrapper)",)
    if device != nextpnr.default_device(target):
        notes += (f"Fmax placed on {device}",)
    notes = tuple(dict.fromkeys(notes))
    return dataclasses.replace(res, fmax_mhz=pnr.fmax_mhz, notes=notes)


def manifest_timing(verilog_path: Path, top: str) -> tuple[int | None, int | None]:
    """(latency, initiation interval) of ``top`` from a ``manifest.json`` beside the file."""
    from ..design import module_timing

    return module_timing(verilog_path, top)
