"""What training costs a search: default.toml with its [training] vs without, cold and warm.

One run: ``search/configs/default.toml`` as shipped (with ``[training]``) and the same
config without ``[training]`` (PTQ), each cold (empty synthesis cache and trained-weight
cache: a fresh ``HWFIRST_CACHE_DIR`` and result dir) and then warm (the same study
again under a new name: same seed, same points, every synthesis and training a cache
hit). Trials per minute of each, and the cost of one fine-tuning epoch of each shipped
model on digits16 (median over ``--repeat`` runs of ``models.train.finetune_spec``).

    python bench/bench_training.py [--trials N] [--repeat 5] [--skip search]

Writes bench/results/training.json.
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

OUT = ROOT / "bench" / "results" / "training.json"
CONFIG = ROOT / "search" / "configs" / "default.toml"


def timed_study(text: str, name: str, work: Path) -> dict:
    from search.config import loads_config
    from search.run import run_study

    cfg = loads_config(text, name=name, where=name)
    t0 = time.perf_counter()
    res = run_study(cfg, out_dir=work, progress=True, reports=False)
    wall = time.perf_counter() - t0
    return {
        "trials": res.ran,
        "wall_s": round(wall, 1),
        "trials_per_min": round(60 * res.ran / wall, 2),
    }


def search_costs(trials: int | None) -> dict:
    d = tomllib.loads(CONFIG.read_text())
    if trials is not None:
        d["strategy"]["n_trials"] = trials
    ptq = dict(d)
    ptq.pop("training", None)
    out = {"training": d.get("training")}
    for kind, conf in (("trained", d), ("ptq", ptq)):
        work = Path(tempfile.mkdtemp(prefix=f"training_{kind}_"))
        os.environ["HWFIRST_CACHE_DIR"] = str(work / "cache")
        text = dumps_toml(conf)
        out[kind] = {
            "cold": timed_study(text, f"{kind}_cold", work),
            "warm": timed_study(text, f"{kind}_warm", work),
        }
        print(kind, out[kind], file=sys.stderr)
    return out


def epoch_cost(repeat: int) -> dict:
    from models.data import load_dataset
    from models.fold import fold_batchnorm
    from models.qconfig import QuantConfig
    from models.quant import quantise_network
    from models.train import TrainConfig, finetune_spec, load_float

    ds = load_dataset("digits16")
    out = {}
    for name in ("jsc-tiny", "jsc-toy", "jsc-s"):
        folded = fold_batchnorm(load_float(name, "digits16", "relu")[0])
        net = quantise_network(folded, QuantConfig.uniform(6), ds.train.x)
        per = []
        finetune_spec(folded, net, ds, TrainConfig(epochs=1, patience=100))  # warm-up
        for k in range(repeat):
            cfg = TrainConfig(epochs=5, batch_size=128, lr=1e-3, patience=100, seed=k)
            t0 = time.perf_counter()
            _, _, info = finetune_spec(folded, net, ds, cfg)
            per.append((time.perf_counter() - t0) / max(info["epochs_run"], 1))
        out[name] = {
            "epoch_s_median": round(statistics.median(per), 4),
            "train_samples": len(ds.train.y),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma list of: search, epoch")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result["meta"] = {
        "what": "trials/min of default.toml with vs without [training], cold and warm "
        "caches; seconds per fine-tuning epoch (digits16, 6-bit, batch 128)",
        "command": "python bench/bench_training.py " + " ".join(sys.argv[1:]),
        "run": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if "epoch" not in skip:
        result["epoch"] = epoch_cost(args.repeat)
        print(result["epoch"], file=sys.stderr)
        atomic_write(OUT, json.dumps(result, indent=1) + "\n")
    if "search" not in skip:
        result["search"] = search_costs(args.trials)
        atomic_write(OUT, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
