"""Reports of a study in ``<out>/``: trials.csv, best.json, pareto.png, history.png, Verilog.

* ``trials.csv`` -- one row per trial: number, state, every parameter, every raw
  metric, the score (or objective values), constraint violation, error.
* ``best.json`` -- the best trial (weighted mode) or the Pareto front (pareto
  mode), feasible trials only: parameters, the full design config, the formats
  calibration chose, every metric, with ``[training]`` the training table, the
  epoch kept and its validation accuracy (also columns of ``trials.csv``),
  and where its spec JSON and Verilog were written (``best/trial_N/``, a design
  directory of :mod:`hdl.design`).
* ``pareto.png`` -- Optuna's Pareto-front plot: of the study's objectives, or in
  weighted mode of the first scored metric against the first scored hardware
  metric (else the second scored metric, else the score).
* ``history.png`` -- Optuna's optimisation history (first objective).

Everything is written atomically; ``python -m search report`` rebuilds it from
the storage alone (the config is stored with the study).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qspec.files import WriteError, atomic_write, check_output, read_json

from .config import METRICS, SearchConfig
from .hardware import HardwareError, HardwareParams, export_verilog
from .records import (
    CLOCK_ATTR,
    CONFIG_ATTR,
    CONFIRMED_ATTR,
    DUPLICATE_ATTR,
    ERROR_ATTR,
    FORMATS_ATTR,
    HW_SOURCE_ATTR,
    PRUNED_EPOCH_ATTR,
    QAT_SPEC_ATTR,
    REFERENCE_ATTR,
    SKIPPED_ATTR,
    TRAINING_ATTRS,
    metric_attrs,
)
from .scoring import Objective
from .space import SearchSpace
from .storage import redact
from .trial import ModelContext, metric_names

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class Reports:
    out_dir: Path
    trials_csv: Path
    best_json: Path
    pareto_png: Path
    history_png: Path
    best: tuple[int, ...]  # trial numbers in best.json
    verilog: tuple[Path, ...]
    verilog_errors: tuple[str, ...] = ()  # "trial N: why" for a best trial without Verilog


REPORT_FILES = ("trials.csv", "best.json", "pareto.png", "history.png")


def check_report_paths(out_dir: str | Path) -> None:
    """Each report file of ``out_dir`` can be written (before a run spends its budget)."""
    for name in REPORT_FILES:
        check_output(Path(out_dir) / name)


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best feasible complete trial, or the feasible Pareto front (multi-objective)."""
    if len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.number)
    try:
        return [study.best_trial]
    except ValueError:  # no complete (feasible) trial
        return []


def _fmt(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    return json.dumps(v) if isinstance(v, dict | list) else v


def trials_csv(study: optuna.Study, cfg: SearchConfig) -> str:
    trials = study.get_trials(deepcopy=False)
    params = [d.name for d in SearchSpace.from_config(cfg).dims]
    metrics: list[str] = []
    for t in trials:
        metrics += [m for m in metric_names(metric_attrs(t.user_attrs)) if m not in metrics]
    metrics = metric_names(dict.fromkeys(metrics, 0.0))
    objective = Objective.of(cfg)
    head = ["number", "state", "duration_s", *params, *metrics, *objective.names]
    head += ["violation", ERROR_ATTR, SKIPPED_ATTR, DUPLICATE_ATTR]
    # PTQ studies: today's columns
    extra = (*TRAINING_ATTRS, PRUNED_EPOCH_ATTR) if cfg.training.enabled else ()
    # unclocked studies: today's columns
    extra += (CLOCK_ATTR,) if cfg.hardware.clock_mhz is not None else ()
    head += extra
    # hardware.confirm: where each trial's figures came from, and the synthesised ones
    confirmed = (study.user_attrs.get(CONFIRMED_ATTR) or {}) if cfg.hardware.confirm else None
    synth = [m for m in metrics if METRICS.get(m) is not None and METRICS[m].hardware]
    if confirmed is not None:
        head += [HW_SOURCE_ATTR, *(f"synth_{m}" for m in synth), "synth_source"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for t in trials:
        values = list(t.values) if t.values is not None else [None] * len(objective.names)
        dur = t.duration.total_seconds() if t.duration is not None else None
        violation = sum(max(v, 0.0) for v in t.constraints.values()) if t.constraints else None
        row = [t.number, t.state.name, dur]
        row += [t.params.get(p) for p in params]
        row += [metric_attrs(t.user_attrs).get(m) for m in metrics]
        row += values + [violation]
        row += [t.user_attrs.get(k) for k in (ERROR_ATTR, SKIPPED_ATTR, DUPLICATE_ATTR, *extra)]
        if confirmed is not None:
            c = confirmed.get(str(t.number), {})
            row += [t.user_attrs.get(HW_SOURCE_ATTR), *(c.get(m) for m in synth)]
            row += [c.get("source") or c.get("error")]
        w.writerow(["" if v is None else _fmt(v) for v in row])
    return buf.getvalue()


def _save(ax: Axes | Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    fig.set_size_inches(8, 5.5)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def _metric_study(study: optuna.Study, cfg: SearchConfig) -> tuple[optuna.Study, list[str]]:
    """A throw-away 2-objective study of raw metrics, so Optuna can draw their front."""
    import optuna

    scored = cfg.scored
    hw = [m.name for m in scored[1:] if METRICS[m.name].hardware]  # cost in hardware if scored
    rest = [m.name for m in scored[1:]]
    axes = [scored[0].name, (hw or rest or ["score"])[0]]
    dirs = {m.name: m.direction for m in scored} | {"score": "maximize"}
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    try:
        mem = optuna.create_study(directions=[dirs[a] for a in axes])
    finally:
        optuna.logging.set_verbosity(level)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        vals = [t.value if a == "score" else metric_attrs(t.user_attrs).get(a) for a in axes]
        if any(v is None for v in vals):
            continue
        mem.add_trial(
            optuna.trial.create_trial(
                values=vals,
                params=t.params,
                distributions=t.distributions,
                user_attrs=metric_attrs(t.user_attrs),
                system_attrs=t.system_attrs,  # carries the constraints: infeasible greyed
            )
        )
    return mem, axes


def plot_pareto(study: optuna.Study, cfg: SearchConfig, path: Path) -> None:
    from optuna.visualization.matplotlib import plot_pareto_front

    names = list(Objective.of(cfg).names)
    if len(names) >= 2:
        targets = (lambda t: t.values[:2]) if len(names) > 3 else None
        ax = plot_pareto_front(study, target_names=names[:2] if targets else names, targets=targets)
    else:
        mem, axes = _metric_study(study, cfg)
        ax = plot_pareto_front(mem, target_names=axes)
        names = axes
    ax.set_title(f"{study.study_name}: Pareto front of {' vs '.join(names[:3])}")
    _save(ax, path)


def plot_history(study: optuna.Study, cfg: SearchConfig, path: Path) -> None:
    from optuna.visualization.matplotlib import plot_optimization_history

    names = Objective.of(cfg).names
    if len(names) == 1:
        ax = plot_optimization_history(study, target_name=names[0])
    else:
        ax = plot_optimization_history(study, target=lambda t: t.values[0], target_name=names[0])
    ax.set_title(f"{study.study_name}: optimisation history")
    _save(ax, path)


def _export(
    t: optuna.trial.FrozenTrial, cfg: SearchConfig, context: ModelContext, out: Path
) -> dict[str, Any]:
    """Rebuild the trial's spec from its parameters; write its design directory
    (``<top>.v``, ``<top>.spec.json``, manifest), or only ``spec.json`` when the Verilog
    export fails."""
    space = SearchSpace.from_config(cfg)
    design = space.design(dict(t.params))
    net, record = context.build(design.quant_config(), l1=design.l1)  # trained again, same seed
    d = out / "best" / f"trial_{t.number}"
    old_spec = d / "spec.json"  # the layout before hdl.design, or a failed export
    entry: dict[str, Any] = {"spec": None, "verilog": None}
    scored = t.user_attrs.get(QAT_SPEC_ATTR)
    if scored is not None and record.get(QAT_SPEC_ATTR) != scored:  # e.g. another machine
        entry["spec_mismatch"] = (
            f"the rebuilt spec ({record.get(QAT_SPEC_ATTR)}) is not the one trial "
            f"{t.number} scored ({scored}): fine-tuning did not reproduce here"
        )
    h = cfg.hardware
    try:
        hw = HardwareParams(h.target, design.impl, design.stages, clock_mhz=h.clock_mhz)
        v = export_verilog(net, hw, d)
        entry |= {"spec": str(v.with_suffix(".spec.json")), "verilog": str(v)}
        old_spec.unlink(missing_ok=True)
        return entry
    except WriteError:  # the output path, not the design: the user must fix it
        raise
    except HardwareError as e:
        entry["verilog_error"] = str(e)
    except Exception as e:  # the report must not die on one design's export
        entry["verilog_error"] = f"{type(e).__name__}: {e}"
    entry["spec"] = str(atomic_write(old_spec, net.to_json()))
    return entry


def _previous_exports(path: Path, numbers: set[int]) -> dict[int, dict[str, Any]]:
    try:
        entries = read_json(path, "best.json")["best"]
    except (ValueError, KeyError, TypeError):
        return {}
    keep = ("spec", "verilog", "verilog_error", "spec_mismatch")
    return {
        e["trial"]: {k: e[k] for k in keep if k in e}
        for e in entries
        if e.get("trial") in numbers and Path(e.get("spec") or "").is_file()
    }


def best_json(
    study: optuna.Study,
    cfg: SearchConfig,
    best: list[optuna.trial.FrozenTrial],
    exports: dict[int, dict[str, Any]],
    storage: str | None,
) -> str:
    objective = Objective.of(cfg)
    confirmed = study.user_attrs.get(CONFIRMED_ATTR) or {}

    def confirmation(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
        """Where the metrics came from and, when confirmed, the synthesised figures."""
        if HW_SOURCE_ATTR not in t.user_attrs:
            return {}
        out = {HW_SOURCE_ATTR: t.user_attrs[HW_SOURCE_ATTR]}
        if CLOCK_ATTR in t.user_attrs:
            out[CLOCK_ATTR] = t.user_attrs[CLOCK_ATTR]
        if cfg.hardware.confirm:
            out["confirmed"] = confirmed.get(str(t.number))
        return out

    entries = []
    for t in best:
        attrs = metric_attrs(t.user_attrs)
        entries.append(
            {
                "trial": t.number,
                "values": dict(zip(objective.names, t.values, strict=True)),
                "params": t.params,
                "config": attrs.get(CONFIG_ATTR),
                "formats": attrs.get(FORMATS_ATTR),
                "metrics": {m: attrs[m] for m in metric_names(attrs)},
                **{k: attrs.get(k) for k in (TRAINING_ATTRS if cfg.training.enabled else ())},
                "constraints": t.constraints,
                **confirmation(t),
                **exports.get(t.number, {}),
            }
        )
    doc = {
        "study": study.study_name,
        "storage": None if storage is None else redact(storage),  # no password in a report
        "mode": cfg.score.mode,
        "objectives": dict(zip(objective.names, objective.directions, strict=True)),
        "trials": len(study.trials),
        "reference_metrics": metric_attrs(study.user_attrs.get(REFERENCE_ATTR) or {}) or None,
        "best": entries,
    }
    return json.dumps(doc, indent=1, default=str) + "\n"


def write_reports(
    study: optuna.Study,
    cfg: SearchConfig,
    out_dir: str | Path,
    *,
    context: ModelContext | None = None,
    storage: str | None = None,
    export: bool = True,
) -> Reports:
    """Write every report into ``out_dir``; ``context`` (the model) is needed to export."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna

    out = Path(out_dir)
    paths = {k: out / k for k in REPORT_FILES}
    check_report_paths(out)
    atomic_write(paths["trials.csv"], trials_csv(study, cfg))
    best = best_trials(study)
    if export and context is not None:
        exports = {t.number: _export(t, cfg, context, out) for t in best}
    else:  # keep what an earlier report exported for the same trials
        exports = _previous_exports(paths["best.json"], {t.number for t in best})
    atomic_write(paths["best.json"], best_json(study, cfg, best, exports, storage))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # e.g. "no complete trials" on a fresh study
        plot_pareto(study, cfg, paths["pareto.png"])
        plot_history(study, cfg, paths["history.png"])
    verilog = tuple(Path(e["verilog"]) for e in exports.values() if e.get("verilog"))
    errors = tuple(f"trial {n}: {e['verilog_error']}" for n, e in exports.items()
                   if e.get("verilog_error"))  # fmt: skip
    return Reports(
        out,
        paths["trials.csv"],
        paths["best.json"],
        paths["pareto.png"],
        paths["history.png"],
        tuple(t.number for t in best),
        verilog,
        errors,
    )
