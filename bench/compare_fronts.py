"""Did a rerun of bench_fronts.py reproduce the committed fronts? Design by design.

Compares each ``model/kind`` of the given rerun outputs (fronts.json files bench_fronts.py
wrote elsewhere, or before they were restored) with bench/results/fronts.json: the same
front trials in the same order with the same config, val/test accuracy, synthesised LUT-eq
and its source, and the same accuracy levels. The hardware model's prediction
(``lut_eq_model``) and the wall time are reported, not compared: a refit of the model's
coefficients moves the one, the machine's load the other.

    python bench/compare_fronts.py RERUN.json [RERUN.json ...]

Writes bench/results/fronts_rerun.json; exits 1 if a front differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qspec.files import atomic_write  # noqa: E402

FRONTS = ROOT / "bench" / "results" / "fronts.json"
OUT = ROOT / "bench" / "results" / "fronts_rerun.json"
SAME = ("trial", "config", "val_accuracy", "test_accuracy", "lut_eq", "source")


def compare(old: dict, new: dict) -> dict:
    """One study's entry of both files: what differs and the unscored figures side by side."""
    diffs = [
        {"trial": a["trial"], **{k: [a.get(k), b.get(k)] for k in SAME if a.get(k) != b.get(k)}}
        for a, b in zip(old["front"], new["front"], strict=False)
        if any(a.get(k) != b.get(k) for k in SAME)
    ]
    model_diff = [
        abs(a["lut_eq_model"] - b["lut_eq_model"]) / a["lut_eq_model"]
        for a, b in zip(old["front"], new["front"], strict=False)
        if a.get("lut_eq_model") and b.get("lut_eq_model")
    ]
    same = (
        not diffs
        and len(old["front"]) == len(new["front"])
        and old["levels"] == new["levels"]
        and old["config"] == new["config"]
    )
    return {
        "same_front": same,
        "designs": [len(old["front"]), len(new["front"])],
        "differences": diffs,
        "levels_same": old["levels"] == new["levels"],
        "max_rel_diff_lut_eq_model": round(max(model_diff, default=0.0), 6),
        "wall_s": {"committed": old["wall_s"], "rerun": new["wall_s"]},
        "trials_per_min": {"committed": old["trials_per_min"], "rerun": new["trials_per_min"]},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reruns", nargs="+", help="fronts.json files of the rerun")
    args = ap.parse_args()
    committed = json.loads(FRONTS.read_text())
    result = {
        "meta": {
            "what": "a rerun of bench_fronts.py vs the committed bench/results/fronts.json",
            "command": "python bench/compare_fronts.py " + " ".join(sys.argv[1:]),
            "committed_run": committed["meta"]["run"],
            "run": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    for path in args.reruns:
        rerun = json.loads(Path(path).read_text())
        for key in (k for k in rerun if k != "meta"):
            result[key] = {
                "rerun_command": rerun["meta"]["command"],
                "rerun_run": rerun["meta"]["run"],
                **compare(committed[key], rerun[key]),
            }
            print(key, "same" if result[key]["same_front"] else "DIFFERS", file=sys.stderr)
    atomic_write(OUT, json.dumps(result, indent=1) + "\n")
    return 0 if all(v["same_front"] for k, v in result.items() if k != "meta") else 1


if __name__ == "__main__":
    raise SystemExit(main())
