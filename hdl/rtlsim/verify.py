"""Simulate an exported network top in an HDL simulator and report hardware accuracy.

:func:`verify_network` takes a network (a ``QuantisedNetwork``, its spec JSON, or
a design ``hdl export network`` or ``search`` already wrote: the ``.v`` or its
directory), runs the exported Verilog with the cocotb testbench
:mod:`hdl.rtlsim.tb_network` on the test split's input codes plus seeded random
codes, and compares every output beat with ``qspec.integer_forward``.  The
result is a :class:`VerifyResult`; bad input raises a one-line ``ValueError``
(its first word names the parameter), a simulator that could not build or run
raises :class:`~hdl.rtlsim.runner.SimulationError`.

With ``netlist="ecp5"`` (or another :data:`hdl.targets.TARGET_NAMES` entry) the design is
first synthesised by the metrics' own flow (:func:`hdl.synth.netlist.synthesise_netlist`)
and the *mapped netlist* is simulated instead, with Yosys's cell models, on the same beats
through the same testbench: it checks the mapping the resource figures come from.

The design on disk is read by :func:`hdl.design.load_design` (one layout:
``<top>.v``, ``<top>.spec.json``, ``<top>.vectors.json`` when the test split was
known, and a ``manifest.json`` entry naming them); a search ``best/trial_N/`` has
no vectors: pass ``inputs`` (``python -m search verify`` does, from the study's
dataset).  The report is :mod:`hdl.rtlsim.report`.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qspec.errors import ParamError
from qspec.integer_forward import integer_forward
from qspec.limits import MAX_RANDOM_CODES, MAX_SAMPLES, MAX_SEED
from qspec.network import QuantisedNetwork
from qspec.vectors import InputSet, check_inputs, inputs_path, read_inputs

from .. import targets
from ..design import ExportedDesign, load_design, write_design
from . import runner
from .report import VerifyResult, format_result
from .runner import SimulationError

__all__ = ["NoVectors", "VerifyResult", "check_simulator", "format_result", "verify_network"]

TB_MODULE = "hdl.rtlsim.tb_network"
TESTS = ("network_random_stalls", "network_full_rate")
FULL_RATE_BEATS = 200  # beats of the full-rate run (latency, II) when stalls are on
DEFAULT_RANDOM = 200
MAX_ERRORS = 8


class NoVectors(ValueError):
    """The design has no test split beside it and none was given (``args[1]``: where we
    looked)."""


def random_rows(net: QuantisedNetwork, n: int, rng: random.Random) -> list[list[int]]:
    """``n`` random input rows, one code in ten an edge (min, max, 0, -1)."""
    fmt = net.input_fmt
    edges = [fmt.min_code, fmt.max_code, 0, -1 if fmt.signed else 1]
    return [
        [rng.choice(edges) if rng.random() < 0.1 else rng.randint(fmt.min_code, fmt.max_code)
         for _ in range(net.in_features)]
        for _ in range(n)
    ]  # fmt: skip


def _accuracy(expected: np.ndarray, labels: list[int]) -> float | None:
    if not labels:
        return None
    predicted = np.argmax(expected[: len(labels)], axis=1)  # first maximum on ties
    return float(np.mean(predicted == np.asarray(labels)))


# --- running -------------------------------------------------------------------


def check_simulator(sim: str | None) -> str:
    """``sim`` (default: Verilator when usable, else Icarus) if it can run here, else a
    one-line :class:`~qspec.errors.ParamError` naming the simulators that can."""
    problem = runner.cocotb_problem()
    if problem is not None:
        raise ValueError(problem)
    if sim is None:
        sim = runner.default_simulator()
    if sim not in runner.SIMULATORS:
        raise ParamError("sim", f"sim must be one of {'|'.join(runner.SIMULATORS)}, got {sim!r}")
    problem = runner.simulator_problem(sim)
    if problem is not None:
        usable = [s for s in runner.SIMULATORS if not runner.simulator_problem(s)]
        why = f"sim {sim}: {problem}; usable here: {'|'.join(usable) or 'none'}"
        raise ParamError("sim", why)
    return sim


def _check_count(name: str, value: int | None, maximum: int) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum
    ):
        raise ParamError(name, f"{name} must be an integer in [0, {maximum}], got {value!r}")


def verify_network(
    design: QuantisedNetwork | str | Path,
    *,
    sim: str | None = None,
    impl: str | None = None,
    stages: int | Sequence[int] | None = None,
    argmax: bool | None = None,
    inputs: InputSet | Mapping[str, Any] | str | Path | None = None,
    samples: int | None = None,
    random_codes: int = DEFAULT_RANDOM,
    stalls: bool = True,
    seed: int = 1,
    build_dir: str | Path | None = None,
    work_dir: str | Path | None = None,
    netlist: str | None = None,
    netlist_verilog: str | None = None,
    clock_mhz: float | None = None,
    target: str | None = None,
) -> VerifyResult:
    """Simulate ``design``'s exported Verilog and compare it with the integer reference.

    ``design``: a ``QuantisedNetwork`` or its spec JSON (exported here with ``impl``
    (default ``adder_tree``), ``stages`` (default 0) and ``argmax``), or an exported
    ``.v`` / directory (see the module doc; then ``impl``/``stages``/``argmax`` must be
    None).  ``inputs``: the test split's codes and labels (a :class:`qspec.vectors.InputSet`,
    its dict, or a ``models spec`` inputs file); default: the vectors file beside the
    design, or for a spec file its ``<stem>.inputs.json``.  ``samples``: the first N of
    them (default all; 0 for none);
    ``random_codes``: seeded random input rows after them.  ``stalls``: random stalls on both
    streams plus a full-rate run of up to 200 beats for latency and II; else one
    full-rate run of every beat.  ``build_dir``: the build cache (default
    :func:`hdl.rtlsim.runner.cache_dir`); ``work_dir``: where the vectors, results XML
    and log go (default: a temporary directory, removed when the design passes).
    ``netlist``: a target (``ecp5``, ``ice40``): simulate the design's mapped netlist for it
    (synthesised here, as the metrics are) instead of its RTL; ``netlist_verilog``: that
    netlist already written (``write_verilog`` of the top, e.g. a deliberately edited
    one), not synthesised again.  A synthesis that fails raises ``SimulationError``.
    ``clock_mhz`` (a spec only): export it pipelined to that clock by ``target``'s delay
    model (default: ``netlist``'s target, else ecp5) instead of ``stages``, and simulate
    that design.
    """
    _check_netlist(netlist, netlist_verilog)
    _check_count("samples", samples, MAX_SAMPLES)
    _check_count("random_codes", random_codes, MAX_RANDOM_CODES)
    _check_count("seed", seed, MAX_SEED)
    with tempfile.TemporaryDirectory(prefix="hwfirst-export-") as tmp:
        clock = None if clock_mhz is None else (clock_mhz, target or netlist or "ecp5")
        d, what, data = _resolve(
            design, Path(tmp), inputs, impl=impl, stages=stages, argmax=argmax, clock=clock
        )
        labelled = _labelled(d, what, data, samples)
        sim = check_simulator(sim)  # after the input checks: they name what is wrong first
        return _simulate(
            d,
            what,
            labelled,
            sim,
            random_codes,
            stalls,
            seed,
            build_dir,
            work_dir,
            netlist,
            netlist_verilog,
        )


def _check_netlist(netlist: str | None, netlist_verilog: str | None) -> None:
    if netlist is not None and netlist not in targets.TARGET_NAMES:
        raise ParamError(
            "netlist",
            f"netlist must be one of {'|'.join(targets.TARGET_NAMES)}, got {netlist!r}",
        )
    if netlist_verilog is not None:
        if netlist is None:
            raise ParamError("netlist_verilog", "netlist_verilog needs netlist (its target)")
        if not isinstance(netlist_verilog, str):
            raise ParamError("netlist_verilog", "netlist_verilog must be Verilog text")


def _netlist_sources(
    d: ExportedDesign, target: str, given: str | None, sim: str
) -> tuple[dict[str, str], dict[str, str], str | None, float | None, tuple[str, ...]]:
    """The sources of ``d``'s mapped netlist for ``target`` with the cell models ``sim``
    needs, its defines, the mapping flow, the synthesis time and its notes."""
    from ..synth.flow import SynthError, module_names
    from ..synth.netlist import cell_models, synthesise_netlist

    if given is None:
        try:
            n = synthesise_netlist(d.verilog, d.top, target)
        except SynthError as e:
            raise SimulationError(
                f"netlist: synthesis for {target} failed: {str(e).splitlines()[0]}"
            ) from None
        text, flow, seconds, notes = n.verilog, n.flow, n.seconds, n.notes
    else:
        if d.top not in module_names(given):
            raise ParamError(
                "netlist_verilog", f"netlist_verilog has no module {d.top!r} (the design's top)"
            )
        text, flow, seconds, notes = given, None, None, ()
    try:
        models, defines = cell_models(target, text, sim)
    except ValueError as e:
        raise ParamError("netlist", str(e).removeprefix("netlist: ")) from None
    sources = {f"{d.top}.{target}_netlist.v": text, f"{target}_cells_sim.v": models}
    return sources, defines, flow, seconds, notes


def _inputs(inputs: InputSet | Mapping[str, Any] | str | Path, net: QuantisedNetwork) -> InputSet:
    try:
        if isinstance(inputs, InputSet):
            return check_inputs(inputs.to_dict(), net, "inputs")
        if isinstance(inputs, Mapping):
            return check_inputs(inputs, net, "inputs")
        return read_inputs(inputs, net, "inputs")
    except ParamError:
        raise
    except ValueError as e:  # the messages start "inputs ...": the parameter given
        raise ParamError("inputs", str(e)) from None


def _resolve(
    design, tmp: Path, inputs, *, impl, stages, argmax, clock=None
) -> tuple[ExportedDesign, str, InputSet | None]:
    """The design to simulate, what it was given as, and its test split (``None``: not
    known).  A spec is exported into ``tmp`` like ``hdl export network`` does, with its
    inputs (``inputs``, else the spec's ``.inputs.json``) written as the vectors file."""
    if isinstance(design, QuantisedNetwork):
        net, what, default = design, f"<network {design.name}>", None
    else:
        path = Path(design)
        if path.is_dir() or path.suffix == ".v":
            given = (("impl", impl), ("stages", stages), ("argmax", argmax), ("clock_mhz", clock))
            for name, value in given:
                if value is not None:
                    raise ParamError(
                        name,
                        f"{name} is only for a spec JSON: {str(path)!r} is already exported",
                    )
            d = load_design(path)
            data = _inputs(inputs, d.net) if inputs is not None else d.read_vectors()
            return d, str(d.verilog_path), data
        if not path.exists():
            raise ValueError(f"design {str(path)!r}: no such file or directory")
        net, what = QuantisedNetwork.read(path, "design"), str(path)
        default = inputs_path(path)
    if inputs is not None:
        data = _inputs(inputs, net)
    elif default is not None and default.is_file():
        data = read_inputs(default, net, "inputs")
    else:
        data = None
    from ..export import export_network  # Amaranth: only when a spec is exported here

    try:
        mod = export_network(
            net,
            impl=impl or "adder_tree",
            stages=0 if stages is None else stages,
            argmax=bool(argmax),
            **({} if clock is None else {"clock_mhz": clock[0], "target": clock[1]}),
        )
    except ParamError as e:
        raise ParamError(e.param, str(e).splitlines()[0]) from None
    except ValueError as e:
        raise ValueError(str(e).splitlines()[0]) from None
    d = load_design(write_design(net, mod, tmp, data))
    assert (d.vectors is None) == (data is None), "the export writes the vectors"
    return d, what, d.read_vectors()


def _labelled(
    d: ExportedDesign, what: str, data: InputSet | None, samples: int | None
) -> dict[str, Any]:
    """The labelled rows to simulate: ``{"dataset", "codes", "labels"}`` (maybe empty)."""
    if data is None:
        if samples == 0:
            return {"dataset": None, "codes": [], "labels": []}
        beside = (
            f"no {d.top}.vectors.json beside {what}"
            if what.endswith(".v")
            else f"no .inputs.json beside {what}"
        )
        raise NoVectors(
            f"inputs: no test vectors ({beside}): pass inputs (the .inputs.json `python -m "
            "models spec` writes), or samples=0 for random codes only",
            beside,
        )
    data = data.head(samples)
    return {"dataset": data.dataset, "codes": data.codes, "labels": data.labels}


def _simulate(
    d: ExportedDesign,
    what: str,
    labelled: dict[str, Any],
    sim: str,
    n_random: int,
    stalls: bool,
    seed: int,
    build_dir: str | Path | None,
    work_dir: str | Path | None,
    netlist: str | None = None,
    netlist_verilog: str | None = None,
) -> VerifyResult:
    codes = list(labelled["codes"])
    labels = list(labelled["labels"])
    codes += random_rows(d.net, n_random, random.Random(f"{d.top}-{seed}"))
    if not codes:
        raise ValueError("samples and random are both 0: nothing to simulate")
    expected = np.asarray(integer_forward(d.net, codes))
    ref_accuracy = _accuracy(expected, labels)
    vectors = {
        "codes": codes,
        "expected": expected.tolist(),
        "labels": labels,
        "reference_accuracy": ref_accuracy if ref_accuracy is not None else 0.0,
        "in_width": d.net.input_fmt.width,
        "out_width": d.net.output_fmt.width,
        "latency": d.latency,
        "argmax": d.argmax,
    }
    sources, defines = {f"{d.top}.v": d.verilog}, {}
    flow, synth_seconds, synth_notes = None, None, ()
    if netlist is not None:  # before the work directory: a failure here leaves none behind
        sources, defines, flow, synth_seconds, synth_notes = _netlist_sources(
            d, netlist, netlist_verilog, sim
        )
    keep = work_dir is not None
    wd = Path(work_dir) if keep else Path(tempfile.mkdtemp(prefix="hwfirst-verify-"))
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "vectors.json").write_text(json.dumps(vectors))
    result_file = wd / "tb_result.json"
    result_file.unlink(missing_ok=True)
    if netlist is not None:  # kept with the log: the netlist that was simulated
        (wd / f"{d.top}.{netlist}_netlist.v").write_text(sources[f"{d.top}.{netlist}_netlist.v"])
    t0 = time.monotonic()
    b = runner.build(sim, d.top, sources, build_dir, quiet=True, defines=defines)
    t1 = time.monotonic()
    env = {
        "HWFIRST_TB_VECTORS": str(wd / "vectors.json"),
        "HWFIRST_TB_RESULT": str(result_file),
        "HWFIRST_TB_SEED": str(seed),
        "HWFIRST_TB_FULL_RATE_BEATS": str(FULL_RATE_BEATS) if stalls else "all",
    }
    tests = TESTS if stalls else TESTS[1:]
    res = runner.run(b, TB_MODULE, wd, env, testcase=list(tests), seed=seed, quiet=True)
    t2 = time.monotonic()
    reports = json.loads(result_file.read_text()) if result_file.is_file() else {}
    main = reports.get(tests[0])
    if main is None:
        raise SimulationError(
            f"{sim}: the testbench wrote no report for {tests[0]} "
            f"({res.num_failed} of {res.num_tests} cocotb tests failed); log: {res.log}"
        )
    full = reports.get("network_full_rate", {})
    errors: list[str] = []
    problem = runner.check_passed(res, len(tests))
    if problem:
        errors.append(problem)
    for name in tests:
        if name not in reports:
            errors.append(f"{name} wrote no report")
        errors += reports.get(name, {}).get("errors", [])
    latencies = tuple(full.get("latencies", []))
    result = VerifyResult(
        sim=sim,
        sim_version=runner.version_text(sim),
        top=d.top,
        design=what,
        impl=d.params.get("impl"),
        stages=tuple(d.params["stages"]) if "stages" in d.params else None,
        clock_mhz=d.params.get("clock", {}).get("mhz"),
        clock_target=d.params.get("clock", {}).get("target"),
        dataset=labelled["dataset"],
        samples=len(labels),
        random_codes=n_random,
        stalls=stalls,
        seed=seed,
        mismatches=int(main["mismatches"]),
        class_mismatches=int(main["class_mismatches"]),
        hw_accuracy=main["hardware_accuracy"],
        ref_accuracy=ref_accuracy,
        latency=latencies[0] if len(latencies) == 1 else None,
        expected_latency=d.latency,
        latencies=latencies,
        errors=tuple(errors[:MAX_ERRORS]),
        tests_run=res.num_tests,
        tests_failed=res.num_failed,
        build_seconds=round(t1 - t0, 3),
        run_seconds=round(t2 - t1, 3),
        log=str(res.log),
        notes=d.notes + synth_notes,
        netlist=netlist,
        netlist_flow=flow,
        synth_seconds=synth_seconds,
    )
    if result.passed and not keep:
        shutil.rmtree(wd, ignore_errors=True)
        result = dataclasses.replace(result, log=None)
    return result
