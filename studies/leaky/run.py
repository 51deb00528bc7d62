"""The study's measurements: train (or load) and quantise every cell, synthesise the hardware
rows, and :func:`run_study`, which writes the page and JSON (:mod:`.render`)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import (
    CONFIDENCE,
    DATASET,
    DOCS_DIR,
    HW_KEYS,
    JSON_PATH,
    POW2_SLOPE,
    SLOPE,
    STUDY_ENV,
    TRAININGS,
    VARIANTS,
    StudyConfig,
)
from .render import write_outputs
from .stats import build_result


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


HW_ORDER = ("mult", "shift_ptq", "relu", "shift_trained", "shift_qat")
STOPPED = "not synthesised: the run stopped before it"


def hardware_row(spec, cfg: StudyConfig, fmax: bool) -> dict[str, Any]:
    """:data:`HW_KEYS` of ``spec`` synthesised as one network (spec-keyed synthesis cache)."""
    from hdl.synth.network import synthesise_network_total

    total = synthesise_network_total(
        spec, cfg.target, impl=cfg.impl, stages=cfg.stages, fmax=fmax, timeout=cfg.hw_timeout
    )
    return {k: getattr(total, k) for k in HW_KEYS}


def run_hardware(cfg: StudyConfig, specs: dict, progress: bool = True, on_row=None):
    """Hardware of the first ``hw_seeds`` seeds of every (model, variant, bits).

    Returns ``(rows, status)``: ``status`` is ``"ok"`` or why there is no hardware.  A
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
            row.update(hardware_row(specs[key], cfg, fmax=model in cfg.fmax_models))
        except Exception as e:  # a failed tool run is reported, never turned into numbers
            row.update(dict.fromkeys(HW_KEYS), error=f"{type(e).__name__}: {e}".splitlines()[0])
        rows.append(row)
    return rows, "ok"


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
