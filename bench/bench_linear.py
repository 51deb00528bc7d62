"""Linear layers: adder_tree vs mul vs da4ml 0.6.0 -- LUT-equivalents and Yosys wall time.

Every Linear layer of jsc-toy and jsc-s (trained checkpoints, uniform 4/6/8-bit
weights and activations) is built three ways computing the same function (matrix
product + bias + re-quantisation to the layer's output format, same rounding and
overflow): ``LinearLayer(impl="adder_tree")``, ``"adder_tree_nosub"``, ``impl="mul"`` and
da4ml's CMVM (``bench/da4ml_ref.py``; its Verilog is checked against
``qspec.integer_forward`` on random vectors with Icarus). Each is synthesised
without the cache (the time is a real Yosys run) for ECP5 ``-nodsp`` and iCE40.
Runs exceeding ``--timeout`` are recorded as ``"> timeout"``; results are written
after every run, so a cut-off benchmark keeps what finished (``--resume`` skips it).

    python bench/bench_linear.py [--models jsc-toy,jsc-s] [--bits 4,6,8] [--resume]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_network import hdl_version, load_spec  # noqa: E402
from da4ml_ref import check_on_vectors, da4ml_linear  # noqa: E402
from readme_section import write_sections  # noqa: E402

from hdl.export import export_layer  # noqa: E402
from hdl.layers.linear import LinearLayer  # noqa: E402
from hdl.synth import SynthError, SynthTimeout, synthesise  # noqa: E402
from hdl.targets import TARGET_NAMES  # noqa: E402
from hdl.targets import TARGETS as REGISTRY  # noqa: E402
from qspec.files import atomic_write  # noqa: E402

OUT = Path(__file__).parent / "results" / "linear.json"
TARGETS = TARGET_NAMES
DESIGNS = ("adder_tree", "adder_tree_nosub", "da4ml", "mul")
OURS = ("adder_tree", "adder_tree_nosub")
# the design each target's table shows as ours: its preferred Linear impl
TABLE_OURS = {name: t.linear_impl for name, t in REGISTRY.items()}
VECTORS = 300
RUN_ID = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # ratios pair entries of one run


def build(layer, design: str) -> tuple[str, str, float]:
    """(Verilog, top, generation seconds) of one layer built by ``design``."""
    t0 = time.perf_counter()
    if design == "da4ml":
        ref = da4ml_linear(layer, f"da4ml_{layer.name}")
        return ref.verilog, ref.name, time.perf_counter() - t0
    mod = export_layer(LinearLayer((layer,), impl=design), (layer,), design, 0)
    return mod.verilog, mod.name, time.perf_counter() - t0


def check_da4ml(layer, seed: int = 0) -> int:
    """Mismatches of da4ml's Verilog vs the integer reference on random + extreme codes."""
    ref = da4ml_linear(layer, f"da4ml_{layer.name}")
    rng = np.random.default_rng(seed)
    f = layer.in_fmt
    x = rng.integers(f.min_code, f.max_code + 1, size=(VECTORS, layer.in_features))
    x[0], x[1] = f.min_code, f.max_code
    with tempfile.TemporaryDirectory(prefix="da4ml-check-") as tmp:
        return check_on_vectors(layer, ref, x, Path(tmp))


HDL_VERSION = hdl_version()


def run_one(layer, design: str, target: str, timeout: float) -> dict:
    verilog, top, gen_s = build(layer, design)
    entry = {
        "module": top,
        "generate_s": round(gen_s, 3),
        "verilog_bytes": len(verilog),
        "hdl": HDL_VERSION,
        "run": RUN_ID,
    }
    t0 = time.perf_counter()
    try:
        r = synthesise(verilog, top, target, dsp=False, cache=False, timeout=timeout)
    except SynthTimeout:
        return entry | {"status": "timeout", "yosys_s": f"> {timeout:g}"}
    except SynthError as e:
        return entry | {"status": "crash", "error": str(e).splitlines()[0]}
    return entry | {
        "status": "ok",
        "yosys_s": round(time.perf_counter() - t0, 2),
        "lut_eq": r.lut_eq,
        "lut4": r.lut4,
        "carries": r.carries,
        "ffs": r.ffs,
        "dsps": r.dsps,
        "depth": r.depth,
        "notes": list(r.notes),
    }


def ratios(cases: dict) -> dict:
    """Each of ours / mul and / da4ml (LUT-eq and time), where both finished."""
    out = {}
    for ours in OURS:
        for other in ("mul", "da4ml"):
            a, b = cases.get(ours, {}), cases.get(other, {})
            if a.get("status") != "ok" or a.get("run") != b.get("run"):
                continue  # only entries of one run are compared
            tag = "" if ours == "adder_tree" else f"{ours}_"
            if b.get("status") == "ok":
                out[f"{tag}lut_eq_vs_{other}"] = round(a["lut_eq"] / b["lut_eq"], 3)
                out[f"{tag}time_vs_{other}"] = round(a["yosys_s"] / b["yosys_s"], 3)
            elif b.get("status") == "timeout":  # the other did not finish: an upper bound
                limit = float(b["yosys_s"].lstrip("> "))
                out[f"{tag}time_vs_{other}_below"] = round(a["yosys_s"] / limit, 3)
    return out


def summarise(results: dict) -> dict:
    """Per run, target and comparison: ratio of sums over the layers where both finished (in
    that run), the worst per-layer ratio, and the layers compared."""
    out: dict = {}
    for target in TARGETS:
        for ours, other in ((o, x) for o in OURS for x in ("mul", "da4ml")):
            pairs: dict = {}
            for key, entry in results.items():
                c = entry.get(target) or {}
                a, b = c.get(ours, {}), c.get(other, {})
                if a.get("status") == b.get("status") == "ok" and a.get("run") == b.get("run"):
                    pairs.setdefault(a.get("run") or "first", []).append((key, a, b))
            for run, ps in pairs.items():
                out.setdefault(run, {}).setdefault(target, {})[f"{ours}/{other}"] = {
                    "layers": [k for k, _, _ in ps],
                    "lut_eq_sum_ratio": round(
                        sum(a["lut_eq"] for _, a, _ in ps) / sum(b["lut_eq"] for _, _, b in ps), 3
                    ),
                    "time_sum_ratio": round(
                        sum(a["yosys_s"] for _, a, _ in ps) / sum(b["yosys_s"] for _, _, b in ps),
                        3,
                    ),
                    "lut_eq_worst": round(max(a["lut_eq"] / b["lut_eq"] for _, a, b in ps), 3),
                    "time_worst": round(max(a["yosys_s"] / b["yosys_s"] for _, a, b in ps), 3),
                }
    return out


def readme_table(results: dict, target: str = "ecp5") -> str:
    """Every layer our design finished: LUT-eq and Yosys seconds of the three designs and the
    ratios where the other finished in the same run ("> T" s: timed out, "–": not run)."""
    ours = TABLE_OURS[target]
    lines = [
        f"| layer | in→out | {ours} LUT-eq | mul | da4ml | ÷ mul | ÷ da4ml "
        f"| Yosys s {ours} / mul / da4ml | ÷ mul | ÷ da4ml |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(e: dict, key: str, fmt: str) -> str:
        if e.get("status") == "ok":
            return fmt.format(e[key])
        return str(e["yosys_s"]) if e.get("status") == "timeout" else "–"

    def ratio(a: dict, b: dict, key: str) -> str:
        same = b.get("status") == "ok" and b.get("run") == a.get("run")
        return f"{a[key] / b[key]:.2f}" if same else "–"

    for key, entry in results.items():
        c = entry.get(target) or {}
        a, m, q = (c.get(x, {}) for x in (ours, "mul", "da4ml"))
        if a.get("status") != "ok":
            continue
        lines.append(
            f"| {key} | {entry['shape']} | {a['lut_eq']} | {cell(m, 'lut_eq', '{}')} | "
            f"{cell(q, 'lut_eq', '{}')} | {ratio(a, m, 'lut_eq')} | {ratio(a, q, 'lut_eq')} | "
            f"{a['yosys_s']:.1f} / {cell(m, 'yosys_s', '{:.1f}')} / "
            f"{cell(q, 'yosys_s', '{:.1f}')} | {ratio(a, m, 'yosys_s')} | "
            f"{ratio(a, q, 'yosys_s')} |"
        )
    return "\n".join(lines)


def write_readme(results: dict) -> None:
    """The ECP5 and iCE40 tables between their markers in README.md."""
    readme = Path(__file__).resolve().parent.parent / "README.md"
    sections = {"linear-table": "ecp5", "linear-table-ice40": "ice40"}
    write_sections(readme, {m: readme_table(results, t) + "\n" for m, t in sections.items()})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="jsc-toy,jsc-s")
    p.add_argument("--bits", default="4,6,8")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--resume", action="store_true", help="keep finished entries of the JSON")
    p.add_argument("--redo", default="", help="designs to re-run even with --resume")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table-only", action="store_true", help="only rewrite the README table")
    args = p.parse_args(argv)
    if args.table_only:
        write_readme(json.loads(args.out.read_text())["layers"])
        return 0
    data = json.loads(args.out.read_text()) if args.resume and args.out.exists() else {}
    data.setdefault("meta", {})
    data["meta"].update(
        {
            "what": "per Linear layer: LUT-eq (ECP5 LUT4+2*CCU2C, -nodsp; iCE40 LUT4) and "
            "wall time of one uncached Yosys 0.70 run (pyosys), same integer function",
            "timeout_s": args.timeout,
        }
    )
    cmd = "python bench/bench_linear.py " + " ".join(argv or sys.argv[1:])
    data["meta"]["commands"] = data["meta"].get("commands", []) + [cmd.strip()]
    results = data.setdefault("layers", {})

    def save():
        atomic_write(args.out, json.dumps(data, indent=1))

    models, bits = args.models.split(","), [int(b) for b in args.bits.split(",")]
    jobs = []
    for model in models:
        for b in bits:
            for layer in load_spec(model, b).linear_layers:
                key = f"{model}/{b}bit/{layer.name}"
                shape = f"{layer.in_features}->{layer.out_features}"
                entry = results.setdefault(key, {"shape": shape})
                if "da4ml_check_mismatches" not in entry:
                    entry["da4ml_check_mismatches"] = check_da4ml(layer)
                    entry["da4ml_check_vectors"] = VECTORS
                    save()
                for target in args.targets.split(","):
                    for design in args.designs.split(","):
                        jobs.append((key, layer, target, design))
    # the multiplier designs of the big layers are the slow ones: run them last
    jobs.sort(key=lambda j: (j[3] == "mul", j[3] == "mul" and j[1].in_features >= 32))
    for key, layer, target, design in jobs:
        cases = results[key].setdefault(target, {})
        done = cases.get(design, {}).get("status") in ("ok", "timeout")
        if args.resume and done and design not in args.redo.split(","):
            continue
        cases[design] = run_one(layer, design, target, args.timeout)
        results[key].setdefault("ratios", {})[target] = ratios(cases)
        c = cases[design]
        print(f"{key} {target} {design}: {c.get('lut_eq')} LUT-eq, {c.get('yosys_s')} s "
              f"[{c['status']}]", flush=True)  # fmt: skip
        data["summary"] = summarise(results)
        save()
    data["summary"] = summarise(results)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
