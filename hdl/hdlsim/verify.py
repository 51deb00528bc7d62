"""Simulate an exported network top in an HDL simulator and report hardware accuracy.

:func:`verify_network` takes a network (a ``QuantisedNetwork``, its spec JSON, or
a design ``hdl export network`` or ``search`` already wrote: the ``.v`` or its
directory), runs the exported Verilog with the cocotb testbench
:mod:`hdl.hdlsim.tb_network` on the test split's input codes plus seeded random
codes, and compares every output beat with ``qspec.integer_forward``.  The
result is a :class:`VerifyResult`; bad input raises a one-line ``ValueError``
(its first word names the parameter), a simulator that could not build or run
raises :class:`~hdl.hdlsim.runner.SimulationError`.

Layouts of an exported design (all written by this project):

* ``hdl export network SPEC --out DIR``: ``DIR/<top>.v``, ``<top>.spec.json``,
  ``<top>.vectors.json`` (the test split's codes and labels) and a
  ``manifest.json`` entry naming them (with the latency and ``argmax``);
* ``search`` reports: ``results/<study>/best/trial_N/`` holds ``<top>.v``,
  ``spec.json`` and ``manifest.json`` but no vectors: pass ``inputs`` (``python
  -m search verify`` does, from the study's dataset).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qspec.errors import ParamError
from qspec.integer_forward import integer_forward
from qspec.network import QuantisedNetwork

from . import runner
from .runner import SimulationError

TB_MODULE = "hdl.hdlsim.tb_network"
TESTS = ("network_random_stalls", "network_full_rate")
FULL_RATE_BEATS = 200  # beats of the full-rate run (latency, II) when stalls are on
DEFAULT_RANDOM = 200
MAX_ERRORS = 8


class NoVectors(ValueError):
    """The design has no test split beside it and none was given (``args[1]``: where we
    looked)."""


@dataclass(frozen=True)
class VerifyResult:
    """What one simulation of an exported network top showed."""

    sim: str  # verilator | icarus
    sim_version: str
    top: str  # the Verilog module simulated
    design: str  # what was given: the .v, or the spec it was exported from (or "<network>")
    impl: str | None  # Linear layers (from the export's manifest entry)
    stages: tuple[int, ...] | None  # pipeline stages per layer (ditto)
    dataset: str | None  # of the labelled samples
    samples: int  # labelled test-split samples simulated (first N)
    random_codes: int  # seeded random input codes simulated after them
    stalls: bool  # random valid/ready stalls on both streams (else full rate only)
    seed: int
    mismatches: int  # beats whose logits differ from the integer reference or never came out
    class_mismatches: int  # argmax designs: beats with a wrong class index
    hw_accuracy: float | None  # on the labelled samples (None: none simulated)
    ref_accuracy: float | None  # the integer reference's, same samples
    latency: int | None  # cycles in -> out seen at full rate (None: not one value)
    expected_latency: int | None  # what the export recorded (None: not known)
    latencies: tuple[int, ...]  # every latency seen at full rate
    errors: tuple[str, ...]  # the testbench's first failure messages (protocol, counts)
    tests_run: int  # from the results XML
    tests_failed: int
    build_seconds: float
    run_seconds: float
    log: str | None  # the simulator log (None: removed, the design passed)
    notes: tuple[str, ...] = ()

    @property
    def beats(self) -> int:
        return self.samples + self.random_codes

    @property
    def passed(self) -> bool:
        """Bit-exact against the reference, stream rules kept, every cocotb test passed."""
        return (
            self.mismatches == 0
            and self.class_mismatches == 0
            and not self.errors
            and self.tests_failed == 0
            and self.tests_run > 0
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["latencies"] = list(self.latencies)
        d["stages"] = None if self.stages is None else list(self.stages)
        d["errors"] = list(self.errors)
        d["notes"] = list(self.notes)
        return {**d, "beats": self.beats, "passed": self.passed}


@dataclass(frozen=True)
class Design:
    """An exported network top found on disk, with what is needed to check it."""

    top: str
    verilog_path: Path
    verilog: str
    net: QuantisedNetwork
    latency: int | None
    argmax: bool
    vectors: Path | None  # codes and labels of the test split (a vectors or inputs file)
    params: dict[str, Any]  # the manifest entry's params ({} when there is none)
    notes: tuple[str, ...] = ()


# --- finding the design ----------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"{what} {str(path)!r}: cannot read: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {str(path)!r}: not valid JSON: {e}") from None


def read_spec(path: Path, what: str = "design") -> QuantisedNetwork:
    return QuantisedNetwork.read(path, what)


def _manifest_networks(d: Path) -> dict[str, dict[str, Any]]:
    """Network tops listed in ``d/manifest.json`` whose Verilog is there."""
    path = d / "manifest.json"
    if not path.is_file():
        return {}
    doc = _read_json(path, "manifest")
    mods = doc.get("modules", {}) if isinstance(doc, dict) else {}
    return {
        name: e
        for name, e in sorted(mods.items())
        if isinstance(e, dict) and e.get("kind") == "network" and (d / e.get("file", "")).is_file()
    }


def _design_in_dir(d: Path) -> Path:
    """The one network top's ``.v`` in ``d`` (an export directory, a search ``trial_N/``
    or a search ``best/`` holding one trial)."""
    tops = _manifest_networks(d)
    if len(tops) == 1:
        return d / next(iter(tops.values()))["file"]
    if len(tops) > 1:
        names = ", ".join(f"{e['file']}" for e in tops.values())
        raise ValueError(
            f"design {str(d)!r} holds {len(tops)} network tops ({names}); name one .v file"
        )
    files = sorted(d.glob("*.v"))
    if len(files) == 1:
        return files[0]
    if len(files) > 1:
        raise ValueError(
            f"design {str(d)!r} holds {len(files)} .v files and no manifest.json naming a "
            "network top; name one .v file"
        )
    subdirs = sorted(p for p in d.iterdir() if p.is_dir() and (_manifest_networks(p)))
    if len(subdirs) == 1:
        return _design_in_dir(subdirs[0])
    if len(subdirs) > 1:
        names = ", ".join(p.name for p in subdirs[:6]) + (", ..." if len(subdirs) > 6 else "")
        raise ValueError(f"design {str(d)!r} holds {len(subdirs)} designs ({names}); name one")
    raise ValueError(
        f"design {str(d)!r}: no network Verilog here (expected what `python -m hdl export "
        "network` or `python -m search` writes)"
    )


def load_design(path: str | Path) -> Design:
    """The exported network top at ``path`` (a ``.v`` or a directory), with its spec JSON,
    manifest entry and vectors file when they are beside it."""
    path = Path(path)
    if path.is_dir():
        path = _design_in_dir(path)
    if not path.is_file():
        raise ValueError(f"design {str(path)!r}: no such file or directory")
    d, top = path.parent, path.stem
    try:
        verilog = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or type(e).__name__
        raise ValueError(f"design {str(path)!r}: cannot read: {why}") from None
    if f"module {top}(" not in verilog and f"module {top} (" not in verilog:
        raise ValueError(f"design {str(path)!r}: no module {top} in it (the top is the file stem)")
    entry = _manifest_networks(d).get(top, {})
    candidates = [entry.get("spec"), f"{top}.spec.json", "spec.json"]
    spec_path = next((d / c for c in candidates if c and (d / c).is_file()), None)
    if spec_path is None:
        raise ValueError(
            f"design {str(path)!r}: no spec JSON beside it (looked for {top}.spec.json, spec.json)"
        )
    net = read_spec(spec_path, "spec")
    notes = []
    params = entry.get("params", {})
    want_sha = params.get("spec_sha256")
    if want_sha and hashlib.sha256(net.to_json().encode()).hexdigest() != want_sha:
        raise ValueError(
            f"spec {str(spec_path)!r} is not the spec {top} was exported from "
            "(manifest spec_sha256 differs)"
        )
    if entry.get("sha256") and hashlib.sha256(verilog.encode()).hexdigest() != entry["sha256"]:
        notes.append(f"{path.name} differs from its manifest entry (edited after export)")
    vec_candidates = [entry.get("vectors"), f"{top}.vectors.json"]
    vectors = next((d / c for c in vec_candidates if c and (d / c).is_file()), None)
    latency = entry.get("latency")
    argmax = bool(params.get("argmax", False))
    if vectors is not None and not entry:
        doc = _read_json(vectors, "vectors")
        latency, argmax = doc.get("latency"), bool(doc.get("argmax", False))
    if not entry:
        notes.append("no manifest entry: latency not checked" if latency is None else "")
    return Design(
        top, path, verilog, net, latency, argmax, vectors, params, tuple(n for n in notes if n)
    )


def export_design(
    net: QuantisedNetwork,
    out_dir: Path,
    *,
    impl: str = "adder_tree",
    stages: int | Sequence[int] = 0,
    argmax: bool = False,
    inputs: Mapping[str, Any] | None = None,
) -> Design:
    """Export ``net`` as ``hdl export network`` does (Verilog, spec, vectors when ``inputs``
    are given, manifest) into ``out_dir`` and load it back."""
    from ..export import export_network, network_files, write_network

    try:
        mod = export_network(net, impl=impl, stages=stages, argmax=argmax)
    except ParamError as e:
        raise ParamError(e.param, str(e).splitlines()[0]) from None
    except ValueError as e:
        raise ValueError(str(e).splitlines()[0]) from None
    files = network_files(net, mod, dict(inputs) if inputs is not None else None)
    write_network(mod, files, out_dir)
    return load_design(out_dir / f"{mod.name}.v")


def read_inputs(path: str | Path, net: QuantisedNetwork, option: str = "inputs") -> dict:
    """Test-split codes and labels from a ``models spec`` inputs file or a vectors file."""
    from ..export import read_network_inputs

    return read_network_inputs(Path(path), net, option)


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


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ParamError(name, f"{name} must be an integer >= 0, got {value!r}")


def verify_network(
    design: QuantisedNetwork | str | Path,
    *,
    sim: str | None = None,
    impl: str | None = None,
    stages: int | Sequence[int] | None = None,
    argmax: bool | None = None,
    inputs: Mapping[str, Any] | str | Path | None = None,
    samples: int | None = None,
    random_codes: int = DEFAULT_RANDOM,
    stalls: bool = True,
    seed: int = 1,
    build_dir: str | Path | None = None,
    work_dir: str | Path | None = None,
) -> VerifyResult:
    """Simulate ``design``'s exported Verilog and compare it with the integer reference.

    ``design``: a ``QuantisedNetwork`` or its spec JSON (exported here with ``impl``
    (default ``adder_tree``), ``stages`` (default 0) and ``argmax``), or an exported
    ``.v`` / directory (see the module doc; then ``impl``/``stages``/``argmax`` must be
    None).  ``inputs``: the test split's codes and labels (a dict or a ``models spec``
    inputs file); default: the vectors file beside the design, or for a spec file its
    ``<stem>.inputs.json``.  ``samples``: the first N of them (default all; 0 for none);
    ``random_codes``: seeded random input rows after them.  ``stalls``: random stalls on both
    streams plus a full-rate run of up to 200 beats for latency and II; else one
    full-rate run of every beat.  ``build_dir``: the build cache (default
    :func:`hdl.hdlsim.runner.cache_dir`); ``work_dir``: where the vectors, results XML
    and log go (default: a temporary directory, removed when the design passes).
    """
    _check_count("samples", samples)
    _check_count("random_codes", random_codes)
    _check_count("seed", seed)
    with tempfile.TemporaryDirectory(prefix="hwfirst-export-") as tmp:
        d, what, data = _resolve(design, Path(tmp), inputs, impl=impl, stages=stages, argmax=argmax)
        labelled = _labelled(d, what, data, samples)
        sim = check_simulator(sim)  # after the input checks: they name what is wrong first
        return _simulate(d, what, labelled, sim, random_codes, stalls, seed, build_dir, work_dir)


def _inputs(inputs: Mapping[str, Any] | str | Path, net: QuantisedNetwork) -> dict[str, Any]:
    try:
        if isinstance(inputs, Mapping):
            return read_inputs_dict(inputs, net)
        return read_inputs(inputs, net, "inputs")
    except ParamError:
        raise
    except ValueError as e:  # the messages start "inputs ...": the parameter given
        raise ParamError("inputs", str(e)) from None


def _resolve(
    design, tmp: Path, inputs, *, impl, stages, argmax
) -> tuple[Design, str, dict[str, Any] | None]:
    """The design to simulate, what it was given as, and its test split (``None``: not
    known).  A spec is exported into ``tmp`` like ``hdl export network`` does, with its
    inputs (``inputs``, else SPEC stem + .inputs.json) written as the vectors file."""
    if isinstance(design, QuantisedNetwork):
        net, what, default = design, f"<network {design.name}>", None
    else:
        path = Path(design)
        if path.is_dir() or path.suffix == ".v":
            for name, value in (("impl", impl), ("stages", stages), ("argmax", argmax)):
                if value is not None:
                    raise ParamError(
                        name,
                        f"{name} is only for a spec JSON: {str(path)!r} is already exported",
                    )
            d = load_design(path)
            if inputs is not None:
                data = _inputs(inputs, d.net)
            elif d.vectors is not None:
                data = read_inputs(d.vectors, d.net, "vectors")
            else:
                data = None
            return d, str(d.verilog_path), data
        if not path.exists():
            raise ValueError(f"design {str(path)!r}: no such file or directory")
        net, what = read_spec(path), str(path)
        base = path.with_suffix("") if path.suffix == ".json" else path
        default = base.with_name(base.name + ".inputs.json")
    if inputs is not None:
        data = _inputs(inputs, net)
    elif default is not None and default.is_file():
        data = read_inputs(default, net, "inputs")
    else:
        data = None
    d = export_design(
        net,
        tmp,
        impl=impl or "adder_tree",
        stages=0 if stages is None else stages,
        argmax=bool(argmax),
        inputs=data,
    )
    assert (d.vectors is None) == (data is None), "the export writes the vectors"
    data = read_inputs(d.vectors, d.net, "vectors") if d.vectors is not None else None
    return d, what, data


def _labelled(
    d: Design, what: str, data: dict[str, Any] | None, samples: int | None
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
    n = len(data["codes"]) if samples is None else min(samples, len(data["codes"]))
    return {
        "dataset": data.get("dataset"),
        "codes": data["codes"][:n],
        "labels": data["labels"][:n],
    }


def read_inputs_dict(inputs: Mapping[str, Any], net: QuantisedNetwork) -> dict:
    """An inputs dict checked like a file (through a temporary file: one checker)."""
    with tempfile.TemporaryDirectory(prefix="hwfirst-inputs-") as tmp:
        p = Path(tmp) / "inputs.json"
        p.write_text(json.dumps(dict(inputs)))
        return read_inputs(p, net, "inputs")


def _simulate(
    d: Design,
    what: str,
    labelled: dict[str, Any],
    sim: str,
    n_random: int,
    stalls: bool,
    seed: int,
    build_dir: str | Path | None,
    work_dir: str | Path | None,
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
    keep = work_dir is not None
    wd = Path(work_dir) if keep else Path(tempfile.mkdtemp(prefix="hwfirst-verify-"))
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "vectors.json").write_text(json.dumps(vectors))
    result_file = wd / "tb_result.json"
    result_file.unlink(missing_ok=True)
    t0 = time.monotonic()
    b = runner.build(sim, d.top, {f"{d.top}.v": d.verilog}, build_dir, quiet=True)
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
        notes=d.notes,
    )
    if result.passed and not keep:
        shutil.rmtree(wd, ignore_errors=True)
        result = dataclasses.replace(result, log=None)
    return result


# --- reporting ------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def format_result(r: VerifyResult) -> str:
    """The command line's report: a few aligned lines, the verdict last."""
    how = []
    if r.impl is not None:
        how.append(r.impl)
    if r.stages is not None:
        how.append("stages " + ",".join(map(str, r.stages)))
    source = r.design if r.design.endswith(".v") else f"exported from {r.design}"
    beats = []
    if r.samples:
        beats.append(f"{r.samples} test samples" + (f" ({r.dataset})" if r.dataset else ""))
    if r.random_codes:
        beats.append(f"{r.random_codes} random codes")
    mode = "random stalls on both streams" if r.stalls else "full rate, no stalls"
    if r.latency is not None:
        latency = f"{r.latency} cycle{'s' * (r.latency != 1)} at full rate"
    else:
        latency = "not one value: " + (",".join(map(str, r.latencies)) or "nothing came out")
    if r.expected_latency is not None:
        latency += f" (recorded {r.expected_latency})"
    named = r.sim_version.lower().startswith(r.sim[:6])  # "Verilator 5.48.0 ...", "Icarus ..."
    simulator = r.sim_version if named else f"{r.sim} ({r.sim_version})"
    lines = [
        ("simulator", simulator),
        ("design", f"{r.top}, {source}" + (f" ({', '.join(how)})" if how else "")),
        ("beats", f"{' + '.join(beats)}; {mode}; seed {r.seed}"),
        ("mismatches", f"{r.mismatches} of {r.beats} beats vs the integer reference"
         + (f", {r.class_mismatches} class indices" if r.class_mismatches else "")),
        ("hw accuracy", _pct(r.hw_accuracy) + (" (test split)" if r.samples else "")),
        ("ref accuracy", _pct(r.ref_accuracy)),
        ("latency", latency),
        ("time", f"build {r.build_seconds:.1f} s, run {r.run_seconds:.1f} s"),
    ]  # fmt: skip
    lines += [("note", n) for n in r.notes]
    if r.passed:
        lines.append(("result", "bit-exact"))
    else:
        lines.append(("result", "FAILED: not bit-exact" if r.mismatches else "FAILED"))
        lines += [("error", e) for e in r.errors]
        lines.append(("log", r.log or "-"))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
