"""The LeakyReLU study (issue #10): is the shift-only LeakyReLU free, and does training at a
power-of-two slope remove its post-training-quantisation accuracy loss, for whole networks?

For each model and training seed, three float networks are trained (ReLU, LeakyReLU 0.3,
LeakyReLU 0.25) and quantised at each bit width (activations and weights) into five variants:

* ``relu``          -- the ReLU network (control);
* ``mult``          -- the 0.3 network, LeakyReLU as a constant multiplier (slope 0.3 quantised);
* ``shift_ptq``     -- the 0.3 network, slope rounded to 2^-2 after training (a shift);
* ``shift_trained`` -- the network trained at 0.25 = 2^-2 (the shift is exact);
* ``shift_qat``     -- ``shift_ptq`` fine-tuned by QAT (straight-through estimator).

Accuracy is the test accuracy of the spec's integer codes (:mod:`qspec.integer_forward`).
The accuracy cost of a shift variant is its paired difference to ``mult`` (same model, bits
and seed), with a two-sided 95 % Student-t interval over seeds.  Hardware (LUT-equivalents,
DSPs, latency, Fmax) comes from synthesising the generated networks (:func:`hardware_of`),
for the first ``hw_seeds`` seeds.

``python -m search.study`` (or ``python -m search study``; ``nox -s study``) writes
``docs/leaky_study.md``, ``docs/leaky_study_*.png`` and ``bench/results/leaky_study.json``.
Trained networks (and QAT results) are kept in a study directory and reused on a rerun.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO / "docs"
JSON_PATH = REPO / "bench" / "results" / "leaky_study.json"
PAGE_NAME = "leaky_study.md"
STUDY_ENV = "HWFIRST_STUDY_DIR"

SLOPE = 0.3  # not a power of two
POW2_SLOPE = 0.25  # 2^-2, the power of two nearest 0.3 (in log2)
POW2_SHIFT = 2
MODELS = ("jsc-toy", "jsc-s")
BITS = (8, 6, 4)
SEEDS = 5
DATASET = "digits16"
CONFIDENCE = 0.95

# variant -> (trained activation, trained slope, leaky_impl, quantised slope, qat)
VARIANTS: dict[str, tuple[str, float | None, str | None, float | None, bool]] = {
    "relu": ("relu", None, None, None, False),
    "mult": ("leaky_relu", SLOPE, "mult", SLOPE, False),
    "shift_ptq": ("leaky_relu", SLOPE, "shift", POW2_SLOPE, False),
    "shift_trained": ("leaky_relu", POW2_SLOPE, "shift", POW2_SLOPE, False),
    "shift_qat": ("leaky_relu", SLOPE, "shift", POW2_SLOPE, True),
}
LABELS = {
    "relu": "ReLU (control)",
    "mult": "mult, trained 0.3",
    "shift_ptq": "shift 2^-2, trained 0.3 (PTQ)",
    "shift_trained": "shift 2^-2, trained 0.25",
    "shift_qat": "shift 2^-2, trained 0.3 + QAT",
}
SHIFT_VARIANTS = ("shift_ptq", "shift_trained", "shift_qat")
# (activation, slope) of each float network a seed needs
TRAININGS = (("relu", None), ("leaky_relu", SLOPE), ("leaky_relu", POW2_SLOPE))


@dataclass(frozen=True)
class StudyConfig:
    """What to run; ``epochs``/``patience`` are the float training, ``qat_*`` the fine-tuning."""

    models: tuple[str, ...] = MODELS
    seeds: int = SEEDS
    bits: tuple[int, ...] = BITS
    epochs: int = 200
    patience: int = 20
    qat_epochs: int = 40
    qat_patience: int = 10
    qat_lr: float = 1e-3
    hardware: bool = True
    hw_seeds: int = 1  # synthesise seeds 0 .. hw_seeds-1 of every (model, variant, bits)
    target: str = "ecp5"
    impl: str = "adder_tree"
    stages: int = 1  # registers per layer, so Fmax is measured between registers
    hw_budget: float | None = None  # seconds of synthesis; networks not started by then: skipped
    hw_timeout: float = 3600.0  # seconds per tool run (jsc-s layers exceed hdl's 600 s default)
    # models placed for Fmax: one jsc-s layer takes 10-30 min in nextpnr-ecp5 (WebAssembly)
    fmax_models: tuple[str, ...] = ("jsc-toy",)
    quick: bool = False

    def __post_init__(self) -> None:
        from models.modelspec import MODELS as KNOWN

        for m in self.models:
            if m not in KNOWN or m == "jsc-tiny":
                raise ValueError(f"--models: {m!r} is not a model with activations; allowed: "
                                 f"{', '.join(k for k in KNOWN if k != 'jsc-tiny')}")  # fmt: skip
        if not self.models:
            raise ValueError("--models must name at least one model")
        for m in self.fmax_models:
            if m not in KNOWN:
                raise ValueError(f"--fmax-models: {m!r} is not a model; allowed: "
                                 f"{', '.join(KNOWN)}")  # fmt: skip
        for b in self.bits:
            if not 2 <= b <= 16:
                raise ValueError(f"--bits must be integers in [2, 16], got {b}")
        if not self.bits:
            raise ValueError("--bits must name at least one width")
        for k in ("seeds", "epochs", "patience", "qat_epochs", "qat_patience"):
            if getattr(self, k) < 1:
                raise ValueError(f"--{k.replace('_', '-')} must be >= 1, got {getattr(self, k)}")
        if self.hw_budget is not None and not self.hw_budget > 0:
            raise ValueError(f"--hw-budget must be > 0 minutes, got {self.hw_budget / 60:g}")
        if not 0 <= self.hw_seeds <= self.seeds:
            raise ValueError(f"--hw-seeds must be in [0, {self.seeds}], got {self.hw_seeds}")


QUICK = dict(models=("jsc-toy",), seeds=2, bits=(8, 4), epochs=60, qat_epochs=10)


# ---------------------------------------------------------------------------------- accuracy


def study_dir(directory: str | Path | None = None) -> Path:
    """Where trained networks live: ``directory``, ``$HWFIRST_STUDY_DIR``, else the user cache."""
    if directory is not None:
        return Path(directory)
    if os.environ.get(STUDY_ENV):
        return Path(os.environ[STUDY_ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("hwfirst", appauthor=False)) / "leaky_study"


def _run_dir(cfg: StudyConfig, root: Path) -> Path:
    # training settings in the path: a quick run never reuses (or spoils) a full run's networks
    return (
        root / f"e{cfg.epochs}_p{cfg.patience}_q{cfg.qat_epochs}_{cfg.qat_patience}_{cfg.qat_lr!r}"
    )


def quant_config(bits: int, variant: str):
    """The uniform ``bits``-wide :class:`~models.qconfig.QuantConfig` of ``variant``."""
    from models.qconfig import QuantConfig

    _, _, impl, slope, _ = VARIANTS[variant]
    layer: dict[str, Any] = {"width": bits}
    if impl is not None:
        layer.update(leaky_impl=impl, slope=slope)
    return QuantConfig.from_dict({"default": layer})


def spec_accuracy(spec, split) -> float:
    """Accuracy of the spec's integer codes on ``split`` (host-quantised inputs)."""
    import numpy as np

    from qspec.integer_forward import predict, quantise_input

    return float(np.mean(predict(spec, quantise_input(spec, split.x)) == split.y))


def leaky_slopes(spec) -> list[float]:
    """The slope each LeakyReLU of ``spec`` implements (after quantisation)."""
    from qspec.leaky import LeakyReLUSpec

    return [float(ly.slope) for ly in spec.layers if isinstance(ly, LeakyReLUSpec)]


def train_or_load(name, ds, activation, slope, seed, cfg: StudyConfig, directory: Path, progress):
    """The float network of these settings from ``directory``, trained there if absent."""
    from models.modelspec import DEFAULT_SLOPE
    from models.store import checkpoint_stem
    from models.train import TrainConfig, load_float, save_float, train_float
    from models.zoo import ModelSpec

    slope = DEFAULT_SLOPE if slope is None else slope
    stem = checkpoint_stem(name, ds.name, activation, slope=slope, seed=seed)
    if (directory / f"{stem}.pt").is_file():  # only this directory: never the shipped ones
        return load_float(name, ds.name, activation, directory, slope=slope, seed=seed)[0]
    spec = ModelSpec(name, ds.num_features, ds.num_classes, activation, slope)
    tcfg = TrainConfig(epochs=cfg.epochs, patience=cfg.patience, seed=seed)
    model, meta = train_float(spec, ds, tcfg, progress=progress)
    save_float(model, meta, directory)
    return model


def qat_spec(folded, qconfig, ds, cfg: StudyConfig, seed: int, path: Path, progress: bool):
    """QAT fine-tuning of ``folded`` under ``qconfig``; its integer spec, cached at ``path``."""
    from qspec.files import atomic_write
    from qspec.network import QuantisedNetwork

    if path.is_file():
        return QuantisedNetwork.from_dict(json.loads(path.read_text()))
    from models.train import TrainConfig, train_qat

    tcfg = TrainConfig(epochs=cfg.qat_epochs, patience=cfg.qat_patience, lr=cfg.qat_lr, seed=seed)
    fq, _ = train_qat(folded, qconfig, ds, tcfg, progress=progress)
    spec = fq.spec
    atomic_write(path, json.dumps(spec.to_dict()))
    return spec


def run_accuracy(cfg: StudyConfig, root: Path, progress: bool = True):
    """Every (model, variant, bits, seed) cell: test accuracy of its integer spec.

    Returns ``(cells, specs)``; ``specs`` maps ``(model, variant, bits, seed)`` to the spec.
    """
    import torch
    from tqdm.auto import tqdm

    from models.data import load_dataset
    from models.fold import fold_batchnorm
    from models.quant import quantise_network
    from models.train import evaluate

    torch.set_num_threads(1)  # shared machine; these models are far too small to gain from more
    ds = load_dataset(DATASET)
    directory = _run_dir(cfg, root)
    cells, specs = [], {}
    jobs = [(m, s) for m in cfg.models for s in range(cfg.seeds)]
    bar = tqdm(jobs, desc="study", disable=not progress)
    for name, seed in bar:
        folded, float_acc = {}, {}
        for activation, slope in TRAININGS:
            bar.set_postfix_str(f"{name} seed {seed} train {activation} {slope or ''}")
            model = train_or_load(name, ds, activation, slope, seed, cfg, directory, progress)
            folded[slope] = fold_batchnorm(model)
            float_acc[slope] = evaluate(folded[slope], ds.test)[0]
        for bits in cfg.bits:
            for variant, (_, tslope, _, _, qat) in VARIANTS.items():
                qc = quant_config(bits, variant)
                if qat:
                    bar.set_postfix_str(f"{name} seed {seed} QAT {bits} bits")
                    path = (
                        directory / "qat" / f"{name}_{DATASET}_s{SLOPE!r}_b{bits}_seed{seed}.json"
                    )
                    spec = qat_spec(folded[tslope], qc, ds, cfg, seed, path, progress)
                else:
                    spec = quantise_network(folded[tslope], qc, ds.train.x)
                slopes = leaky_slopes(spec)
                if variant.startswith("shift") and set(slopes) != {POW2_SLOPE}:
                    raise AssertionError(f"{variant} implements slopes {slopes}, not 2^-2")
                specs[name, variant, bits, seed] = spec
                cells.append(
                    dict(
                        model=name, variant=variant, bits=bits, seed=seed,
                        test_acc=spec_accuracy(spec, ds.test),
                        float_acc=float_acc[tslope],
                        slope=slopes[0] if slopes else None,
                    )
                )  # fmt: skip
    return cells, specs


# ---------------------------------------------------------------------------------- hardware


class HardwarePending(Exception):
    """Network synthesis is not available (yet): the page says "hardware: pending"."""


HW_ORDER = ("mult", "shift_ptq", "relu", "shift_trained", "shift_qat")
HW_KEYS = ("lut_equivalents", "luts", "carries", "ffs", "dsps", "latency", "fmax_mhz")


def hardware_of(spec, cfg: StudyConfig, cache=None, fmax: bool = True) -> dict[str, Any]:
    """Synthesise ``spec`` as one network; the totals the study reports.

    The one place the study touches synthesis.  Raises :class:`HardwarePending` when
    network synthesis cannot be imported (it is being built concurrently).
    """
    try:
        from hdl.synth.network import synthesise_network

        result = synthesise_network(
            spec, cfg.target, impl=cfg.impl, stages=cfg.stages, fmax=fmax, cache=cache,
            timeout=cfg.hw_timeout,
        )  # fmt: skip
    except ImportError as e:  # also raised lazily inside, by the exporter
        raise HardwarePending(f"network synthesis is not importable: {e}") from None
    total = result.total
    out = {k: getattr(total, k, None) for k in HW_KEYS}
    out["lut_equivalents"] = total.lut_equivalents
    return out


STOPPED = "not synthesised: the run stopped before it"


def run_hardware(cfg: StudyConfig, specs: dict, progress: bool = True, on_row=None):
    """Hardware of the first ``hw_seeds`` seeds of every (model, variant, bits).

    Returns ``(rows, status)``: ``status`` is ``"ok"`` or why the hardware is pending.  A
    network whose synthesis fails gets a row with ``error`` and no numbers.  ``on_row(rows,
    todo)`` is called after each network (``todo``: the keys still to do), so a run that is
    cut off leaves consistent results behind.
    """
    from tqdm.auto import tqdm

    if not cfg.hardware or cfg.hw_seeds == 0:
        return [], "pending (not run: --no-hw)"
    import time

    # model by model (the first is the smallest by default); within one the mult/shift pairs
    # (the hardware claim) first, narrow widths first: a budget cuts the most expensive
    rank = {v: i for i, v in enumerate(HW_ORDER)}
    keys = sorted(
        (k for k in specs if k[3] < cfg.hw_seeds),
        key=lambda k: (cfg.models.index(k[0]), rank[k[1]] > 1, k[2], k[3], rank[k[1]]),
    )
    rows = []
    start = time.monotonic()
    for i, key in enumerate(tqdm(keys, desc="synthesis", disable=not progress)):
        if on_row is not None and rows:
            on_row(rows, keys[i:])
        model, variant, bits, seed = key
        row: dict[str, Any] = dict(model=model, variant=variant, bits=bits, seed=seed)
        if cfg.hw_budget is not None and time.monotonic() - start > cfg.hw_budget:
            rows.append({**row, **dict.fromkeys(HW_KEYS), "error": "skipped: --hw-budget spent"})
            continue
        try:
            row.update(hardware_of(specs[key], cfg, fmax=model in cfg.fmax_models))
        except HardwarePending as e:
            return [], f"pending ({e})"
        except Exception as e:  # a failed tool run is reported, never turned into numbers
            row.update(dict.fromkeys(HW_KEYS), error=f"{type(e).__name__}: {e}".splitlines()[0])
        rows.append(row)
    return rows, "ok"


# ---------------------------------------------------------------------------------- statistics


def t_interval(values: Sequence[float], level: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): two-sided Student-t interval of the mean (nan bounds for n < 2)."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _std(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def summarise(cells: list[dict], hw_rows: list[dict]) -> list[dict]:
    """One row per (model, bits, variant): accuracy mean/std over seeds + mean hardware."""
    rows = []
    keys = dict.fromkeys((c["model"], c["bits"], c["variant"]) for c in cells)
    for model, bits, variant in keys:
        cs = [c for c in cells if (c["model"], c["bits"], c["variant"]) == (model, bits, variant)]
        accs = [c["test_acc"] for c in cs]
        hs = [
            h
            for h in hw_rows
            if (h["model"], h["bits"], h["variant"]) == (model, bits, variant) and "error" not in h
        ]
        row = dict(
            model=model, bits=bits, variant=variant, n=len(accs),
            acc_mean=sum(accs) / len(accs), acc_std=_std(accs),
            float_acc_mean=sum(c["float_acc"] for c in cs) / len(cs),
            slope=cs[0]["slope"], hw_seeds=len(hs),
        )  # fmt: skip
        for k in HW_KEYS:
            vals = [h[k] for h in hs if h.get(k) is not None]
            row[k] = sum(vals) / len(vals) if vals else None
        rows.append(row)
    return rows


# (variant, reference): each shift variant against the multiplier, and training at 2^-2
# against rounding to it after training
PAIRS = tuple((v, "mult") for v in SHIFT_VARIANTS) + (("shift_trained", "shift_ptq"),)


def paired_deltas(cells: list[dict]) -> list[dict]:
    """Accuracy of variant minus reference (:data:`PAIRS`), paired over seeds, t-interval."""
    acc = {(c["model"], c["variant"], c["bits"], c["seed"]): c["test_acc"] for c in cells}
    out = []
    for model, bits in dict.fromkeys((c["model"], c["bits"]) for c in cells):
        seeds = sorted({c["seed"] for c in cells if (c["model"], c["bits"]) == (model, bits)})
        for variant, ref in PAIRS:
            d = [acc[model, variant, bits, s] - acc[model, ref, bits, s] for s in seeds]
            mean, lo, hi = t_interval(d)
            out.append(
                dict(model=model, bits=bits, variant=variant, ref=ref, n=len(d),
                     mean=mean, low=lo, high=hi, diffs=d)
            )  # fmt: skip
    return out


def hw_deltas(hw_rows: list[dict]) -> list[dict]:
    """Hardware of ``shift_ptq`` minus ``mult``: the same Linear weights, only the activation
    differs, so this isolates what the multiplier costs in a whole network."""
    hw = {(h["model"], h["variant"], h["bits"], h["seed"]): h for h in hw_rows if "error" not in h}
    out = []
    for model, variant, bits, seed in hw:
        if variant != "mult" or (model, "shift_ptq", bits, seed) not in hw:
            continue
        a, b = hw[model, "mult", bits, seed], hw[model, "shift_ptq", bits, seed]
        d = {k: (b[k] - a[k] if a[k] is not None and b[k] is not None else None) for k in HW_KEYS}
        out.append(dict(model=model, bits=bits, seed=seed, mult=a, shift=b, delta=d))
    return out


# ---------------------------------------------------------------------------------- verdict

MATERIAL = 0.01  # an accuracy difference below one point is treated as negligible


def verdict(deltas: list[dict], hw_d: list[dict], hw_status: str) -> dict[str, Any]:
    """The seed's three claims, judged from the intervals (rules stated on the page)."""

    def judge(variant):
        ds = [d for d in deltas if d["variant"] == variant and d["ref"] == "mult"]
        loss = [d for d in ds if d["high"] < 0]  # CI entirely below 0: a real loss
        material = [d for d in loss if d["mean"] <= -MATERIAL]
        clean = [d for d in ds if not d["high"] < 0]
        return ds, loss, material, clean

    ptq, ptq_loss, ptq_mat, _ = judge("shift_ptq")
    trained, tr_loss, tr_mat, tr_clean = judge("shift_trained")
    qat, qat_loss, _, _ = judge("shift_qat")
    worst_trained = min((d["low"] for d in trained if not math.isnan(d["low"])), default=math.nan)
    v: dict[str, Any] = {
        "cells": len(ptq),
        "ptq_loss_cells": len(ptq_loss),
        "ptq_material_loss_cells": len(ptq_mat),
        "trained_loss_cells": len(tr_loss),
        "trained_material_loss_cells": len(tr_mat),
        "trained_worst_ci_low": worst_trained,
        "qat_loss_cells": len(qat_loss),
    }
    v["ptq_loss_observed"] = bool(ptq_loss)
    v["trained_loss_observed"] = bool(tr_loss)
    # the claim has two parts: PTQ to 2^-2 loses accuracy, and training at 2^-2 prevents it
    v["accuracy_claim"] = {
        (True, False): "supported",
        (True, True): "not supported",
        (False, False): "premise not observed",
        (False, True): "contradicted",
    }[bool(ptq_loss), bool(tr_loss)]
    if hw_status == "ok" and any(h["delta"]["lut_equivalents"] is not None for h in hw_d):
        dl = [
            h["delta"]["lut_equivalents"] for h in hw_d if h["delta"]["lut_equivalents"] is not None
        ]
        dd = [h["delta"]["dsps"] for h in hw_d if h["delta"]["dsps"] is not None]
        v["hw_shift_minus_mult_luteq"] = dl
        v["hw_shift_minus_mult_dsps"] = dd
        v["hw_shift_never_larger"] = all(x <= 0 for x in dl) and all(x <= 0 for x in dd)
    else:
        v["hw_shift_never_larger"] = None
    return v


# ---------------------------------------------------------------------------------- reports


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.{digits}f}"


def _num(x, fmt="{:.0f}") -> str:
    return "–" if x is None else fmt.format(x)


def plot(summary: list[dict], hw_status: str, out_dir: Path, stem: str) -> list[Path]:
    """PNGs: accuracy vs bits per model, and accuracy vs LUT-equivalents when measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qspec.files import atomic_write

    models = list(dict.fromkeys(r["model"] for r in summary))
    markers = dict(zip(VARIANTS, "osD^v", strict=True))
    paths = []

    def save(fig, name):
        path = out_dir / f"{stem}_{name}.png"
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
        plt.close(fig)
        paths.append(path)

    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for variant in VARIANTS:
            rs = sorted((r for r in summary if (r["model"], r["variant"]) == (model, variant)),
                        key=lambda r: r["bits"])  # fmt: skip
            ax.errorbar([r["bits"] for r in rs], [r["acc_mean"] for r in rs],
                        yerr=[0 if math.isnan(r["acc_std"]) else r["acc_std"] for r in rs],
                        marker=markers[variant], capsize=3, label=LABELS[variant])  # fmt: skip
        ax.set(title=f"{model} ({DATASET})", xlabel="bits (weights and activations)",
               ylabel="test accuracy (mean ± std over seeds)")  # fmt: skip
        ax.set_xticks(sorted({r["bits"] for r in summary}))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    save(fig, "accuracy")

    hw_models = [m for m in models if any(
        r["lut_equivalents"] is not None for r in summary if r["model"] == m)]  # fmt: skip
    if hw_status == "ok" and hw_models:
        fig, axes = plt.subplots(
            1, len(hw_models), figsize=(5.2 * len(hw_models), 4), squeeze=False
        )
        for ax, model in zip(axes[0], hw_models, strict=True):
            for variant in VARIANTS:
                rs = [r for r in summary if (r["model"], r["variant"]) == (model, variant)
                      and r["lut_equivalents"] is not None]  # fmt: skip
                ax.errorbar([r["lut_equivalents"] for r in rs], [r["acc_mean"] for r in rs],
                            yerr=[0 if math.isnan(r["acc_std"]) else r["acc_std"] for r in rs],
                            marker=markers[variant], linestyle="none", capsize=3,
                            label=LABELS[variant])  # fmt: skip
                for r in rs:
                    ax.annotate(f"{r['bits']}b", (r["lut_equivalents"], r["acc_mean"]),
                                fontsize=6, xytext=(3, 3), textcoords="offset points")  # fmt: skip
            ax.set(title=f"{model}: accuracy vs area", xscale="log", ylabel="test accuracy",
                   xlabel="LUT-equivalents (ECP5 LUT4 + 2·CCU2C)")  # fmt: skip
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7)
        save(fig, "area")
    return paths


def render_page(result: dict[str, Any], pngs: list[Path], page_path: Path) -> str:
    """The markdown page (tables, intervals, verdict, plots)."""
    cfg, summary, deltas = result["config"], result["summary"], result["deltas"]
    hw_status = result["hardware_status"]
    conf = int(CONFIDENCE * 100)
    cmd = "python -m search study" + (" --quick" if cfg["quick"] else "")
    lines = [
        "# LeakyReLU: shift vs multiplier, PTQ vs training at 2^-2 (issue #10)",
        "",
        f"Generated by `{cmd}` (or `nox -s study`) -- do not edit by hand; "
        "raw numbers in `bench/results/leaky_study.json`.",
        "",
        f"Models {', '.join(cfg['models'])} on `{DATASET}`; {cfg['seeds']} training seeds "
        f"(0..{cfg['seeds'] - 1}: initialisation and batch order); float training up to "
        f"{cfg['epochs']} epochs (early stopping, patience {cfg['patience']}); QAT up to "
        f"{cfg['qat_epochs']} epochs at lr {cfg['qat_lr']}. Quantisation: every width "
        "(inputs, weights, biases, activations) = bits, fractional widths calibrated (mse) "
        "on the train split, floor rounding, saturation. Accuracy = test split, scored on "
        "the spec's integer codes (`qspec.integer_forward`).",
        "",
        "| variant | trained with | LeakyReLU in hardware |",
        "|---|---|---|",
        "| `relu` | ReLU | – (control) |",
        f"| `mult` | LeakyReLU {SLOPE} | constant multiplier: slope {SLOPE} rounded to "
        "a `bits`-bit code (qspec's default, finest fraction width) |",
        f"| `shift_ptq` | LeakyReLU {SLOPE} | shift by {POW2_SHIFT} (slope rounded to 2^-2 "
        "after training) |",
        f"| `shift_trained` | LeakyReLU {POW2_SLOPE} | shift by {POW2_SHIFT} (exact) |",
        "| `shift_qat` | LeakyReLU 0.3 | `shift_ptq` fine-tuned through the fake-quantised "
        "network (straight-through estimator) |",
        "",
    ]
    if cfg["quick"]:
        lines += ["**Quick run** (`--quick`): fewer models, seeds, bits and epochs -- a smoke "
                  "test, not the study.", ""]  # fmt: skip
    hw_note = {
        True: f"hardware: synthesised for seed(s) 0..{cfg['hw_seeds'] - 1} of each "
        f"(model, variant, bits) ({cfg['target']}, `{cfg['impl']}`, {cfg['stages']} register "
        "stage(s) per layer); LUT-eq = LUT4 + 2·CCU2C; Fmax (the slowest layer, placed on an "
        f"LFE5U-85F) for {', '.join(cfg.get('fmax_models', cfg['models']))} only: placing one "
        "jsc-s layer takes 10-30 min in nextpnr-ecp5's WebAssembly build (add it with "
        "`--fmax-models jsc-toy jsc-s`)",
        False: f"hardware: {hw_status}",
    }[hw_status == "ok"]
    lines += [
        "## Results",
        "",
        f"Test accuracy in %, mean ± std over seeds; slope = what the LeakyReLU implements; "
        f"{hw_note}.",
        "",
        "| model | bits | variant | slope | float acc | quantised acc | LUT-eq | DSP | latency "
        "| Fmax MHz |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        slope = "–" if r["slope"] is None else f"{r['slope']:g}"
        lines.append(
            f"| {r['model']} | {r['bits']} | `{r['variant']}` | {slope} | "
            f"{_pct(r['float_acc_mean'])} | {_pct(r['acc_mean'])} ± {_pct(r['acc_std'])} | "
            f"{_num(r['lut_equivalents'])} | {_num(r['dsps'])} | {_num(r['latency'])} | "
            f"{_num(r['fmax_mhz'], '{:.1f}')} |"
        )
    lines += [
        "",
        "## Accuracy cost of the shift variant",
        "",
        f"Accuracy of each shift variant minus `mult`, in percentage points, paired by seed "
        f"(same model, bits and training seed); mean and two-sided {conf} % Student-t "
        f"interval over the n = {cfg['seeds']} paired differences (t with n-1 degrees of "
        "freedom). An interval entirely below 0 is a loss. `shift_qat` is fine-tuned and "
        "`mult` is not: its column shows what QAT buys, not a like-for-like comparison.",
        "",
        "| model | bits | shift_ptq − mult | shift_trained − mult | shift_qat − mult "
        "| shift_trained − shift_ptq |",
        "|---|---|---|---|---|---|",
    ]
    for model, bits in dict.fromkeys((d["model"], d["bits"]) for d in deltas):
        cols = []
        for variant, ref in PAIRS:
            d = next(x for x in deltas if (x["model"], x["bits"], x["variant"], x["ref"]) ==
                     (model, bits, variant, ref))  # fmt: skip
            cols.append(f"{_pct(d['mean'])} [{_pct(d['low'])}, {_pct(d['high'])}]")
        lines.append(f"| {model} | {bits} | " + " | ".join(cols) + " |")
    lines += ["", "## Hardware cost of the multiplier", ""]
    if hw_status != "ok":
        lines += [f"hardware: {hw_status}. No synthesis numbers are reported.", ""]
    else:
        lines += [
            "`shift_ptq` and `mult` quantise the *same* trained network with the same "
            "calibration, so their Linear layers are identical and the difference is the "
            "LeakyReLU alone (shift − mult; negative = the shift is cheaper):",
            "",
            "| model | bits | seed | mult LUT-eq | shift LUT-eq | Δ LUT-eq | Δ DSP | Δ latency "
            "| mult Fmax | shift Fmax |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for h in result["hw_deltas"]:
            a, b, d = h["mult"], h["shift"], h["delta"]
            lines.append(
                f"| {h['model']} | {h['bits']} | {h['seed']} | {_num(a['lut_equivalents'])} | "
                f"{_num(b['lut_equivalents'])} | {_num(d['lut_equivalents'], '{:+.0f}')} | "
                f"{_num(d['dsps'], '{:+.0f}')} | {_num(d['latency'], '{:+.0f}')} | "
                f"{_num(a['fmax_mhz'], '{:.1f}')} | {_num(b['fmax_mhz'], '{:.1f}')} |"
            )
        lines.append("")
    failed = [h for h in result["hardware"] if "error" in h]
    if failed:
        lines += ["Not synthesised (no numbers reported for these):", ""]
        lines += [f"- {h['model']} {h['bits']} bits `{h['variant']}` seed {h['seed']}: "
                  f"{h['error']}" for h in failed]  # fmt: skip
        lines.append("")
    lines += ["## Verdict on the seed's claim", ""] + verdict_text(result) + [""]
    if pngs:
        lines += ["## Plots", ""]
        for p in pngs:
            rel = os.path.relpath(p, page_path.parent)
            lines += [f"![{p.stem}]({rel})", ""]
    lines += [
        "## Reproduce",
        "",
        "```sh",
        "nox -s study                      # the full study (this page)",
        "python -m search study [--models jsc-toy jsc-s] [--seeds 5] [--bits 8 6 4] "
        "[--hw-seeds 1] [--hw-budget MIN] [--no-hw]",
        "python -m search study --render-only  # rebuild this page from the JSON",
        "python -m search study --quick    # jsc-toy, 2 seeds, 8/4 bits, short training",
        "```",
        "",
        "Trained networks are kept in `$HWFIRST_STUDY_DIR` (default: the user cache "
        "`hwfirst/leaky_study`) and synthesis results in the synthesis cache, so a rerun only "
        "recomputes what changed.",
        "",
    ]
    return "\n".join(lines)


def verdict_text(result: dict[str, Any]) -> list[str]:
    v, deltas, hw_status = result["verdict"], result["deltas"], result["hardware_status"]
    n = v["cells"]
    conf = int(CONFIDENCE * 100)
    out = [
        f"Rules: a shift variant *loses* accuracy at a (model, bits) when its {conf} % interval "
        "against `mult` lies entirely below 0; a loss is *material* when its mean is a point "
        f"or more. Over {n} (model, bits) cells:",
        "",
        f"- **PTQ to 2^-2 loses accuracy** in {v['ptq_loss_cells']} of {n} cells "
        f"({v['ptq_material_loss_cells']} material).",
        f"- **Training at 2^-2** loses accuracy in {v['trained_loss_cells']} of {n} cells "
        f"({v['trained_material_loss_cells']} material); the lowest interval bound is "
        f"{_pct(v['trained_worst_ci_low'])} points.",
        f"- **QAT of the PTQ network** loses accuracy in {v['qat_loss_cells']} of {n} cells.",
    ]
    tp = [d for d in deltas if d["ref"] == "shift_ptq"]
    better = [f"{d['model']} {d['bits']}b" for d in tp if d["low"] > 0]
    worse = [f"{d['model']} {d['bits']}b" for d in tp if d["high"] < 0]
    out.append(
        f"- **Training at 2^-2 instead of rounding to it after training** is measurably "
        f"better in {len(better)} of {len(tp)} cells ({', '.join(better) or 'none'}) and "
        f"measurably worse in {len(worse)} ({', '.join(worse) or 'none'})."
    )
    widths = [d["high"] - d["low"] for d in deltas if not math.isnan(d["low"])]
    if widths:
        widest = max((d for d in deltas if not math.isnan(d["low"])),
                     key=lambda d: d["high"] - d["low"])  # fmt: skip
        out.append(
            f"- Resolution: the widest interval is {_pct(max(widths))} points wide "
            f"({widest['model']}, {widest['bits']} bits): the seed-to-seed spread there hides "
            "differences of that order."
        )
    worst = [d for d in deltas if d["variant"] == "shift_ptq"]
    if worst:
        w = min(worst, key=lambda d: d["mean"])
        out.append(
            f"- Lowest mean shift_ptq − mult: {_pct(w['mean'])} points ({w['model']}, "
            f"{w['bits']} bits, interval [{_pct(w['low'])}, {_pct(w['high'])}])."
        )
    seeds = result["config"]["seeds"]
    reading = {
        "supported": "PTQ to 2^-2 is measurably worse than the multiplier in some cells and "
        "training at 2^-2 is not measurably worse in any.",
        "not supported": "training at 2^-2 is still measurably worse than the multiplier in "
        "some cells.",
        "premise not observed": "PTQ to 2^-2 is not measurably worse than the multiplier at "
        "0.3 in any cell, so on these models there is no loss for training at 2^-2 to "
        "prevent; training at 2^-2 is not measurably worse either.",
        "contradicted": "training at 2^-2 is measurably worse than the multiplier where PTQ "
        "to 2^-2 was not.",
    }[v["accuracy_claim"]]
    out += [
        "",
        f'**Accuracy claim** ("the shift variant may lose accuracy after PTQ; trained with '
        f'the slope at a power of two, the loss is prevented altogether"): '
        f"**{v['accuracy_claim']}** -- {reading} With n = {seeds} seeds an interval that "
        "contains 0 bounds the loss by its lower end; it does not prove there is none.",
    ]
    if hw_status != "ok":
        out += ["", f"**Hardware claim**: hardware: {hw_status}."]
    elif v["hw_shift_never_larger"] is None:
        out += ["", "**Hardware claim**: no mult/shift pair was synthesised (see above)."]
    else:
        dl, dd = v["hw_shift_minus_mult_luteq"], v["hw_shift_minus_mult_dsps"]
        hd = [h for h in result["hw_deltas"] if h["delta"]["lut_equivalents"] is not None]
        rel = [-h["delta"]["lut_equivalents"] / h["mult"]["lut_equivalents"] for h in hd]
        fm = [h["shift"]["fmax_mhz"] / h["mult"]["fmax_mhz"] for h in hd
              if h["shift"]["fmax_mhz"] and h["mult"]["fmax_mhz"]]  # fmt: skip
        fmax = (f"; the shift network's Fmax is {min(fm):.2f}-{max(fm):.2f}x the "
                "multiplier's" if fm else "")  # fmt: skip
        out += [
            "",
            f"**Hardware claim** (shift almost free, multiplier costs area and delay): over "
            f"{len(dl)} mult/shift pairs with identical weights the multiplier costs "
            f"{-max(dl):+d} to {-min(dl):+d} LUT-eq ({100 * min(rel):.0f}-{100 * max(rel):.0f} % "
            f"of the multiplier network) and {-max(dd):+d} to {-min(dd):+d} DSPs{fmax}; the "
            "shift network is "
            + ("never larger." if v["hw_shift_never_larger"] else "larger in some pairs.")
        ]  # fmt: skip
    return out


# ---------------------------------------------------------------------------------- driver


def run_study(
    cfg: StudyConfig,
    *,
    root: Path | None = None,
    docs_dir: Path = DOCS_DIR,
    json_path: Path = JSON_PATH,
    progress: bool = True,
) -> dict[str, Any]:
    """Run everything, write the page, PNGs and JSON; returns the JSON dict."""
    root = study_dir(root)
    cells, specs = run_accuracy(cfg, root, progress)
    config = {**asdict(cfg), "dataset": DATASET, "slope": SLOPE, "pow2_slope": POW2_SLOPE,
              "confidence": CONFIDENCE, "interval": "paired Student-t over seeds"}  # fmt: skip

    def partial(rows, todo):  # what is known so far, written as if the run ended here
        stopped = [dict(zip(("model", "variant", "bits", "seed"), k, strict=True),
                        **dict.fromkeys(HW_KEYS), error=STOPPED) for k in todo]  # fmt: skip
        write_outputs(build_result(config, cells, rows + stopped, "ok"), docs_dir, json_path)

    hw_rows, hw_status = run_hardware(cfg, specs, progress, partial)
    result = build_result(config, cells, hw_rows, hw_status)
    write_outputs(result, docs_dir, json_path)
    return result


def build_result(config: dict, cells: list[dict], hw_rows: list[dict], hw_status: str) -> dict:
    """Everything the page and JSON show, derived from the per-seed cells and hardware rows."""
    summary = summarise(cells, hw_rows)
    deltas = paired_deltas(cells)
    hw_d = hw_deltas(hw_rows) if hw_status == "ok" else []
    return {
        "config": config,
        "hardware_status": hw_status,
        "summary": summary,
        "deltas": deltas,
        "hw_deltas": hw_d,
        "verdict": verdict(deltas, hw_d, hw_status),
        "cells": cells,
        "hardware": hw_rows,
    }


def write_outputs(result: dict, docs_dir: Path, json_path: Path) -> None:
    """The JSON, the PNGs and the page (each written atomically)."""
    from qspec.files import atomic_write

    page = docs_dir / PAGE_NAME
    pngs = plot(result["summary"], result["hardware_status"], docs_dir, page.stem)
    atomic_write(json_path, json.dumps(_jsonable(result), indent=1) + "\n")
    atomic_write(page, render_page(result, pngs, page))


def rerender(json_path: Path, docs_dir: Path) -> dict:
    """Rebuild the page and PNGs from a results JSON (no training, no synthesis)."""
    if not json_path.is_file():
        raise ValueError(f"--render-only: no results file {json_path}")
    old = json.loads(json_path.read_text())
    result = build_result(old["config"], old["cells"], old["hardware"], old["hardware_status"])
    write_outputs(result, docs_dir, json_path)
    return result


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The study's options (shared by ``python -m search.study`` and ``python -m search study``)."""
    p.add_argument("--models", nargs="+", help=f"default: {' '.join(MODELS)}")
    p.add_argument("--seeds", type=int, help=f"training seeds 0..N-1 (default {SEEDS})")
    p.add_argument("--bits", type=int, nargs="+", help=f"default: {' '.join(map(str, BITS))}")
    p.add_argument("--quick", action="store_true",
                   help="jsc-toy, 2 seeds, 8/4 bits, short training; writes under "
                   "build/leaky_study_quick unless --docs/--json are given")  # fmt: skip
    p.add_argument("--epochs", type=int, help="float training epochs (default 200)")
    p.add_argument("--qat-epochs", type=int, help="QAT epochs (default 40)")
    p.add_argument("--hw-seeds", type=int, help="seeds synthesised per cell (default 1)")
    p.add_argument("--no-hw", action="store_true", help="skip synthesis (hardware: pending)")
    p.add_argument("--fmax-models", nargs="+", help="models placed for Fmax (default: jsc-toy)")
    p.add_argument(
        "--hw-budget", type=float, metavar="MIN",
        help="minutes of synthesis; networks not started by then are listed as skipped",
    )  # fmt: skip
    p.add_argument("--study-dir", type=Path, help=f"trained networks (default ${STUDY_ENV} or "
                   "the user cache)")  # fmt: skip
    p.add_argument("--docs", type=Path, help="directory of the page and PNGs (default docs/)")
    p.add_argument(
        "--json", type=Path, help="results JSON (default bench/results/leaky_study.json)"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--render-only", action="store_true",
        help="rewrite the page and PNGs from the --json results (nothing is run)",
    )  # fmt: skip


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    base = StudyConfig(**QUICK, quick=True) if args.quick else StudyConfig()
    over = {k: v for k, v in dict(
        models=tuple(args.models) if args.models else None, seeds=args.seeds,
        bits=tuple(args.bits) if args.bits else None, epochs=args.epochs,
        qat_epochs=args.qat_epochs, hw_seeds=args.hw_seeds,
        hw_budget=None if args.hw_budget is None else 60 * args.hw_budget,
        fmax_models=tuple(args.fmax_models) if args.fmax_models else None,
    ).items() if v is not None}  # fmt: skip
    if args.no_hw:
        over["hardware"] = False
    if "seeds" in over and "hw_seeds" not in over:
        over["hw_seeds"] = min(base.hw_seeds, over["seeds"])
    return replace(base, **over)


def run_from_args(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    quick_dir = Path("build") / "leaky_study_quick"
    docs = args.docs or (quick_dir if cfg.quick else DOCS_DIR)
    json_path = args.json or (quick_dir / "leaky_study.json" if cfg.quick else JSON_PATH)
    from qspec.files import check_writable_dir

    check_writable_dir("--docs", docs)
    if args.render_only:
        result = rerender(json_path, docs)
    else:
        result = run_study(cfg, root=args.study_dir, docs_dir=docs, json_path=json_path,
                           progress=not args.no_progress)  # fmt: skip
    v = result["verdict"]
    print(f"wrote {docs / PAGE_NAME} and {json_path}; hardware: {result['hardware_status']}; "
          f"accuracy claim: {v['accuracy_claim']}")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from qspec.cli import OneLineParser, run_cli

    prog = "python -m search.study"
    p = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(p)

    def body() -> int:
        return run_from_args(p.parse_args(argv))

    return run_cli(prog, body)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["StudyConfig", "hardware_of", "main", "run_study"]
