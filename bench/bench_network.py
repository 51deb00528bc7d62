"""Whole networks: jsc-tiny / jsc-toy / jsc-s at 4/6/8 bits, fully parallel (stages 0).

Per network: LUT-eq, FF, DSP, latency (per-layer sum through ``synthesise_network``),
the cold synthesis time of all layers (a fresh cache: every distinct layer runs
Yosys once), the flat top (whole exported network, one Yosys run) and its
difference from the per-layer sum, Fmax of the flat top on an LFE5U-85F, and the
test accuracy of the hardware: the exported top simulated (``hdl.rtlsim.verify_network``,
Verilator, random stalls) on the whole test split, next to the integer reference's.
Writes ``bench/results/network.json`` after every network and, with ``--readme``,
the table between the ``network-table`` markers of README.md.

    python bench/bench_network.py [--models jsc-tiny,jsc-toy,jsc-s] [--bits 4,6,8] [--readme]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from readme_section import write_sections

from qspec.files import atomic_write
from qspec.network import QuantisedNetwork

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "network.json"
README = ROOT / "README.md"
SPEC_DIR = Path(tempfile.gettempdir()) / "hwfirst-bench-specs"


def hdl_version() -> str:
    """The commit the generators come from (``+dirty`` when hdl/ has local changes)."""
    root = ROOT
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "hdl"], cwd=root)
        return head + ("+dirty" if dirty.returncode else "")
    except OSError:
        return "unknown"


def spec_path(model: str, bits: int) -> Path:
    return SPEC_DIR / f"{model}-relu-{bits}bit.json"


def load_spec(model: str, bits: int) -> QuantisedNetwork:
    """A shipped checkpoint's QuantisedNetwork at uniform ``bits`` (``python -m models spec``)."""
    path = spec_path(model, bits)
    if not path.exists():
        SPEC_DIR.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "models", "spec", model, "--bits", str(bits), "--out", path]
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, timeout=600)
    return QuantisedNetwork.from_json(path.read_text())


def test_accuracy(model: str, bits: int) -> float | None:
    """Accuracy of the integer reference on the test split (``<spec>.inputs.json``)."""
    from qspec.integer_forward import predict

    spec = load_spec(model, bits)
    inputs = next(iter(SPEC_DIR.glob(f"{spec_path(model, bits).stem}*inputs.json")), None)
    if inputs is None:
        return None
    d = json.loads(inputs.read_text())
    pred = predict(spec, np.array(d["codes"], dtype=np.int64))
    return round(float(np.mean(pred == np.array(d["labels"]))), 4)


def hardware_accuracy(model: str, bits: int, sim: str) -> dict:
    """The exported top simulated on the whole test split (plus 200 random codes)."""
    from hdl.rtlsim import verify_network

    path = spec_path(model, bits)
    load_spec(model, bits)
    inputs = next(iter(SPEC_DIR.glob(f"{path.stem}*inputs.json")), None)
    r = verify_network(path, sim=sim, inputs=inputs, random_codes=200)
    return {
        "hw_accuracy": None if r.hw_accuracy is None else round(r.hw_accuracy, 4),
        "hw_sim": r.sim_version.split(" (")[0],
        "hw_samples": r.samples,
        "hw_mismatches": r.mismatches,
        "hw_latency_seen": r.latency,
        "hw_sim_s": round(r.build_seconds + r.run_seconds, 1),
    }


def bench_one(model, bits, target, *, flat, fmax, timeout, sim=None) -> dict:
    from hdl.export import export_network
    from hdl.synth import SynthError, synthesise
    from hdl.synth.cache import SynthCache
    from hdl.synth.network import NETWORK_DEVICE, synthesise_network

    net = load_spec(model, bits)
    entry = {"model": model, "bits": bits, "target": target, "hdl": hdl_version()}
    entry["accuracy"] = test_accuracy(model, bits)
    with tempfile.TemporaryDirectory(prefix="hwfirst-cold-cache-") as tmp:
        cold = SynthCache(tmp)  # cold: every distinct layer synthesised in this call
        t0 = time.perf_counter()
        r = synthesise_network(net, target, dsp=False, cache=cold, timeout=timeout)
        entry["cold_layers_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        again = synthesise_network(net, target, dsp=False, cache=cold, timeout=timeout)
        entry["warm_s"] = round(time.perf_counter() - t0, 2)
        entry["warm_yosys_runs"] = again.synthesised
    t = r.total
    entry |= {
        "lut_eq": t.lut_eq,
        "lut4": t.lut4,
        "carries": t.carries,
        "ffs": t.ffs,
        "dsps": t.dsps,
        "latency": t.latency,
        "layers": {k: v.lut_eq for k, v in r.layers.items()},
        "layer_seconds": {k: round(v, 1) for k, v in r.layer_seconds.items()},
        "notes": list(t.notes),
    }
    if sim:
        entry |= hardware_accuracy(model, bits, sim)
    if flat or fmax:
        t0 = time.perf_counter()
        # the flat top alone: synthesise_network(flat=True, fmax=True) would also place
        # every layer, which on jsc-s costs more than the top itself
        top = export_network(net, impl="adder_tree", stages=0)
        try:
            f = synthesise(
                top.verilog,
                top.name,
                target,
                dsp=False,
                fmax=fmax,
                device=NETWORK_DEVICE[target] if fmax else None,
                cache=False,
                timeout=timeout,
            )
        except SynthError as e:  # e.g. no legal placement: the per-layer figures still stand
            return entry | {"flat_error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
        entry |= {
            "flat_s": round(time.perf_counter() - t0, 1),
            "flat_lut_eq": f.lut_eq,
            "flat_ffs": f.ffs,
            "flat_minus_sum_lut_eq": f.lut_eq - t.lut_eq,
            "flat_vs_sum": round(f.lut_eq / t.lut_eq, 3),
            "fmax_mhz": None if f.fmax_mhz is None else round(f.fmax_mhz, 1),
            "flat_notes": list(f.notes),
        }
    return entry


def readme_table(rows: list[dict]) -> str:
    head = (
        "| model | bits | test acc: hardware (reference) | LUT-eq | LUT4 | CCU2C | FF | DSP "
        "| latency | Fmax (MHz) | flat top LUT-eq / FF | Yosys s (cold, all layers) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {"jsc-tiny": 0, "jsc-toy": 1, "jsc-s": 2}
    for r in sorted(rows, key=lambda r: (order.get(r["model"], 9), r["model"], r["bits"])):
        if r.get("target") != "ecp5" or "lut_eq" not in r:
            continue
        fmax = "–" if r.get("fmax_mhz") is None else f"{r['fmax_mhz']:.0f}"
        if r.get("flat_error"):
            fmax = "not placed"
        acc = "–" if r.get("accuracy") is None else f"({r['accuracy']:.3f})"
        if r.get("hw_accuracy") is not None:
            bad = f", {r['hw_mismatches']} mismatches" if r.get("hw_mismatches") else ""
            acc = f"{r['hw_accuracy']:.3f} {acc}{bad}"
        flat = f"{r['flat_lut_eq']} / {r['flat_ffs']}" if "flat_lut_eq" in r else "–"
        lines.append(
            f"| {r['model']} | {r['bits']} | {acc} | {r['lut_eq']} | {r['lut4']} | "
            f"{r['carries']} | {r['ffs']} | {r['dsps']} | {r['latency']} | {fmax} | {flat} | "
            f"{r['cold_layers_s']:.0f} |"
        )
    return "\n".join(lines)


def write_readme(rows: list[dict]) -> None:
    write_sections(README, {"network-table": readme_table(rows) + "\n"})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="jsc-tiny,jsc-toy,jsc-s")
    p.add_argument("--bits", default="4,6,8")
    p.add_argument("--targets", default="ecp5")
    p.add_argument("--flat", default="jsc-tiny,jsc-toy", help="models whose flat top is also run")
    p.add_argument("--fmax", default="jsc-tiny,jsc-toy", help="models placed for Fmax (85F)")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument(
        "--sim", default="verilator", help="simulator for the hardware accuracy ('' for none)"
    )
    p.add_argument("--resume", action="store_true")
    p.add_argument("--readme", action="store_true", help="rewrite the README network table")
    p.add_argument("--table-only", action="store_true", help="only rewrite the README table")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.table_only:
        write_readme(list(data.get("networks", {}).values()))
        return 0
    data["meta"] = {
        "what": "adder_tree, stages 0, dsp off; per-layer sum via synthesise_network; "
        "cold = fresh cache; flat = whole exported top; Fmax: flat top on LFE5U-85F",
        "command": "python bench/bench_network.py " + " ".join(argv or sys.argv[1:]),
    }
    rows = data.setdefault("networks", {})
    for model in args.models.split(","):
        for bits in (int(b) for b in args.bits.split(",")):
            for target in args.targets.split(","):
                key = f"{model}/{bits}bit/{target}"
                if args.resume and "lut_eq" in rows.get(key, {}):
                    continue
                try:
                    rows[key] = bench_one(
                        model,
                        bits,
                        target,
                        flat=model in args.flat.split(","),
                        fmax=target == "ecp5" and model in args.fmax.split(","),
                        timeout=args.timeout,
                        sim=args.sim or None,
                    )
                except Exception as e:  # recorded, never reported as numbers
                    why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    rows[key] = {"model": model, "bits": bits, "target": target, "error": why}
                # rows of one file may come from several runs: each names its own
                rows[key]["command"] = data["meta"]["command"]
                print(key, json.dumps(rows[key]), flush=True)
                atomic_write(args.out, json.dumps(data, indent=1))
    if args.readme:
        write_readme(list(rows.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
