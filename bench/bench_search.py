"""Search throughput, cache, strategy comparison, worker recovery -> bench/results/search.json.

One run measures, on ``search/configs/default.toml`` with real synthesis:

* ``run``: trials per minute of ``run_study`` with a cold synthesis cache (empty
  directory), then the same study again (same seed, so the same points) on the warm
  cache, then with hardware disabled (software metrics only); the warm trial's cost
  divided by the software-only trial's (median Optuna trial durations; goal <= 1.2),
  and the same ratio for the bare pipeline (quantise + metrics [+ cached synthesis]) on
  the same designs without the storage;
* ``compare``: ``search.compare`` brute_force, tpe, random x ``--seeds`` on the same
  cache: trials to the brute-force optimum (median, min, max) and the median's share of
  the grid;
* ``workers``: ``python -m search run smoke.toml --workers 2`` on a journal file, one
  worker SIGKILLed while its trial runs, then the command again: every point exactly
  once, no completed trial lost;
* ``quality``: Spearman rank correlation of accuracy and loss across the brute-force
  study's trials (why one of them suffices as the quality metric).

    python bench/bench_search.py [--seeds 5] [--trials N] [--skip workers,compare]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qspec.files import atomic_write  # noqa: E402

CONFIG = ROOT / "search" / "configs" / "default.toml"
SMOKE = ROOT / "search" / "configs" / "smoke.toml"
OUT = ROOT / "bench" / "results" / "search.json"


def _durations(study) -> list[float]:
    from optuna.trial import TrialState

    return [
        t.duration.total_seconds()
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        if t.duration is not None
    ]


def _timed_run(cfg, name: str, out: Path, **kw) -> dict:
    import optuna

    from search.run import run_study
    from search.storage import open_storage

    t0 = time.perf_counter()
    res = run_study(cfg, study_name=name, out_dir=out, progress=False, reports=False, **kw)
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=name, storage=open_storage(res.storage))
    d = _durations(study)
    return {
        "trials": res.ran,
        "wall_s": wall,
        "trials_per_min": 60 * res.ran / wall,
        "trial_s_median": statistics.median(d),
        "trial_s_mean": statistics.fmean(d),
        "trials_per_min_in_trials": 60 * len(d) / sum(d),
    }


def software_only(cfg):
    """``cfg`` with synthesis off and the hardware metrics dropped (same space, same seed)."""
    from search.config import METRICS, parse_config

    data = tomllib.loads(cfg.source)
    data["hardware"] = {**data.get("hardware", {}), "enabled": False}
    data["metrics"] = {k: v for k, v in data["metrics"].items() if not METRICS[k].hardware}
    return parse_config(data, name=cfg.storage.study, source="")


def bench_run(cfg, work: Path) -> dict:
    """Cold, warm and software-only runs of the same TPE study."""
    from search.trial import context_of

    context_of(cfg)  # the checkpoint and dataset are loaded once per process
    cold = _timed_run(cfg, "cold", work)
    warm = _timed_run(cfg, "warm", work)
    sw = _timed_run(software_only(cfg), "software", work)
    return {
        "config": str(CONFIG.relative_to(ROOT)),
        "cold": cold,
        "warm": warm,
        "software_only": sw,
        "warm_over_software_trial": warm["trial_s_median"] / sw["trial_s_median"],
        "cold_over_warm_wall": cold["wall_s"] / warm["wall_s"],
    }


def bench_pipeline(cfg, work: Path, n: int = 30) -> dict:
    """The trial pipeline without the storage: software metrics vs software + cached synthesis."""
    import optuna

    from search.hardware import hardware_metrics
    from search.space import SearchSpace
    from search.storage import open_storage
    from search.trial import Evaluator, context_of

    study = optuna.load_study(
        study_name="warm", storage=open_storage(f"sqlite:///{work}/warm/study.db")
    )
    space = SearchSpace.from_config(cfg)
    designs = [space.design(dict(t.params)) for t in study.trials[:n]]
    ctx = context_of(cfg)
    hw = Evaluator(cfg, ctx, hardware_metrics)
    sw = Evaluator(software_only(cfg), ctx, None)
    times = {"software": [], "warm": [], "export_and_cache": []}
    for d in designs:
        t0 = time.perf_counter()
        net = sw.network(d)
        sw.measure_network(net, sw.hw_params(d.impl, d.stages))
        t1 = time.perf_counter()
        net = hw.network(d)
        hw.measure_network(net, hw.hw_params(d.impl, d.stages))
        t2 = time.perf_counter()
        hardware_metrics(net, hw.hw_params(d.impl, d.stages))
        t3 = time.perf_counter()
        times["software"].append(t1 - t0)
        times["warm"].append(t2 - t1)
        times["export_and_cache"].append(t3 - t2)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "designs": len(designs),
        "median_s": med,
        "warm_over_software": med["warm"] / med["software"],
    }


def bench_compare(cfg, work: Path, seeds: int, trials: int | None) -> dict:
    from search.compare import compare

    t0 = time.perf_counter()
    res = compare(
        cfg, ["brute_force", "tpe", "random"], seeds, n_trials=trials, out_dir=work,
        progress=False,
    )  # fmt: skip
    stats = {s: r.stats() | {"to_optimum": list(r.to_optimum)} for s, r in res.runs.items()}
    tpe, rnd = stats["tpe"]["median"], stats["random"]["median"]
    return {
        "space_size": res.space_size,
        "optimum": res.optimum,
        "trials_per_run": trials or res.space_size,
        "seeds": seeds,
        "wall_s": time.perf_counter() - t0,
        "strategies": stats,
        "tpe_median_share_of_grid": None if tpe is None else tpe / res.space_size,
        "random_over_tpe_median": None if tpe is None or rnd is None else rnd / tpe,
        "markdown": res.files["markdown"].read_text(),
        "storage": res.storage,
    }


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def bench_workers(work: Path) -> dict:
    """smoke.toml (8 points, real synthesis) with 2 workers; SIGKILL one mid-trial; resume."""
    import optuna
    from optuna.trial import TrialState

    from search.config import load_config
    from search.records import POINT_ATTR, SKIPPED_ATTR
    from search.space import SearchSpace
    from search.storage import open_storage

    url = f"journal://{work}/workers.journal"
    cmd = [sys.executable, "-m", "search", "run", str(SMOKE), "--workers", "2", "--storage",
           url, "--out", str(work), "--no-progress"]  # fmt: skip
    env = dict(os.environ, HWFIRST_CACHE_DIR=str(work / "workers-cache"))  # cold: slow trials
    launcher = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900
    killed = None
    while killed is None and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name="smoke", storage=open_storage(url))
        except KeyError:
            continue
        if len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) == 2:
            workers = [p for p in _children(launcher.pid) if p != launcher.pid]
            # the spawn machinery has a resource tracker child too: kill a worker, not it
            workers = [p for p in workers if b"search" in Path(f"/proc/{p}/cmdline").read_bytes()
                       or b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
            workers = [p for p in workers if b"resource_tracker" not in
                       Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
            killed = workers[-1]
            os.kill(killed, signal.SIGKILL)
    first_out, _ = launcher.communicate(timeout=900)
    study = optuna.load_study(study_name="smoke", storage=open_storage(url))
    complete = {
        t.number: t.value
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if SKIPPED_ATTR not in t.user_attrs
    }
    failed_first = sum(t.state == TrialState.FAIL for t in study.trials)
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    study = optuna.load_study(study_name="smoke", storage=open_storage(url))
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    done = [
        t.user_attrs[POINT_ATTR]
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if SKIPPED_ATTR not in t.user_attrs
    ]
    space = SearchSpace.from_config(load_config(SMOKE))
    points = {space.key(p) for p in space.grid()}
    return {
        "config": str(SMOKE.relative_to(ROOT)),
        "storage": "journal file",
        "killed_worker": killed is not None,
        "first_run_exit": launcher.returncode,
        "first_run_says": [ln for ln in first_out.splitlines() if "died" in ln],
        "complete_after_kill": len(complete),
        "failed_after_kill": failed_first,
        "resume_exit": again.returncode,
        "complete_after_resume": len(done),
        "every_point_exactly_once": sorted(done) == sorted(points),
        "completed_trials_lost": sum(after.get(n) != v for n, v in complete.items()),
        "space_size": len(points),
    }


def bench_quality(work: Path) -> dict:
    """Spearman rank correlation of accuracy and loss across the brute-force study's trials."""
    import optuna
    from scipy.stats import spearmanr

    from search.storage import open_storage

    name = "default-compare-brute_force-s0"
    url = f"sqlite:///{work}/default-compare/study.db"
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    pairs = [
        (t.user_attrs["accuracy"], t.user_attrs["loss"])
        for t in study.trials
        if "accuracy" in t.user_attrs and "loss" in t.user_attrs
    ]
    rho, p = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
    return {"study": name, "trials": len(pairs), "spearman_accuracy_loss": rho, "p_value": p}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=None, help="per compare run (default: grid)")
    ap.add_argument("--skip", default="", help="comma-separated: run,compare,workers")
    ap.add_argument("--work", default=None, help="keep the studies here (default: a temp dir)")
    ap.add_argument("--out", default=str(OUT), help=f"the JSON (default {OUT.relative_to(ROOT)})")
    args = ap.parse_args()
    out = Path(args.out)
    skip = set(filter(None, args.skip.split(",")))
    from search.config import load_config

    cfg = load_config(CONFIG)
    tmp = tempfile.TemporaryDirectory(prefix="bench_search_")
    work = Path(args.work or tmp.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["HWFIRST_CACHE_DIR"] = str(work / "cache")  # cold at the start of this run
    result: dict = {"cpu_count": os.cpu_count(), "load_at_start": os.getloadavg()}
    if skip and out.exists():  # a partial rerun keeps the other steps' numbers
        result = json.loads(out.read_text()) | {f"load_at_start_{args.skip}": os.getloadavg()}
    steps = [
        ("run", lambda: bench_run(cfg, work)),
        ("pipeline", lambda: bench_pipeline(cfg, work)),
        ("workers", lambda: bench_workers(work)),
        ("compare", lambda: bench_compare(cfg, work, args.seeds, args.trials)),
        ("quality", lambda: bench_quality(work)),
    ]
    for key, step in steps:
        if (
            key in skip
            or (key == "pipeline" and "run" in skip)
            or (key == "quality" and "compare" in skip)
        ):
            continue
        t0 = time.perf_counter()
        result[key] = step()
        print(
            f"{key}: {time.perf_counter() - t0:.0f} s", json.dumps(result[key], default=str)[:400]
        )
        atomic_write(out, json.dumps(result, indent=1, default=str) + "\n")  # keep partial results
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
