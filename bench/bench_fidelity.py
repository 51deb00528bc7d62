"""Multi-fidelity search speed: the hardware model vs Yosys as a trial's hardware step.

One run, one config (default: ``search/configs/jsc_s_front.toml`` without training, so
the hardware step dominates): ``--trials`` trials with ``hardware.fidelity = "model"``
(trials per minute, cold), then every one of those same designs synthesised by Yosys
with a cold cache (``HWFIRST_CACHE_DIR`` in a fresh temp dir), timed per design, which
is what a ``fidelity = "synth"`` trial spends on top of the same software step. Then
both Pareto fronts (val accuracy vs LUT-eq) over the *same* trials: which designs each
holds, their overlap, and the synthesised LUT-eq the model's front costs vs the true
front's at each accuracy it reaches.

    python bench/bench_fidelity.py [--config FILE] [--trials 40] [--training]

Writes bench/results/fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_fronts import dumps_toml  # noqa: E402

from qspec.files import atomic_write  # noqa: E402

OUT = ROOT / "bench" / "results" / "fidelity.json"
CONFIG = ROOT / "search" / "configs" / "jsc_s_front.toml"


def pareto(points: list[tuple[int, float, float]]) -> list[int]:
    """Trial numbers not dominated in (max accuracy, min lut)."""
    front = []
    for n, acc, lut in points:
        if not any((a >= acc and b <= lut) and (a > acc or b < lut) for _, a, b in points):
            front.append(n)
    return sorted(front)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--training", action="store_true", help="keep the config's [training]")
    args = ap.parse_args()

    import optuna

    from search.config import loads_config
    from search.hardware import HardwareParams, synth_metrics
    from search.run import run_study
    from search.space import SearchSpace
    from search.trial import context_of

    d = tomllib.loads(Path(args.config).read_text())
    if not args.training:
        d.pop("training", None)
    d["strategy"]["n_trials"] = args.trials
    d["hardware"]["fidelity"] = "model"
    d["hardware"]["confirm"] = 0
    text = dumps_toml(d)
    cfg = loads_config(text, name="fidelity", where="bench fidelity")
    work = Path(tempfile.mkdtemp(prefix="fidelity_"))
    os.environ["HWFIRST_CACHE_DIR"] = str(work / "cache")  # cold
    t0 = time.perf_counter()
    res = run_study(cfg, out_dir=work, progress=True, reports=False)
    model_wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=res.study, storage=res.storage)
    trials = [t for t in study.trials if t.state.name == "COMPLETE"]
    model_s = [t.duration.total_seconds() for t in trials]

    context = context_of(cfg)
    space = SearchSpace.from_config(cfg)
    rows, synth_s = [], []
    h = cfg.hardware
    for t in trials:
        design = space.design(dict(t.params))
        net, _ = context.build(design.quant_config())
        hw = HardwareParams(h.target, design.impl, design.stages, False, h.timeout)
        s0 = time.perf_counter()
        m = synth_metrics(net, hw)
        synth_s.append(time.perf_counter() - s0)
        rows.append(
            {
                "trial": t.number,
                "accuracy": t.user_attrs["accuracy"],
                "lut_eq_model": t.user_attrs["lut_eq"],
                "lut_eq": m["lut_eq"],
                "error_pct": round(100 * (t.user_attrs["lut_eq"] - m["lut_eq"]) / m["lut_eq"], 2),
            }
        )
        print(
            f"trial {t.number}: model {rows[-1]['lut_eq_model']:.0f} yosys {m['lut_eq']:.0f}"
            f" ({synth_s[-1]:.1f} s)",
            file=sys.stderr,
        )
    by = {r["trial"]: r for r in rows}
    model_front = pareto([(r["trial"], r["accuracy"], r["lut_eq_model"]) for r in rows])
    true_front = pareto([(r["trial"], r["accuracy"], r["lut_eq"]) for r in rows])
    # the synthesised cost of the model's choice at each accuracy the true front reaches
    gaps = []
    for n in true_front:
        acc = by[n]["accuracy"]
        pick = [by[m]["lut_eq"] for m in model_front if by[m]["accuracy"] >= acc]
        if pick:
            gaps.append(round(100 * (min(pick) - by[n]["lut_eq"]) / by[n]["lut_eq"], 2))
    sw = statistics.median(model_s)  # a model trial is the software step + milliseconds
    result = {
        "meta": {
            "what": "trials/min of a jsc-s search scored by the hardware model vs by Yosys "
            "(cold cache), and the two fronts over the same trials",
            "command": "python bench/bench_fidelity.py " + " ".join(sys.argv[1:]),
            "run": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config": text,
        },
        "trials": len(trials),
        "model": {
            "wall_s": round(model_wall, 1),
            "trials_per_min": round(60 * len(trials) / model_wall, 1),
            "median_trial_s": round(sw, 3),
        },
        "synth": {
            "median_synth_s": round(statistics.median(synth_s), 2),
            "trials_per_min": round(60 / (sw + statistics.mean(synth_s)), 2),
            "note": "software step of the model trials + the mean cold Yosys time per design",
        },
        "model_error_pct": {
            "median_abs": round(statistics.median(abs(r["error_pct"]) for r in rows), 2),
            "worst_abs": round(max(abs(r["error_pct"]) for r in rows), 2),
        },
        "fronts": {
            "model": model_front,
            "synth": true_front,
            "overlap": sorted(set(model_front) & set(true_front)),
            "lut_eq_gap_pct_at_true_front_points": gaps,
        },
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(OUT, json.dumps(result, indent=1) + "\n")
    print(
        json.dumps(
            {k: result[k] for k in ("model", "synth", "model_error_pct", "fronts")}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
