"""Fit the hardware model's per-target coefficients (``hdl.hwmodel``) and report its error.

Area: carry cells are structural (no fit); LUT4s are a non-negative least-squares fit of
``AreaModel``'s features to the Yosys counts of ``bench/results/linear.json`` (21 Linear
layers of jsc-toy and jsc-s at 4/6/8 bits, adder_tree and adder_tree_nosub, per target),
plus the Linear+ReLU groups of ``bench/results/hwmodel_timing.json`` (for the ReLU term).
The error reported for each Linear layer is **leave-one-layer-out**: the coefficients are
refitted without that layer (both impls) and predict it.  Delay: ``DelayModel``'s
``reg``, ``adder``, ``bit``, ``tail``, ``sat`` and ``size`` fitted to nextpnr's critical path
(1000 / Fmax) of the placed cases, again leave-one-layer-out (every stage count of a layer
held out at once):
``hwmodel_timing.json`` (stages 0-4) and ``clock.json`` (``bench/bench_clock.py``: deep
pipelines, evenly spaced and clock-driven; a clock-driven case is re-placed with the delay
coefficients it was built with, recorded beside it).
Writes ``bench/results/hwmodel.json``; ``--check`` compares the registry's coefficients.

    python bench/fit_hwmodel.py [--targets ecp5,ice40]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, nnls

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_clock import recorded_delay  # noqa: E402
from bench_network import load_spec  # noqa: E402

from hdl import hwmodel  # noqa: E402
from hdl.area import LUT_FEATURES  # noqa: E402
from hdl.targets import TARGETS  # noqa: E402
from hdl.timing import DelayModel  # noqa: E402
from qspec.files import atomic_write  # noqa: E402
from qspec.network import QuantisedNetwork, group_layers  # noqa: E402

RESULTS = Path(__file__).parent / "results"
LINEAR = RESULTS / "linear.json"
TIMING = RESULTS / "hwmodel_timing.json"
CLOCK = RESULTS / "clock.json"
OUT = RESULTS / "hwmodel.json"
# the checkpoints' specs the data was measured on, committed so the test needs no torch
SPECS = RESULTS / "hwmodel_specs.json"
IMPLS = hwmodel.IMPLS
DELAY_FIELDS = ("reg", "adder", "bit", "tail", "sat", "size")
_SPECS: dict = {}


def network(model: str, bits: int) -> QuantisedNetwork:
    """A checkpoint's spec from :data:`SPECS`, else ``load_spec`` (added to the file)."""
    specs = json.loads(SPECS.read_text()) if SPECS.exists() else {}
    key = f"{model}/{bits}bit"
    if key not in specs:
        specs[key] = load_spec(model, bits).to_dict()
        atomic_write(SPECS, json.dumps(specs, separators=(",", ":"), sort_keys=True))
    return QuantisedNetwork.from_dict(specs[key])


def layer_group(model: str, bits: int, name: str, with_tail: bool):
    """The Linear layer alone (``linear.json``) or its network group (``hwmodel_timing``)."""
    if (model, bits) not in _SPECS:
        _SPECS[model, bits] = group_layers(network(model, bits))
    for g in _SPECS[model, bits]:
        if g[0].name == name:
            return g if with_tail else g[:1]
    raise KeyError(name)


def area_cases(linear: dict, timing: dict) -> list[dict]:
    """One row per (layer, impl, target) with Yosys counts and the emitted group."""
    rows, emitted = [], {}
    for key, entry in linear["layers"].items():
        model, b, name = key.split("/")
        for impl in IMPLS:
            em = hwmodel.emitted(layer_group(model, int(b[:-3]), name, False), impl)
            for target in TARGETS:
                y = entry.get(target, {}).get(impl, {})
                if y.get("status") == "ok":
                    counts = {k: y[k] for k in ("lut4", "carries", "depth")}
                    rows.append({"layer": key, "impl": impl, "target": target, "em": em,
                                 "tail": False, **counts})  # fmt: skip
    for c in timing.get("cases", {}).values():
        if c.get("status") != "ok" or c["stages"] != 0:
            continue
        k = (c["model"], c["bits"], c["layer"], c["impl"])
        if k not in emitted:
            emitted[k] = hwmodel.emitted(layer_group(*k[:3], True), c["impl"])
        rows.append({"layer": "/".join(map(str, k[:3])) + "+relu", "impl": c["impl"],
                     "target": c["target"], "em": emitted[k], "tail": True,
                     "lut4": c["lut4"], "carries": c["carries"], "depth": c["depth"]})  # fmt: skip
    return rows


def fit_lut4(rows: list[dict], base) -> dict[str, float]:
    """Non-negative least squares of the LUT4 count on the features (relative weights)."""
    feats = [f for f in LUT_FEATURES if any(hwmodel.features(r["em"])[f] for r in rows)]
    x = np.array([[hwmodel.features(r["em"])[f] for f in feats] for r in rows], float)
    y = np.array([r["lut4"] for r in rows], float)
    # weight each row by 1 / its LUT-eq, so the fit minimises relative LUT-eq error
    w = 1.0 / np.array([r["lut4"] + base.carry_lut_weight * r["carries"] for r in rows])
    coef, _ = nnls(x * w[:, None], y * w)
    out = dict.fromkeys(LUT_FEATURES, 0.0)
    out.update({f: round(float(c), 4) for f, c in zip(feats, coef, strict=True)})
    return out


def pct(pred: float, real: float) -> float:
    return 100.0 * (pred - real) / real if real else 0.0


def stats(errs: list[float]) -> dict:
    a = [abs(e) for e in errs]
    return {"n": len(a), "median_abs_pct": round(statistics.median(a), 2) if a else None,
            "worst_abs_pct": round(max(a), 2) if a else None}  # fmt: skip


def area_fit(rows: list[dict], target: str) -> tuple[dict, dict]:
    """(coefficients fitted on every row, leave-one-layer-out errors on linear.json rows)."""
    t = TARGETS[target]
    rows = [r for r in rows if r["target"] == target]
    full = fit_lut4(rows, t)
    errs: dict[str, list[float]] = {"lut_eq": [], "lut4": [], "carries": [], "depth": []}
    per = []
    for layer in sorted({r["layer"] for r in rows if not r["tail"]}):
        model = dataclasses.replace(t.area, **fit_lut4([r for r in rows if r["layer"] != layer], t))
        for r in (r for r in rows if r["layer"] == layer):
            lut4, carries = hwmodel.area(r["em"], model)
            real_eq = r["lut4"] + t.carry_lut_weight * r["carries"]
            pred_eq = lut4 + t.carry_lut_weight * carries
            depth = hwmodel.logic_depth(r["em"], model)
            e = {"lut_eq": pct(pred_eq, real_eq), "lut4": pct(lut4, r["lut4"]),
                 "carries": pct(carries, r["carries"]),
                 "depth": pct(depth, r["depth"])}  # fmt: skip
            for k, v in e.items():
                errs[k].append(v)
            per.append({"layer": layer, "impl": r["impl"], "yosys_lut_eq": real_eq,
                        "pred_lut_eq": round(pred_eq, 1), "yosys_carries": r["carries"],
                        "pred_carries": carries, "lut_eq_pct": round(e["lut_eq"], 2),
                        "yosys_depth": r["depth"], "pred_depth": depth})  # fmt: skip
    return full, {k: stats(v) for k, v in errs.items()} | {"cases": per}


def timing_cases(timing: dict, target: str) -> list[dict]:
    """Placed cases of ``target``: ``timing``'s ``cases`` plus ``clock.json``'s (ECP5)."""
    from hdl.pipeline import place_emitted

    out = []
    clock = json.loads(CLOCK.read_text()).get("cases", {}) if CLOCK.exists() else {}
    for key, c in [*timing.get("cases", {}).items(), *clock.items()]:
        variant = c.get("variant", "stages")
        if variant == "da4ml" or c.get("status") != "ok" or not c.get("fmax_mhz"):
            continue
        if variant.startswith("top_"):  # whole networks: checked, not fitted on
            continue
        if "reused_from" in c:  # another case's measurement (the same registers): once
            continue
        if c.get("target", "ecp5") != target:
            continue
        group = layer_group(c["model"], c["bits"], c["layer"], True)
        em = hwmodel.emitted(group, c["impl"])
        if variant == "clock":  # the placement it was built with
            p = place_emitted(em, c["clock_mhz"], recorded_delay(c["delay_model"]))
            stage_of, tail_stage, stages = p.stage_of, p.tail_stage, p.latency
        else:
            stages = c.get("stages", c.get("latency"))
            stage_of, tail_stage = hwmodel.level_stages(em, stages)
        out.append({"key": key, "layer": "/".join(key.split("/")[:3]), "em": em,
                    "stage_of": stage_of, "tail_stage": tail_stage, "stages": stages,
                    "ns": 1000.0 / c["fmax_mhz"], "ffs": c["ffs"]})  # fmt: skip
    return out


def predict_ns(case: dict, dm: DelayModel) -> float:
    reg = dm.reg_for(hwmodel.chain_bits(case["em"]))
    return reg + hwmodel.path_delay(case["em"], case["stage_of"], case["tail_stage"], dm)


def fit_delay(cases: list[dict], base: DelayModel) -> DelayModel:
    """Least squares of the relative path-delay error (soft L1) over reg/adder/bit/tail."""
    x0 = [getattr(base, f) for f in DELAY_FIELDS]

    def resid(x):
        dm = dataclasses.replace(base, **dict(zip(DELAY_FIELDS, x, strict=True)))
        return [predict_ns(c, dm) / c["ns"] - 1.0 for c in cases]

    # the size term trades against reg: start from the registry's values and from a large
    # size term, keep the better fit (one start can stop in a poor local minimum)
    starts = [x0, [*x0[:-1], 1.0]]
    fits = [least_squares(resid, s, bounds=(0.0, np.inf), loss="soft_l1", f_scale=0.1)
            for s in starts]  # fmt: skip
    r = min(fits, key=lambda f: f.cost)
    return dataclasses.replace(
        base, **{f: round(float(v), 4) for f, v in zip(DELAY_FIELDS, r.x, strict=True)}
    )


def placement_sig(case: dict) -> tuple:
    """What a placed case's Verilog is made of: its layer and where its registers are."""
    em = case["em"]
    impl = case["key"].split("/")[3]
    return case["layer"], impl, case["tail_stage"], tuple(case["stage_of"](n) for n in em.reached)


def held_out(cases: list[dict], dm: DelayModel, tags: list[str]) -> dict:
    """Error of ``dm`` (fitted without them) on the placements tagged ``tags``: pipelines
    the fitted model itself placed, measured afterwards (a true hold-out)."""
    errs, per = [], []
    for c in cases:
        ns = predict_ns(c, dm)
        errs.append(pct(1000.0 / ns, 1000.0 / c["ns"]))
        per.append({"case": c["key"], "nextpnr_mhz": round(1000.0 / c["ns"], 1),
                    "pred_mhz": round(1000.0 / ns, 1), "pct": round(errs[-1], 2)})  # fmt: skip
    return {"tags": tags} | stats(errs) | {"cases": per}


def delay_fit(timing: dict, target: str, hold: list[str] = ()) -> tuple[dict | None, dict]:
    base = TARGETS[target].delay
    cases = timing_cases(timing, target)
    kept = [c for c in cases if not any(t in c["key"] for t in hold)]
    # held out only where the registers differ from every fitted placement (the same
    # registers are the same Verilog and measure the same: they were fitted on)
    seen = {placement_sig(c) for c in kept}
    out = [c for c in cases if any(t in c["key"] for t in hold) and placement_sig(c) not in seen]
    cases = kept
    if len({c["layer"] for c in cases}) < 2:
        return None, {"n": len(cases), "note": "too few placed layers to fit"}
    full = fit_delay(cases, base)
    errs, per = [], []
    for layer in sorted({c["layer"] for c in cases}):
        dm = fit_delay([c for c in cases if c["layer"] != layer], base)
        for c in (c for c in cases if c["layer"] == layer):
            ns = predict_ns(c, dm)
            e = pct(1000.0 / ns, 1000.0 / c["ns"])
            errs.append(e)
            per.append({"case": c["key"], "nextpnr_mhz": round(1000.0 / c["ns"], 1),
                        "pred_mhz": round(1000.0 / ns, 1), "pct": round(e, 2)})  # fmt: skip
    fitted = {f: getattr(full, f) for f in DELAY_FIELDS}
    # a second split: fit on jsc-toy only, test on every other model's cases
    train = [c for c in cases if c["layer"].startswith("jsc-toy/")]
    test = [c for c in cases if not c["layer"].startswith("jsc-toy/")]
    by_model = None
    if train and test:
        dm = fit_delay(train, base)
        e = [pct(1000.0 / predict_ns(c, dm), 1000.0 / c["ns"]) for c in test]
        by_model = {"fit_on": "jsc-toy", "tested_on": sorted({c["layer"] for c in test})}
        by_model |= stats(e)
    report = {"fmax": stats(errs), "fmax_fit_on_jsc_toy": by_model, "cases": per}
    if out:
        report["held_out"] = held_out(out, full, list(hold))
    return fitted, report


def ff_errors(timing: dict, target: str) -> dict:
    errs, per = [], []
    for c in timing_cases(timing, target):
        pred = hwmodel.register_bits(c["em"], c["stage_of"], c["tail_stage"], c["stages"])
        errs.append(pct(pred, c["ffs"]) if c["ffs"] else float(pred != 0) * 100)
        per.append({"case": c["key"], "yosys_ffs": c["ffs"], "pred_ffs": pred})
    return {"ffs": stats(errs), "cases": per}


def network_check(target: str) -> dict:
    """Whole networks at stages 0 (``bench/results/network.json``, not fitted on): LUT-eq
    (per-layer Yosys sum) and Fmax (the flat top placed on an LFE5U-85F) vs the model."""
    path = RESULTS / "network.json"
    if not path.exists():
        return {}
    out, e_eq, e_f = [], [], []
    for key, r in json.loads(path.read_text())["networks"].items():
        model, b, tgt = key.split("/")
        if tgt != target or not r.get("lut_eq"):
            continue
        p = hwmodel.predict_network(network(model, int(b[:-3])), "adder_tree", 0, target)
        row = {"network": key, "yosys_lut_eq": r["lut_eq"], "pred_lut_eq": round(p.lut_eq)}
        e_eq.append(pct(p.lut_eq, r["lut_eq"]))
        if r.get("fmax_mhz"):
            row |= {"nextpnr_mhz": r["fmax_mhz"], "pred_mhz": round(p.fmax_mhz, 1)}
            e_f.append(pct(p.fmax_mhz, r["fmax_mhz"]))
        out.append(row)
    return {"lut_eq": stats(e_eq), "fmax": stats(e_f), "cases": out}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--hold-out", default="", metavar="TAGS",
                   help="comma-separated case-key parts (e.g. a bench_clock dm tag) not "
                   "fitted on: reported as the fitted model's error on new placements")  # fmt: skip
    args = p.parse_args(argv)
    hold = [t for t in args.hold_out.split(",") if t]
    linear = json.loads(LINEAR.read_text())
    timing = json.loads(TIMING.read_text()) if TIMING.exists() else {}
    rows = area_cases(linear, timing)
    out: dict = {
        "meta": {
            "what": "hdl.hwmodel coefficients per target and the model's error on layers not "
            "fitted on (leave-one-layer-out): area vs Yosys 0.70 (bench/results/linear.json, "
            "21 layers x adder_tree/adder_tree_nosub; Linear+ReLU groups of "
            "hwmodel_timing.json also train the LUT4 fit), Fmax vs nextpnr "
            "(bench/results/hwmodel_timing.json)",
            "command": "python bench/fit_hwmodel.py " + " ".join(argv or sys.argv[1:]),
        },
        "targets": {},
    }
    for target in args.targets.split(","):
        area_coef, area_err = area_fit(rows, target)
        delay_coef, delay_err = delay_fit(timing, target, hold)
        out["targets"][target] = {
            "area": area_coef,
            "delay": delay_coef,
            "area_error_loo": area_err,
            "delay_error_loo": delay_err,
            "ff_error": ff_errors(timing, target),
            "network_check": network_check(target),
        }
        summary = {k: area_err[k] for k in ("lut_eq", "lut4", "carries", "depth")}
        print(target, "area", area_coef, summary, flush=True)
        print(target, "delay", delay_coef, delay_err.get("fmax"), flush=True)
        print(target, "delay fit on jsc-toy", delay_err.get("fmax_fit_on_jsc_toy"), flush=True)
        if "held_out" in delay_err:
            h = {k: v for k, v in delay_err["held_out"].items() if k != "cases"}
            print(target, "held out", h, flush=True)
        print(target, "ffs", out["targets"][target]["ff_error"]["ffs"], flush=True)
        nc = out["targets"][target]["network_check"]
        print(target, "networks", nc.get("lut_eq"), nc.get("fmax"), flush=True)
    atomic_write(args.out, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
