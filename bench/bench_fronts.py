"""Accuracy-vs-LUT-eq fronts on digits16, ECP5: trained search vs PTQ search vs HGQ2 + da4ml.

For each model (jsc-toy, jsc-s) two Pareto searches (accuracy on the val split vs
LUT-eq) run from the same checkpoint: ``ptq`` (per-layer widths, rounding only) and
``trained`` (the same plus ``[training]`` fine-tuning, ``sparsity`` and ``max_digits``).
Trials are scored by the target's hardware model (``hardware.fidelity = "model"``)
and the whole front is confirmed by Yosys (``hardware.confirm``); the figures below are
the synthesised ones. Honest selection: the front is chosen on validation accuracy;
its designs' *test* accuracy is what is compared, at the accuracy levels of the
HGQ2 + da4ml table (``search/configs/reference/hgq2_da4ml.csv``): for each level, the
smallest confirmed front design whose test accuracy reaches it.

    python bench/bench_fronts.py [--models jsc-toy,jsc-s] [--kinds ptq,trained] [--trials N]
        [--l1 LAMBDA[,LAMBDA...]] [--seed N] [--out JSON]

``--l1`` sets ``[training] l1`` (the adder-aware regulariser; several values: a searched
dimension) in the trained configs, ``--seed`` the sampler's seed; their entries are then
keyed ``MODEL/trained/l1=.../seed=N``.
Writes ``--out`` (default bench/results/fronts.json) after every study (a cut-off run keeps
what finished).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qspec.files import atomic_write  # noqa: E402

OUT = ROOT / "bench" / "results" / "fronts.json"
CONFIGS = {
    "jsc-toy": ROOT / "bench" / "fronts" / "jsc_toy_front.toml",
    "jsc-s": ROOT / "search" / "configs" / "jsc_s_front.toml",
}
# HGQ2 0.2.0 + da4ml 0.6.0 on digits16, ECP5 -nodsp, Yosys 0.70 (issue #17's table)
HGQ2 = {
    "jsc-toy": [(0.80, 1800), (0.85, 2127), (0.88, 3934)],
    "jsc-s": [(0.92, 16387)],
}
GOAL_RATIO = 0.7
PTQ_ONLY_KEYS = ("sparsity", "max_digits")


def config_text(
    model: str,
    kind: str,
    trials: int | None,
    l1: list[float] | None = None,
    seed: int | None = None,
) -> dict:
    """The model's front config as a dict; ``ptq`` drops training and the pruning keys;
    ``l1`` sets ``training.l1`` of a trained one (one value: fixed; several: searched),
    ``seed`` the sampler's ``strategy.seed``."""
    d = tomllib.loads(CONFIGS[model].read_text())
    if kind == "trained" and l1 is not None:
        d["training"]["l1"] = l1[0] if len(l1) == 1 else l1
    if kind == "ptq":
        d.pop("training", None)
        for table in [
            d["space"].get("default", {}),
            *d["space"].get("types", {}).values(),
            *d["space"].get("layers", {}).values(),
        ]:
            for k in PTQ_ONLY_KEYS:
                table.pop(k, None)
    if trials is not None:
        d["strategy"]["n_trials"] = trials
    if seed is not None:
        d["strategy"]["seed"] = seed
    return d


def dumps_toml(d: dict, prefix: str = "") -> str:
    """A small TOML writer for these configs (tables of scalars and lists)."""
    lines, subs = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            subs.append((k, v))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    out = ("\n".join(lines) + "\n") if lines else ""
    for k, v in subs:
        name = f"{prefix}{k}"
        if any(not isinstance(x, dict) for x in v.values()) or not v:
            out += f"\n[{name}]\n"
        out += dumps_toml(v, f"{name}.")
    return out


def front_of(study) -> list[dict]:
    """The confirmed front: val/test accuracy (recorded by every trial, never scored),
    predicted and synthesised LUT-eq."""
    from search.records import CONFIRMED_ATTR
    from search.report import best_trials

    confirmed = study.user_attrs.get(CONFIRMED_ATTR) or {}
    rows = []
    for t in best_trials(study):
        c = confirmed.get(str(t.number), {})
        rows.append(
            {
                "trial": t.number,
                "val_accuracy": t.user_attrs.get("val_accuracy"),
                "test_accuracy": t.user_attrs.get("test_accuracy"),
                "lut_eq_model": t.user_attrs.get("lut_eq"),
                "lut_eq": c.get("lut_eq"),
                "source": c.get("source") or c.get("error"),
                "config": t.user_attrs.get("config"),
            }
        )
    return sorted(rows, key=lambda r: r["lut_eq_model"] or 0)


def at_levels(rows: list[dict], model: str) -> list[dict]:
    out = []
    for level, hgq in HGQ2[model]:
        ok = [r for r in rows if r["lut_eq"] is not None and r["test_accuracy"] >= level]
        best = min(ok, key=lambda r: r["lut_eq"]) if ok else None
        lut = None if best is None else best["lut_eq"]
        out.append(
            {
                "test_accuracy_at_least": level,
                "hgq2_da4ml_lut_eq": hgq,
                "goal_lut_eq": round(GOAL_RATIO * hgq),
                "lut_eq": lut,
                "trial": None if best is None else best["trial"],
                "ratio": None if lut is None else round(lut / hgq, 3),
                "goal_met": None if lut is None else lut <= GOAL_RATIO * hgq,
            }
        )
    return out


def variant_tag(l1: list[float] | None, seed: int | None) -> str:
    """The suffix of an ``--l1``/``--seed`` run's entry key (``/l1=1``, ``/l1=0|0.3/seed=1``)."""
    tag = "" if l1 is None else "/l1=" + "|".join(f"{v:g}" for v in l1)
    return tag + ("" if seed is None else f"/seed={seed}")


def run_one(
    model: str,
    kind: str,
    trials: int | None,
    work: Path,
    l1: list[float] | None = None,
    seed: int | None = None,
) -> dict:
    from search.config import loads_config
    from search.run import run_study

    text = dumps_toml(config_text(model, kind, trials, l1, seed))
    name = f"{model.replace('-', '_')}_{kind}"
    if l1 is not None:  # a study of its own (a different fingerprint) in the same --work
        name += "_l1_" + "_".join(f"{v:g}".replace(".", "p") for v in l1)
    if seed is not None:
        name += f"_seed{seed}"
    cfg = loads_config(text, name=name, where=f"bench {name}")
    t0 = time.perf_counter()
    res = run_study(cfg, out_dir=work, progress=True, reports=True)
    wall = time.perf_counter() - t0
    import optuna

    study = optuna.load_study(study_name=res.study, storage=res.storage)
    rows = front_of(study)
    return {
        "config": text,
        "trials": res.total,
        "wall_s": round(wall, 1),
        "trials_per_min": round(60 * res.total / wall, 2),
        "front": rows,
        "levels": at_levels(rows, model),
        "out_dir": str(res.out_dir),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="jsc-toy,jsc-s")
    ap.add_argument("--kinds", default="ptq,trained")
    ap.add_argument("--trials", type=int, default=None, help="override strategy.n_trials")
    ap.add_argument("--work", default=None, help="where the studies go (default: a temp dir)")
    ap.add_argument("--resume", action="store_true", help="keep finished entries of the JSON")
    ap.add_argument(
        "--l1", default=None, help="training.l1 of the trained configs (a,b,...: searched)"
    )
    ap.add_argument("--seed", type=int, default=None, help="override strategy.seed")
    ap.add_argument("--out", default=str(OUT), help="the result JSON (default: %(default)s)")
    args = ap.parse_args()
    import tempfile

    try:
        l1 = None if args.l1 is None else [float(v) for v in args.l1.split(",")]
    except ValueError:
        ap.error(f"--l1 must be numbers separated by commas, got {args.l1!r}")
    out = Path(args.out)
    work = Path(args.work or tempfile.mkdtemp(prefix="fronts_"))
    result = json.loads(out.read_text()) if args.resume and out.exists() else {}
    command = "python bench/bench_fronts.py " + " ".join(sys.argv[1:])
    result["meta"] = {
        "what": "test accuracy vs synthesised LUT-eq (ECP5 -nodsp, Yosys 0.70) of each "
        "search's confirmed Pareto front (chosen on val), vs HGQ2 + da4ml",
        "command": command,  # the last run's; each entry keeps its own
        "run": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for model in args.models.split(","):
        for kind in args.kinds.split(","):
            ours = l1 if kind == "trained" else None
            key = f"{model}/{kind}" + variant_tag(ours, args.seed)
            if args.resume and key in result:
                continue
            print(f"== {key}", file=sys.stderr)
            result[key] = {"command": command} | run_one(
                model, kind, args.trials, work, ours, args.seed
            )
            atomic_write(out, json.dumps(result, indent=1, default=str) + "\n")
            for lv in result[key]["levels"]:
                print(f"   {lv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
