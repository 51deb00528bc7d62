"""The study's statistics: Student-t intervals over seeds, paired deltas, the verdict, and
:func:`build_result` (everything the page and JSON show, from the cells and hardware rows)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .config import CONFIDENCE, HW_KEYS, SHIFT_VARIANTS


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
    if hw_status == "ok" and any(h["delta"]["lut_eq"] is not None for h in hw_d):
        dl = [h["delta"]["lut_eq"] for h in hw_d if h["delta"]["lut_eq"] is not None]
        dd = [h["delta"]["dsps"] for h in hw_d if h["delta"]["dsps"] is not None]
        v["hw_shift_minus_mult_luteq"] = dl
        v["hw_shift_minus_mult_dsps"] = dd
        v["hw_shift_never_larger"] = all(x <= 0 for x in dl) and all(x <= 0 for x in dd)
    else:
        v["hw_shift_never_larger"] = None
    return v


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
