"""Trained-weight cache: trials/min of a fine-tuning study, cold vs warm (-> results/).

``search/configs/smoke.toml`` (real synthesis) plus ``[training] epochs = N``, run three
times on one fresh ``$HWFIRST_CACHE_DIR``: both caches cold; synthesis warm and the
trained-weight cache off (``HWFIRST_TRAIN_CACHE=0``: what fine-tuning costs); both warm.
Each run is a fresh process (``python -m search run``) and study; trials/min from the summed
trial durations in ``trials.csv`` (the wall time adds the process start, the reference
design and the reports).  The three runs must give the same scores and kept epochs.
Writes ``bench/results/train_cache.json``.

    python bench/bench_train_cache.py [--epochs 3] [--config search/configs/smoke.toml]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(config: Path, out: Path, env: dict[str, str]) -> dict:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "search", "run", str(config), "--out", str(out), "--no-progress"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - t
    (trials,) = out.glob("*/trials.csv")
    with trials.open() as f:
        rows = list(csv.DictReader(f))
    busy = sum(float(r["duration_s"]) for r in rows)
    return {
        "trials": len(rows),
        "trial_seconds": round(busy, 3),
        "trials_per_min": round(60 * len(rows) / busy, 1),
        "wall_seconds": round(wall, 2),
        "scores": [r["score"] for r in rows],
        "qat_epochs": [r["qat_epoch"] for r in rows],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--config", type=Path, default=ROOT / "search/configs/smoke.toml")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/train_cache.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / f"{args.config.stem}.toml"
        config.write_text(args.config.read_text() + f"\n[training]\nepochs = {args.epochs}\n")
        env = dict(os.environ, HWFIRST_CACHE_DIR=str(tmp / "cache"), PYTHONPATH=str(ROOT))
        env.pop("HWFIRST_TRAIN_CACHE", None)
        res = {"cold": _run(config, tmp / "cold", env)}
        res["train_cache_off"] = _run(config, tmp / "off", dict(env, HWFIRST_TRAIN_CACHE="0"))
        res["warm"] = _run(config, tmp / "warm", env)
    same = len({json.dumps([r["scores"], r["qat_epochs"]]) for r in res.values()}) == 1
    doc = {"config": str(args.config.relative_to(ROOT)), "epochs": args.epochs,
           "identical_results": same, **res}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    for k, r in res.items():
        print(f"{k:16s} {r['trials_per_min']:7.1f} trials/min  ({r['wall_seconds']} s wall)")
    print(f"identical results: {same}; {args.json}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
