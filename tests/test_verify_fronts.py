"""bench/verify_fronts.py's verdict per front design (no simulation: its check on given JSON)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location(
        "verify_fronts", ROOT / "bench" / "verify_fronts.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _result(trial: int, **kw) -> dict:
    r = {"trial": trial, "passed": True, "mismatches": 0, "hw_accuracy": 0.5,
         "ref_accuracy": 0.5, "build_seconds": 1.0, "run_seconds": 0.5}  # fmt: skip
    return {**r, **kw}


def test_check_study_flags_every_way_a_design_can_fail():
    check = _module().check_study
    front = [
        {"trial": n, "test_accuracy": 0.5, "lut_eq": 10.0, "config": {"n": n}} for n in range(6)
    ]
    best = {"best": [{"trial": n, "config": {"n": n if n != 4 else -1}} for n in range(6)]}
    results = [
        _result(0),
        _result(1, mismatches=3, passed=False),
        _result(2, hw_accuracy=0.4),
        _result(3, ref_accuracy=0.6, hw_accuracy=0.6),  # not what the trial recorded
        _result(4),  # best.json holds another config for it
    ]  # trial 5: not simulated
    rows = check(front, {"results": results}, best)
    assert [r["ok"] for r in rows] == [True, False, False, False, False, False]
    assert rows[0]["seconds"] == 1.5 and rows[5]["error"] == "not simulated"
