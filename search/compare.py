"""``python -m search compare CONFIG --strategies brute_force,tpe,random --seeds 5 [--trials N]``.

Every strategy x seed is its own study (``<study>-<strategy>-s<seed>``) in one storage
(default ``<out>/<study>-compare/study.db``), so a rerun resumes instead of recomputing.
Brute force is deterministic: it runs once, over the whole space, and its best feasible
score is *the optimum*.  The other strategies run ``--trials`` trials (default: the size
of the space) per seed.  Synthesis is cached per layer, so points that repeat across
strategies and seeds cost no Yosys run.

Written to ``<out>/<study>-compare/``:

* ``curves.csv`` -- best-so-far score after each trial, per strategy and seed;
* ``trials_to_optimum.csv`` -- per strategy and seed, the trials needed to reach the
  optimum (empty if never reached);
* ``summary.json`` and ``compare.md`` -- median, min, max of those over seeds, and the
  median as a share of the space;
* ``best_so_far.png`` -- best-so-far vs trials: the median over seeds and its range.

Only weighted scores (one objective) are compared.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qspec.files import atomic_write
from qspec.limits import MAX_SEEDS

from .config import SearchConfig, StrategyConfig
from .records import counted
from .run import run_study
from .space import SearchSpace
from .storage import DEFAULT_OUT, open_storage, storage_url
from .strategies import REFERENCE, STRATEGIES

if TYPE_CHECKING:
    import optuna

    from .hardware import HardwareEvaluator

REL_TOL = 1e-9  # a score this close to the optimum has reached it


@dataclass(frozen=True)
class StrategyRuns:
    strategy: str
    seeds: tuple[int, ...]
    curves: tuple[tuple[float, ...], ...]  # best-so-far per trial, one per seed
    to_optimum: tuple[int | None, ...]  # trials needed per seed (None: not reached)

    def stats(self) -> dict[str, Any]:
        reached = [n for n in self.to_optimum if n is not None]
        runs = len(self.to_optimum)
        # an unreached run counts as infinitely many trials: the median is only finite
        # when at least half of the runs reached the optimum
        ranked = sorted(n if n is not None else math.inf for n in self.to_optimum)
        median = statistics.median(ranked) if ranked else math.inf
        return {
            "runs": runs,
            "reached": len(reached),
            "median": None if math.isinf(median) else median,
            "min": min(reached) if reached else None,
            "max": max(ranked) if reached and len(reached) == runs else None,
            "trials": max((len(c) for c in self.curves), default=0),
        }


@dataclass(frozen=True)
class CompareResult:
    out_dir: Path
    storage: str
    optimum: float
    space_size: int
    runs: dict[str, StrategyRuns]
    files: dict[str, Path]


def parse_strategies(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in STRATEGIES]
    if not names or bad:
        raise ValueError(
            f"--strategies must be a comma-separated list of {'|'.join(STRATEGIES)}, got {text!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"--strategies names a strategy twice: {text!r}")
    return names


def _feasible(t: optuna.trial.FrozenTrial) -> bool:
    return all(c <= 0 for c in (t.constraints or {}).values())


def best_so_far(study: optuna.Study) -> list[float]:
    """The best feasible score after each evaluated trial (-inf before the first)."""
    from optuna.trial import TrialState

    best, out = -math.inf, []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if not counted(t):  # running, waiting, skipped or a dead worker's (search.storage)
            continue
        if t.state == TrialState.COMPLETE and _feasible(t):
            best = max(best, t.value)
        out.append(best)
    return out


def trials_to(curve: list[float] | tuple[float, ...], optimum: float) -> int | None:
    tol = REL_TOL * max(1.0, abs(optimum))
    return next((i + 1 for i, v in enumerate(curve) if v >= optimum - tol), None)


def compare(
    cfg: SearchConfig,
    strategies: list[str],
    seeds: int = 5,
    *,
    n_trials: int | None = None,
    storage: str | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    hardware: HardwareEvaluator | None = None,
    progress: bool = True,
) -> CompareResult:
    """Run every strategy x seed on ``cfg``'s space and write the comparison."""
    import optuna

    if cfg.score.mode != "weighted":
        raise ValueError("compare needs score.mode = weighted (one score to reach)")
    if not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds must be an integer in [1, {MAX_SEEDS}], got {seeds}")
    name = f"{cfg.storage.study}-compare"
    out = Path(out_dir) / name
    url = storage_url(storage, name, out_dir)
    size = SearchSpace.from_config(cfg).size
    trials = n_trials or size
    order = [REFERENCE] + [s for s in strategies if s != REFERENCE]
    curves: dict[str, dict[int, list[float]]] = {}
    for strategy in order:
        info = STRATEGIES[strategy]
        cap = info.compare_trials(trials)  # None: the whole space (the optimum's run)
        for i in range(info.compare_runs(seeds)):
            seed = cfg.strategy.seed + i
            options = cfg.strategy.options if strategy == cfg.strategy.name else {}
            st = StrategyConfig(strategy, cap, None, seed, options)
            study_name = f"{name}-{strategy}-s{seed}"
            run_study(
                replace(cfg, strategy=st), storage=url, study_name=study_name, out_dir=out_dir,
                hardware=hardware, progress=progress, reports=False,
            )  # fmt: skip
            study = optuna.load_study(study_name=study_name, storage=open_storage(url))
            curve = best_so_far(study)
            curves.setdefault(strategy, {})[seed] = curve if cap is None else curve[:cap]
    optimum = max(curves[REFERENCE][cfg.strategy.seed], default=-math.inf)
    if math.isinf(optimum):
        raise ValueError("brute force found no feasible design; nothing to reach")
    runs = {
        s: StrategyRuns(
            s,
            tuple(curves[s]),
            tuple(tuple(c) for c in curves[s].values()),
            tuple(trials_to(c, optimum) for c in curves[s].values()),
        )
        for s in order
        if s in strategies
    }
    files = write_compare(out, runs, optimum, size, url, cfg)
    return CompareResult(out, url, optimum, size, runs, files)


def _md(runs: dict[str, StrategyRuns], optimum: float, size: int, study: str) -> str:
    lines = [
        f"# Strategy comparison: {study}",
        "",
        f"Space: {size} points; optimum (brute force, best feasible score): {optimum:.6g}.",
        "Trials to reach the optimum over seeds (an unreached run counts as never).",
        "",
        "| strategy | runs | reached | median | min | max | median / space | trials/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s, r in runs.items():
        st = r.stats()

        def f(v):
            return "-" if v is None else f"{v:g}"

        share = "-" if st["median"] is None else f"{100 * st['median'] / size:.1f} %"
        lines.append(
            f"| {s} | {st['runs']} | {st['reached']} | {f(st['median'])} | {f(st['min'])} "
            f"| {f(st['max'])} | {share} | {st['trials']} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, StrategyRuns], optimum: float, path: Path, title: str) -> None:
    """Best-so-far vs trials: median over seeds, shaded min..max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for s, r in runs.items():
        n = max(len(c) for c in r.curves)
        # a run that stopped early keeps its last best
        a = np.array([list(c) + [c[-1]] * (n - len(c)) for c in r.curves if c], dtype=float)
        a[np.isinf(a)] = np.nan
        x = np.arange(1, n + 1)
        (line,) = ax.plot(x, np.nanmedian(a, axis=0), label=f"{s} (median of {len(a)})")
        if len(a) > 1:
            ax.fill_between(
                x, np.nanmin(a, axis=0), np.nanmax(a, axis=0), color=line.get_color(), alpha=0.2
            )
    ax.axhline(optimum, color="k", ls="--", lw=0.8, label="optimum (brute force)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("trials")
    ax.set_ylabel("best feasible score so far")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def write_compare(
    out: Path,
    runs: dict[str, StrategyRuns],
    optimum: float,
    size: int,
    url: str,
    cfg: SearchConfig,
) -> dict[str, Path]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["strategy", "seed", "trial", "best_so_far"])
    for s, r in runs.items():
        for seed, c in zip(r.seeds, r.curves, strict=True):
            w.writerows([s, seed, i + 1, "" if math.isinf(v) else v] for i, v in enumerate(c))
    files = {"curves": atomic_write(out / "curves.csv", buf.getvalue())}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["strategy", "seed", "trials_to_optimum"])
    for s, r in runs.items():
        w.writerows(
            [s, seed, "" if n is None else n] for seed, n in zip(r.seeds, r.to_optimum, strict=True)
        )
    files["trials_to_optimum"] = atomic_write(out / "trials_to_optimum.csv", buf.getvalue())
    summary = {
        "study": cfg.storage.study,
        "storage": url,
        "space_size": size,
        "optimum": optimum,
        "strategies": {
            s: {**r.stats(), "seeds": list(r.seeds), "to_optimum": list(r.to_optimum)}
            for s, r in runs.items()
        },
    }
    files["summary"] = atomic_write(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    files["markdown"] = atomic_write(
        out / "compare.md", _md(runs, optimum, size, cfg.storage.study)
    )
    files["plot"] = out / "best_so_far.png"
    plot(runs, optimum, files["plot"], f"{cfg.storage.study}: best score so far ({size} points)")
    return files
