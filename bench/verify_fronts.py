"""Hardware accuracy of every front design of bench_fronts.py, simulated: equal to the reference.

For each ``model/kind`` of bench/results/fronts.json the study bench_fronts.py left in
``--work`` (``<work>/<model>_<kind>``) is checked by ``python -m search verify --study-dir
DIR --json``: every best trial of its best.json (the Pareto front) is simulated on the whole
test split plus 200 seeded random codes, with random stalls on both streams. Each front
design of fronts.json must be among them with the same config, bit-exact (0 mismatches,
every cocotb test passed), its hardware accuracy equal to the integer reference's, and the
reference equal to the test accuracy the trial recorded.

    python bench/verify_fronts.py [--work /work/fronts] [--keys jsc-toy/trained,...] [--sim S]

Writes bench/results/fronts_verify.json after every study; exits 1 if a design mismatches,
differs from the reference or was not simulated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qspec.files import atomic_write  # noqa: E402

FRONTS = ROOT / "bench" / "results" / "fronts.json"
OUT = ROOT / "bench" / "results" / "fronts_verify.json"


def study_dir(work: Path, key: str) -> Path:
    """Where bench_fronts.py put the study of ``key`` ("jsc-toy/trained")."""
    model, kind = key.split("/")
    return work / f"{model.replace('-', '_')}_{kind}"


def run_verify(directory: Path, sim: str | None) -> tuple[dict, float]:
    """``python -m search verify --study-dir DIR --json``: its JSON object and wall seconds."""
    cmd = [sys.executable, "-m", "search", "verify", "--study-dir", str(directory), "--json"]
    if sim is not None:
        cmd += ["--sim", sim]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    try:
        doc = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        doc = {"passed": False, "results": [], "error": p.stderr.strip().splitlines()[-1:]}
    doc["exit_code"] = p.returncode
    return doc, wall


def check_study(front: list[dict], doc: dict, best: dict) -> list[dict]:
    """One row per front design: simulated figures and whether it matches the reference
    (``best``: the study's best.json, whose design of the trial must have the front's config)."""
    by_trial = {r["trial"]: r for r in doc.get("results", [])}
    configs = {e["trial"]: e.get("config") for e in best.get("best", [])}
    rows = []
    for f in front:
        r = by_trial.get(f["trial"])
        if r is None:
            rows.append({"trial": f["trial"], "ok": False, "error": "not simulated"})
            continue
        same_config = configs.get(f["trial"]) == f["config"]
        ok = (
            same_config
            and r.get("passed") is True
            and r["mismatches"] == 0
            and r["hw_accuracy"] == r["ref_accuracy"]
            and r["ref_accuracy"] == f["test_accuracy"]
        )
        rows.append(
            {
                "trial": f["trial"],
                "lut_eq": f["lut_eq"],
                "hw_accuracy": r.get("hw_accuracy"),
                "ref_accuracy": r.get("ref_accuracy"),
                "recorded_test_accuracy": f["test_accuracy"],
                "mismatches": r.get("mismatches"),
                "same_config": same_config,
                "beats": r.get("beats"),
                "samples": r.get("samples"),
                "passed": r.get("passed"),
                "sim": r.get("sim"),
                "sim_version": r.get("sim_version"),
                "seconds": round(r.get("build_seconds", 0) + r.get("run_seconds", 0), 2),
                "build_seconds": r.get("build_seconds"),
                "run_seconds": r.get("run_seconds"),
                "ok": ok,
                **({"error": r["error"]} if "error" in r else {}),
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/work/fronts", help="bench_fronts.py --work")
    ap.add_argument("--keys", default=None, help="model/kind, comma separated (all of fronts.json)")
    ap.add_argument("--sim", choices=["verilator", "icarus"], default=None)
    args = ap.parse_args()
    fronts = json.loads(FRONTS.read_text())
    keys = args.keys.split(",") if args.keys else [k for k in fronts if k != "meta"]
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result["meta"] = {
        "what": "python -m search verify (simulated, test split + 200 random codes, random "
        "stalls) of every front design in bench/results/fronts.json",
        "command": "python bench/verify_fronts.py " + " ".join(sys.argv[1:]),
        "run": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    failed = False
    for key in keys:
        directory = study_dir(Path(args.work), key)
        print(f"== {key}: {directory}", file=sys.stderr)
        doc, wall = run_verify(directory, args.sim)
        best = directory / "best.json"
        best = json.loads(best.read_text()) if best.is_file() else {}
        rows = check_study(fronts[key]["front"], doc, best)
        extra = sorted({r["trial"] for r in doc.get("results", [])} - {r["trial"] for r in rows})
        entry = {
            "study_dir": str(directory),
            "designs": len(rows),
            "all_ok": all(r["ok"] for r in rows) and bool(rows),
            "verify_exit_code": doc["exit_code"],
            "wall_s": round(wall, 1),
            "not_in_front": extra,
            "front": rows,
        }
        if "error" in doc:
            entry["error"] = doc["error"]
        result[key] = entry
        failed |= not entry["all_ok"] or doc["exit_code"] != 0
        atomic_write(OUT, json.dumps(result, indent=1) + "\n")
        bad = [r["trial"] for r in rows if not r["ok"]]
        print(f"   {len(rows)} designs, {wall:.0f} s, not ok: {bad or 'none'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
